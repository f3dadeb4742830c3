"""Stashless cuckoo hashing with three hash functions, for KKRT-PSI (:mod:`pet.psi.kkrt`).

The PSI receiver places each of its ``n`` items into one of ``m`` bins, at one of three
positions ``h_0(x), h_1(x), h_2(x)``, at most one item per bin and no stash. The sender
later evaluates its items at all three positions.

Table size (:func:`bin_count`): ``m = ceil(e n)`` rounded up to a multiple of 64, with the
expansion factor ``e`` from the experimentally fitted failure law of cryptoTools/libOTe
(``CuckooIndex::selectParams``, stash size 0, 3 hash functions; Rindal's fit of the
PSZ18 / PSTY19 simulations):

    lambda = a e + b,   a = 123.5/2 (1 + erf((log2 n - 6.3) / (2.3 sqrt 2))),
                        b = -130/2 (1 + erf((log2 n - 6.45) / (2.18 sqrt 2))) - log2 n,

solved for ``lambda = 40``: failure probability <= 2^-40 at the actual ``n``. This gives
e = 1.506 at n = 2^16 and 1.538 at 2^20 (PSZ18's asymptotic 1.27 n, used by PETAce and
SecretFlow, is below this fit for these sizes, so pet uses the fit); small sets get a
larger ``e`` below n = 2^8 (4.4 at n = 10; 106 bins, rounded to 128, for a single item).

Hash functions (:func:`hash_bins`): from an item's 128-bit hash ``h(x)`` (BLAKE2b,
:mod:`pet.psi.kkrt`), ``AES_seed(h(x))`` split into three 42-bit integers, each reduced
mod ``m``. The seed is derived from the session id and the attempt number, so a retry
uses fresh, independent functions.

Failure is detected, never hidden: insertion is a random walk (evict a random one of the
other two positions of the evicted item) bounded by :data:`MAX_KICKS` evictions per
item; past it, :func:`build` returns None and the caller retries with the next seed.
No item is ever dropped.
"""

from __future__ import annotations

import hashlib
import math
import os

import numba
import numpy as np

from pet.mpc.ot.kkrt_ext import ecb

__all__ = ["HASHES", "MAX_KICKS", "CuckooTable", "bin_count", "build", "expansion", "hash_bins", "seed_key"]

HASHES = 3
#: Evictions allowed while inserting one item before the table is declared failed.
MAX_KICKS = 2000
_MASK42 = (1 << 42) - 1


def expansion(n: int, stat_bits: int = 40) -> float:
    """Bins per item for failure probability ``2^-stat_bits`` (module doc)."""
    nn = math.log2(max(n, 1))
    a = 123.5 / 2 * (1 + math.erf((nn - 6.3) / (2.3 * math.sqrt(2))))
    b = -130 / 2 * (1 + math.erf((nn - 6.45) / (2.18 * math.sqrt(2)))) - nn
    return (stat_bits - b) / a


def bin_count(n: int, stat_bits: int = 40) -> int:
    """Number of bins for ``n`` items (a multiple of 64; 0 for no items)."""
    if n <= 0:
        return 0
    m = max(math.ceil(expansion(n, stat_bits) * n), n + 1)
    return -(-m // 64) * 64


def seed_key(sid: bytes, attempt: int) -> bytes:
    """The AES key of the hash functions of attempt ``attempt`` of session ``sid``."""
    return hashlib.sha256(b"pet.psi.kkrt/cuckoo\x00" + sid + attempt.to_bytes(4, "little")).digest()[:16]


def hash_bins(item_hashes: np.ndarray, m: int, key: bytes) -> np.ndarray:
    """(n, 3) int64: the three bins of each item (``item_hashes`` (n, 2) uint64)."""
    e = ecb(key, item_hashes)
    lo, hi = e[:, 0], e[:, 1]
    mask = np.uint64(_MASK42)
    parts = (lo & mask, ((lo >> np.uint64(42)) | (hi << np.uint64(22))) & mask, (hi >> np.uint64(20)) & mask)
    out = np.empty((item_hashes.shape[0], HASHES), dtype=np.int64)
    for i, p in enumerate(parts):
        out[:, i] = (p % np.uint64(max(m, 1))).astype(np.int64)
    return out


@numba.njit(cache=True, nogil=True)
def _insert_all(bins, m, max_kicks, state):
    """Random-walk insertion of every item. Returns ``(ok, bin_item, item_hash)``:
    ``bin_item[b]`` = item in bin ``b`` (-1 empty), ``item_hash[x]`` = which of its three
    functions placed item ``x``. ``state`` seeds a xorshift64* walk."""
    n = bins.shape[0]
    bin_item = np.full(m, -1, dtype=np.int64)
    item_hash = np.full(n, -1, dtype=np.int8)
    s = np.uint64(state) | np.uint64(1)
    for x in range(n):
        cur = x
        prev = -1
        placed = False
        for _kick in range(max_kicks + 1):
            for i in range(3):
                b = bins[cur, i]
                if bin_item[b] < 0:
                    bin_item[b] = cur
                    item_hash[cur] = i
                    placed = True
                    break
            if placed:
                break
            # evict from a random position other than the one ``cur`` was just evicted from
            s ^= s >> np.uint64(12)
            s ^= s << np.uint64(25)
            s ^= s >> np.uint64(27)
            r = (s * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(33)
            i = np.int64(r % np.uint64(3))
            if bins[cur, i] == prev:
                i = (i + 1 + np.int64((r >> np.uint64(8)) & np.uint64(1))) % 3
            b = bins[cur, i]
            victim = bin_item[b]
            bin_item[b] = cur
            item_hash[cur] = i
            item_hash[victim] = -1
            cur = victim
            prev = b
        if not placed:
            return False, bin_item, item_hash
    return True, bin_item, item_hash


class CuckooTable:
    """A successful placement: ``bin_item`` (m,) int64 item per bin or -1, ``item_hash`` (n,)
    int8 index of the function used for each item, ``bins`` (n, 3) the positions."""

    def __init__(self, bins: np.ndarray, bin_item: np.ndarray, item_hash: np.ndarray):
        self.bins, self.bin_item, self.item_hash = bins, bin_item, item_hash

    @property
    def m(self) -> int:
        return int(self.bin_item.shape[0])


def build(item_hashes: np.ndarray, m: int, key: bytes, max_kicks: int = MAX_KICKS) -> CuckooTable | None:
    """Place all items into ``m`` bins with the functions of ``key``; None if it fails."""
    n = item_hashes.shape[0]
    if n > m:
        return None
    bins = hash_bins(item_hashes, m, key)
    state = np.uint64(int.from_bytes(os.urandom(8), "little"))
    ok, bin_item, item_hash = _insert_all(bins, m, max_kicks, state)
    if not ok:
        return None
    return CuckooTable(bins, bin_item, item_hash)
