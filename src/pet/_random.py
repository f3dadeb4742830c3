"""Secret randomness shared by the packages: uniformly random permutations from the OS
CSPRNG (``secrets``), never ``numpy.random``."""

from __future__ import annotations

import secrets

import numpy as np

__all__ = ["secure_permutation"]


def secure_permutation(n: int) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` (int64) from the OS CSPRNG: the
    stable argsort of ``n`` random 64-bit keys (ties, probability about ``n^2 / 2^65``,
    keep index order). Its inverse ``np.argsort(perm)`` is uniformly random as well."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        from pet.errors import InputError

        raise InputError(f"n must be an int >= 0, got {n!r}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.frombuffer(secrets.token_bytes(8 * int(n)), dtype=np.uint64)
    return np.argsort(keys, kind="stable").astype(np.int64)
