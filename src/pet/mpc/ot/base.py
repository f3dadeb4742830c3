"""Semi-honest base OT over Curve25519 with X25519 only (no point addition needed).

``kappa`` (128) 1-out-of-2 OTs of 16-byte keys, in both directions at once, in one
message each way (:func:`base_ots`). Per direction ``d`` (``d`` = the party that will be
the OT-extension *sender*, which is the base-OT *receiver* here):

1. the base-OT sender draws ``r`` and sends ``R = rG`` (32 bytes, once for all OTs);
2. the base-OT receiver, for OT ``j`` with choice ``c_j``, draws a key pair ``(a_j, a_j G)``
   and an *obliviously sampled* point ``P_j`` = RFC 9380 ``hash_to_curve`` of 32 fresh
   random bytes (a uniform point of the prime-order subgroup whose discrete log nobody
   knows); it sends ``(pk_j^0, pk_j^1)`` with ``pk_j^{c_j} = a_j G`` and
   ``pk_j^{1-c_j} = P_j``, always in the order 0, 1 (64 bytes per OT);
3. the sender's keys are ``k_j^b = H(sid, d, j, b, T, r pk_j^b)``, the receiver's is
   ``k_j^{c_j} = H(sid, d, j, c_j, T, a_j R)``; ``T`` = SHA-256 of the transcript (R and
   every ``pk``), ``H`` = SHA-256 truncated to 16 bytes.

What each party learns (semi-honest): the sender sees two uniform-looking subgroup points
per OT and cannot tell which is the real key (deciding it means computing a discrete log);
the receiver knows ``a_j R`` only for its choice, ``r P_j`` is a CDH instance it cannot
solve. A point whose X25519 result is all zero (a low-order point) is refused with a
:class:`~pet.errors.ProtocolError`. Cost: ~128 X25519 exchanges and hash-to-curve maps per
direction per party, a few tens of milliseconds; 32 + 64 * 128 bytes each way.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from pet.errors import ProtocolError

__all__ = ["KAPPA", "base_ots", "session_id"]

KAPPA = 128
_DST = b"pet.mpc.ot/base-ot/oblivious-key/curve25519_XMD:SHA-512_ELL2_RO_"
_NONCE = 32


def session_id(nonce0: bytes, nonce1: bytes) -> bytes:
    """The session id: SHA-256 of both parties' fresh nonces (party 0's first)."""
    return hashlib.sha256(b"pet.mpc.ot/session\x00" + nonce0 + nonce1).digest()


def oblivious_key() -> bytes:
    """A point of the prime-order subgroup with unknown discrete log, as an X25519 u."""
    from pet.psi.hash_to_curve import hash_to_curve, u_to_bytes

    while True:
        point = hash_to_curve(os.urandom(32), _DST)
        if point is not None:
            return u_to_bytes(point[0])


def raw_bytes(public_key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def derive_key(sid: bytes, direction: int, j: int, b: int, transcript: bytes, shared: bytes) -> bytes:
    return hashlib.sha256(b"pet.mpc.ot/base-ot/key\x00" + sid + bytes([direction, b]) + j.to_bytes(4, "little")
                          + transcript + shared).digest()[:16]


def dh_shared(private_key, peer: bytes) -> bytes:
    try:
        return private_key.exchange(X25519PublicKey.from_public_bytes(peer))
    except ValueError:  # cryptography refuses an all-zero result: a low-order point
        raise ProtocolError("base OT: the peer sent a low-order curve point") from None


def transcript_hash(R: bytes, pks: bytes) -> bytes:
    return hashlib.sha256(b"pet.mpc.ot/base-ot/transcript\x00" + R + pks).digest()


def base_ots(channel, party: int, kappa: int = KAPPA):
    """Run the session handshake and ``kappa`` base OTs in each direction (one message
    each way). Returns ``(sid, choices, my_keys, pairs)``:

    * ``sid`` -- 32-byte session id (from both parties' fresh nonces);
    * ``choices`` (uint8 array of ``kappa`` bits) and ``my_keys`` (``kappa`` 16-byte keys
      ``k_j^{c_j}``): this party as base-OT receiver (OT-extension sender);
    * ``pairs`` -- ``kappa`` pairs ``(k_j^0, k_j^1)``: this party as base-OT sender
      (OT-extension receiver).
    """
    nonce = os.urandom(_NONCE)
    choices = np.frombuffer(os.urandom(kappa), dtype=np.uint8) & np.uint8(1)
    r = X25519PrivateKey.generate()
    R = raw_bytes(r.public_key())
    mine = []
    pk_bytes = bytearray()
    for j in range(kappa):
        a = X25519PrivateKey.generate()
        real, fake = raw_bytes(a.public_key()), oblivious_key()
        pair = (real, fake) if choices[j] == 0 else (fake, real)
        pk_bytes += pair[0] + pair[1]
        mine.append(a)
    msg = {"pet": "ot-base", "kappa": kappa, "nonce": nonce, "R": R, "pks": bytes(pk_bytes)}
    peer = channel.exchange(msg)
    if (not isinstance(peer, dict) or peer.get("pet") != "ot-base" or peer.get("kappa") != kappa
            or not isinstance(peer.get("nonce"), bytes) or len(peer["nonce"]) != _NONCE
            or not isinstance(peer.get("R"), bytes) or len(peer["R"]) != 32
            or not isinstance(peer.get("pks"), bytes) or len(peer["pks"]) != 64 * kappa):
        raise ProtocolError(f"base OT: the peer's message is not a kappa={kappa} base-OT message")
    sid = session_id(nonce, peer["nonce"]) if party == 0 else session_id(peer["nonce"], nonce)
    if peer["nonce"] == nonce:
        raise ProtocolError("base OT: the peer echoed this party's nonce")
    # this party as base-OT receiver: direction d = party (it will be the extension sender)
    t_recv = transcript_hash(peer["R"], bytes(pk_bytes))
    my_keys = [derive_key(sid, party, j, int(choices[j]), t_recv, dh_shared(mine[j], peer["R"])) for j in range(kappa)]
    # this party as base-OT sender: direction 1 - party
    pks = peer["pks"]
    t_send = transcript_hash(R, pks)
    pairs = []
    for j in range(kappa):
        k0 = derive_key(sid, 1 - party, j, 0, t_send, dh_shared(r, pks[64 * j:64 * j + 32]))
        k1 = derive_key(sid, 1 - party, j, 1, t_send, dh_shared(r, pks[64 * j + 32:64 * j + 64]))
        pairs.append((k0, k1))
    return sid, choices, my_keys, pairs
