"""Pseudo-random generator: AES-128 in counter mode, keyed from ``os.urandom``.

Every secret, mask and share in :mod:`pet.mpc` comes from a :class:`PRG`. A PRG is a
deterministic stream: two holders of the same 16-byte seed (a party and the dealer) draw
identical values in identical order, which is what the dealer's seed compression relies
on. The keystream of ``AES-CTR(seed, nonce=0)`` is read as little-endian uint64 words.

The stream is seekable: :meth:`PRG.skip` passes over a field without computing it and
:meth:`PRG.stream` reads it later from its offset, in pieces (the dealer and the parties
use this for large Beaver and truncation fields, so those never exist as whole arrays;
the words are identical to drawing them in order).
"""

from __future__ import annotations

import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pet.errors import InputError, PetTypeError

__all__ = ["CHUNK_WORDS", "PRG", "SEED_BYTES", "Keystream", "new_seed"]

SEED_BYTES = 16


def new_seed() -> bytes:
    """A fresh 128-bit seed from the operating system's CSPRNG."""
    return os.urandom(SEED_BYTES)


#: Words per piece when a keystream is read in pieces (256 KiB: stays in the L2 cache).
CHUNK_WORDS = 1 << 15
_ZEROS = bytes(8 * (CHUNK_WORDS + 2))


def _zeros(nbytes: int) -> bytes:
    """``nbytes`` zero bytes (the AES-CTR plaintext); one shared read-only buffer for pieces."""
    return _ZEROS if nbytes <= len(_ZEROS) else bytes(nbytes)


def _encryptor_at(key: bytes, offset: int):
    """An AES-CTR encryptor positioned ``offset`` bytes into the keystream of ``key``
    (counter block ``offset // 16`` as a 128-bit big-endian counter, as the stream that
    starts at counter 0 reaches it; the bytes before ``offset`` in that block are dropped)."""
    block, skip = divmod(int(offset), 16)
    enc = Cipher(algorithms.AES(key), modes.CTR(block.to_bytes(16, "big"))).encryptor()
    if skip:
        enc.update(bytes(skip))
    return enc


class Keystream:
    """Sequential reader of a :class:`PRG`'s keystream from a byte offset, independent of
    the PRG's own position (see :meth:`PRG.stream`): it reads words the PRG has already
    passed with :meth:`PRG.skip`, in pieces, into reused buffers."""

    def __init__(self, key: bytes, offset: int):
        self._enc = _encryptor_at(key, offset)

    def words_into(self, buf: np.ndarray, n: int) -> np.ndarray:
        """The next ``n`` keystream words, written into ``buf[:n]`` and returned; ``buf`` is
        a C-contiguous uint64 array with at least ``n + 2`` elements (AES update_into needs
        one spare block)."""
        if buf.dtype != np.uint64 or not buf.flags.c_contiguous or buf.ndim != 1 or buf.size < n + 2:
            raise InputError("buf must be a C-contiguous 1-d uint64 array with at least n + 2 elements")
        if n:
            self._enc.update_into(memoryview(_zeros(8 * n))[: 8 * n], memoryview(buf).cast("B"))
        return buf[:n]

    def words(self, n: int) -> np.ndarray:
        """The next ``n`` keystream words in a fresh array."""
        out = np.empty(int(n) + 2, dtype=np.uint64)
        return self.words_into(out, int(n))


class PRG:
    """AES-128-CTR keystream generator.

    ``PRG()`` seeds itself from ``os.urandom``; ``PRG(seed)`` replays a shared stream.
    Not thread-safe: one owner per instance (the :class:`Keystream` readers from
    :meth:`stream` are independent objects and may be used from any thread).
    """

    def __init__(self, seed: bytes | None = None):
        if seed is None:
            seed = new_seed()
        if not isinstance(seed, (bytes, bytearray)):
            raise PetTypeError(f"seed must be bytes, got {type(seed).__name__}")
        if len(seed) != SEED_BYTES:
            raise InputError(f"seed must be {SEED_BYTES} bytes, got {len(seed)}")
        self._key = bytes(seed)
        self._enc = _encryptor_at(self._key, 0)
        self._pos = 0  # keystream bytes consumed (drawn or skipped)
        self._zeros = b""

    @property
    def position(self) -> int:
        """Keystream bytes consumed so far (drawn or skipped)."""
        return self._pos

    def _sequential(self):
        if self._enc is None:  # after a skip: resume at the current position
            self._enc = _encryptor_at(self._key, self._pos)
        return self._enc

    def bytes(self, n: int) -> bytes:
        """The next ``n`` keystream bytes."""
        out = self._sequential().update(bytes(n))
        self._pos += int(n)
        return out

    def skip(self, nbytes: int) -> int:
        """Pass over the next ``nbytes`` keystream bytes without computing them; returns
        their offset, for :meth:`stream` (the bytes are the same as if drawn)."""
        start = self._pos
        if nbytes:
            self._pos += int(nbytes)
            self._enc = None
        return start

    def stream(self, offset: int) -> Keystream:
        """A reader of this keystream from byte ``offset`` (e.g. one returned by :meth:`skip`)."""
        return Keystream(self._key, offset)

    def words_at(self, offset: int, shape) -> np.ndarray:
        """The uint64 array of ``shape`` at byte ``offset`` of the keystream (a fresh array;
        the PRG's own position does not move)."""
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        return self.stream(offset).words(int(np.prod(shape, dtype=np.int64))).reshape(shape)

    def words(self, shape) -> np.ndarray:
        """Uniform uint64 array of ``shape`` (a fresh, writable array)."""
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        n = 8 * int(np.prod(shape, dtype=np.int64))
        # the keystream is AES-CTR applied to zeros; update_into needs one spare block
        out = np.empty(n // 8 + 2, dtype=np.uint64)
        if n:
            if len(self._zeros) < n:
                self._zeros = bytes(n)
            self._sequential().update_into(memoryview(self._zeros)[:n], memoryview(out).cast("B"))
            self._pos += n
        return out[: n // 8].reshape(shape)

    def bits(self, shape) -> np.ndarray:
        """Uniform 0/1 uint64 array of ``shape``."""
        return self.words(shape) & np.uint64(1)
