"""AES building blocks of the OT engine: seed streams (PRG) and the TCCR hash.

* :class:`SeedStreams` -- one AES-128-CTR keystream per base-OT seed, opened once per
  session and never restarted: each call continues where the previous one stopped (the
  counter carries across chunks), so no keystream bit is ever used twice.
* :class:`TCCRHash` -- the tweakable circular correlation-robust hash of Guo, Katz, Wang
  and Yu (2020), ``H(x, i) = pi(pi(x) ^ i) ^ pi(x)`` with ``pi`` fixed-key AES-128. The key
  is derived from the session id and the direction, and the tweak ``i`` of OT number
  ``k`` (the global OT counter of that direction in this session) is the 128-bit block
  ``(k, first 8 bytes of the session id)``, so no tweak repeats within or across
  sessions.

Both use ``cryptography``'s ``update_into`` on large preallocated buffers (about 10 GB/s
here; ``update`` returning bytes is ~10x slower).
"""

from __future__ import annotations

import hashlib

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pet.mpc.ot import _kernels

__all__ = ["SeedStreams", "TCCRHash"]

_BLOCK = 16384  # 128-bit blocks hashed per pass (256 KiB: stays in L2)


class SeedStreams:
    """``len(keys)`` AES-128-CTR keystreams, read as rows of uint64 words."""

    def __init__(self, keys: list):
        self._enc = [Cipher(algorithms.AES(bytes(k)), modes.CTR(b"\x00" * 16)).encryptor() for k in keys]
        self._zeros = np.zeros(0, dtype=np.uint8)
        self._out = None

    def rows(self, words: int) -> np.ndarray:
        """The next ``words`` uint64 words of every stream: array (len(keys), words), a
        view of rows padded by two words (``update_into`` wants 15 spare bytes). The
        buffer is reused by the next call."""
        n = len(self._enc)
        if self._out is None or self._out.shape[1] != words + 2:
            self._out = np.empty((n, words + 2), dtype=np.uint64)
        out = self._out
        nbytes = 8 * words
        if self._zeros.size < nbytes:
            self._zeros = np.zeros(nbytes, dtype=np.uint8)
        zeros = memoryview(self._zeros)[:nbytes]
        for j, enc in enumerate(self._enc):
            enc.update_into(zeros, memoryview(out[j]).cast("B"))
        return out[:, :words]


def tccr_key(session_id: bytes, direction: int) -> bytes:
    """The fixed AES key of the hash for one direction of one session."""
    return hashlib.sha256(b"pet.mpc.ot/tccr\x00" + session_id + bytes([direction])).digest()[:16]


class TCCRHash:
    """``H(x, k)`` on arrays of 128-bit blocks ((m, 2) uint64), see the module doc."""

    def __init__(self, session_id: bytes, direction: int):
        key = tccr_key(session_id, direction)
        self._enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - fixed-key AES as a permutation (TCCR hash), not for secrecy
        self._hi = np.uint64(int.from_bytes(session_id[:8], "little"))
        self._y = self._z = self._o = np.empty((0, 2), dtype=np.uint64)

    def hash(self, x: np.ndarray, counter: int, halves: int = 1) -> np.ndarray:
        """``H(x[k], counter + k mod m)`` for ``x`` of shape (halves * m, 2): with
        ``halves = 2`` both halves use the tweaks of OTs ``counter .. counter + m``.
        Works through ``x`` in cache-sized blocks."""
        x = np.ascontiguousarray(x)
        total = x.shape[0]
        m = total // halves
        out = np.empty_like(x)
        B = _BLOCK
        if self._y.shape[0] < B + 1:
            self._y = np.empty((B + 1, 2), dtype=np.uint64)
            self._z = np.empty((B + 1, 2), dtype=np.uint64)
            self._o = np.empty((B + 1, 2), dtype=np.uint64)
        y, z, o = self._y, self._z, self._o
        yb, ob = memoryview(y).cast("B"), memoryview(o).cast("B")
        xb = memoryview(x).cast("B")
        zb = memoryview(z).cast("B")
        ctr = np.uint64(counter)
        for start in range(0, total, B):
            n = min(B, total - start)
            self._enc.update_into(xb[16 * start:16 * (start + n)], yb[:16 * n + 15])
            _kernels.tweak_xor_block(y, z, n, ctr, self._hi, start, m)
            self._enc.update_into(zb[:16 * n], ob[:16 * n + 15])
            _kernels.xor_block_out(o, y, n, out, start)
        return out
