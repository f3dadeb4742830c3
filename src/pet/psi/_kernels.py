"""The CPU-heavy steps of ECDH-PSI, as picklable top-level functions for worker processes.

Measured here: ``cryptography``'s X25519 does not release the GIL (two threads take twice
as long as one), so :mod:`pet.psi._parallel` runs these in a process pool.

Points travel as one ``bytes`` string of ``32 * n`` bytes (u-coordinates, little-endian).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from pet.errors import InputError, ProtocolError
from pet.psi.hash_to_curve import encode_to_curve_u_batch, hash_to_curve_u

__all__ = ["blind", "reblind", "digest_person"]

#: Personalisation of the BLAKE2b digest of doubly-blinded points.
digest_person = b"pet-psi-v1"


def _hash(msgs: list[bytes], dst: bytes, suite: str) -> list[bytes]:
    if suite == "NU":
        return encode_to_curve_u_batch(msgs, dst)
    if suite == "RO":
        return [hash_to_curve_u(m, dst) for m in msgs]
    raise InputError(f"hash suite must be 'NU' or 'RO', got {suite!r}")


def blind(key: bytes, msgs: list[bytes], dst: bytes, suite: str) -> bytes:
    """``x([k] H(m))`` for each message: hash to curve25519, multiply by the secret key."""
    priv = X25519PrivateKey.from_private_bytes(key)
    exchange, load = priv.exchange, X25519PublicKey.from_public_bytes
    try:
        return b"".join([exchange(load(u)) for u in _hash(msgs, dst, suite)])
    except ValueError as exc:  # a low-order point: probability ~2^-250 per item
        raise ProtocolError(f"hash-to-curve produced a low-order point ({exc})") from None


def reblind(key: bytes, points: bytes, digest_size: int) -> bytes:
    """BLAKE2b-``digest_size`` of ``x([k] Q)`` for each 32-byte point ``Q`` the peer sent."""
    priv = X25519PrivateKey.from_private_bytes(key)
    exchange, load = priv.exchange, X25519PublicKey.from_public_bytes
    blake2b = hashlib.blake2b
    out = []
    append = out.append
    for i in range(0, len(points), 32):
        try:
            z = exchange(load(points[i:i + 32]))
        except ValueError:
            raise ProtocolError(
                f"the peer sent an invalid curve point (low order) at offset {i // 32} of a chunk"
            ) from None
        append(blake2b(z, digest_size=digest_size, person=digest_person).digest())
    return b"".join(out)
