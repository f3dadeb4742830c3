"""The CPU-heavy steps of ECDH-PSI, run by the worker threads of :mod:`pet.psi._parallel`.

Scalar multiplication: chunks of at least :data:`BATCH_MIN` points go through the batched
X25519 of :mod:`pet.psi.x25519` (about 2x the per-call rate); smaller ones call
``cryptography``'s X25519 per point, which needs no compiled kernel (the first use of the
batched kernel on a machine compiles it, ~20-40 s, then loads it from numba's cache).
Both give identical bytes.

Hashing is Python + gmpy2 and holds the GIL; the batched X25519 releases it (numba
``nogil``), so :mod:`pet.psi._parallel` runs these in a thread pool.

Points travel as one ``bytes`` string of ``32 * n`` bytes (u-coordinates, little-endian).
"""

from __future__ import annotations

import hashlib

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from pet.errors import InputError, ProtocolError
from pet.psi import x25519
from pet.psi.hash_to_curve import encode_to_curve_u_batch, hash_to_curve_u

__all__ = ["BATCH_MIN", "blind", "digest_person", "reblind", "scalarmult", "warm_up"]

#: Chunks of at least this many points use the batched X25519 kernel.
BATCH_MIN = 1024

#: Personalisation of the BLAKE2b digest of doubly-blinded points.
digest_person = b"pet-psi-v1"


def _hash(msgs: list[bytes], dst: bytes, suite: str) -> list[bytes]:
    if suite == "NU":
        return encode_to_curve_u_batch(msgs, dst)
    if suite == "RO":
        return [hash_to_curve_u(m, dst) for m in msgs]
    raise InputError(f"hash suite must be 'NU' or 'RO', got {suite!r}")


def scalarmult(key: bytes, points: bytes) -> tuple[bytes, int]:
    """``(x([k] Q) for each 32-byte Q, concatenated; index of the first low-order Q or -1)``."""
    n = len(points) // 32
    if n >= BATCH_MIN:
        out, zero = x25519.scalarmult(key, points)
        bad = np.flatnonzero(zero)
        return out.tobytes(), int(bad[0]) if bad.size else -1
    exchange, load = X25519PrivateKey.from_private_bytes(key).exchange, X25519PublicKey.from_public_bytes
    out = []
    for i in range(n):
        try:
            out.append(exchange(load(points[32 * i:32 * i + 32])))
        except ValueError:  # the all-zero result of a low-order point
            return b"", i
    return b"".join(out), -1


def blind(key: bytes, msgs: list[bytes], dst: bytes, suite: str) -> bytes:
    """``x([k] H(m))`` for each message: hash to curve25519, multiply by the secret key."""
    out, bad = scalarmult(key, b"".join(_hash(msgs, dst, suite)))
    if bad >= 0:  # probability ~2^-250 per item
        raise ProtocolError(f"hash-to-curve produced a low-order point (item {bad} of a chunk)")
    return out


def reblind(key: bytes, points: bytes, digest_size: int) -> bytes:
    """BLAKE2b-``digest_size`` of ``x([k] Q)`` for each 32-byte point ``Q`` the peer sent."""
    shared, bad = scalarmult(key, points)
    if bad >= 0:
        raise ProtocolError(f"the peer sent an invalid curve point (low order) at offset {bad} of a chunk")
    blake2b = hashlib.blake2b
    return b"".join([blake2b(shared[i:i + 32], digest_size=digest_size, person=digest_person).digest()
                     for i in range(0, len(shared), 32)])


def warm_up() -> None:
    """Compile (or load from numba's cache) the batched kernel in this process."""
    x25519.scalarmult(bytes(32), bytes([9]) + bytes(31))
