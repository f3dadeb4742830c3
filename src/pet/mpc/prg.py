"""Pseudo-random generator: AES-128 in counter mode, keyed from ``os.urandom``.

Every secret, mask and share in :mod:`pet.mpc` comes from a :class:`PRG`. A PRG is a
deterministic stream: two holders of the same 16-byte seed (a party and the dealer) draw
identical values in identical order, which is what the dealer's seed compression relies
on. The keystream of ``AES-CTR(seed, nonce=0)`` is read as little-endian uint64 words.
"""

from __future__ import annotations

import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pet.errors import InputError, PetTypeError

__all__ = ["PRG", "SEED_BYTES", "new_seed"]

SEED_BYTES = 16


def new_seed() -> bytes:
    """A fresh 128-bit seed from the operating system's CSPRNG."""
    return os.urandom(SEED_BYTES)


class PRG:
    """AES-128-CTR keystream generator.

    ``PRG()`` seeds itself from ``os.urandom``; ``PRG(seed)`` replays a shared stream.
    Not thread-safe: one owner per instance.
    """

    def __init__(self, seed: bytes | None = None):
        if seed is None:
            seed = new_seed()
        if not isinstance(seed, (bytes, bytearray)):
            raise PetTypeError(f"seed must be bytes, got {type(seed).__name__}")
        if len(seed) != SEED_BYTES:
            raise InputError(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
        cipher = Cipher(algorithms.AES(bytes(seed)), modes.CTR(b"\x00" * 16))
        self._enc = cipher.encryptor()
        self._zeros = b""

    def bytes(self, n: int) -> bytes:
        """The next ``n`` keystream bytes."""
        return self._enc.update(bytes(n))

    def words(self, shape) -> np.ndarray:
        """Uniform uint64 array of ``shape`` (a fresh, writable array)."""
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        n = 8 * int(np.prod(shape, dtype=np.int64))
        # the keystream is AES-CTR applied to zeros; update_into needs one spare block
        out = np.empty(n // 8 + 2, dtype=np.uint64)
        if n:
            if len(self._zeros) < n:
                self._zeros = bytes(n)
            self._enc.update_into(memoryview(self._zeros)[:n], memoryview(out).cast("B"))
        return out[: n // 8].reshape(shape)

    def bits(self, shape) -> np.ndarray:
        """Uniform 0/1 uint64 array of ``shape``."""
        return self.words(shape) & np.uint64(1)
