"""1-out-of-N OT extension of Kolesnikov, Kumaresan, Rosulek and Trieu (KKRT16), the
batched OPRF behind :mod:`pet.psi.kkrt`. Semi-honest.

It is IKNP with a wider matrix: ``k = 512`` base OTs instead of 128, and the receiver's
choice for OT ``b`` is a whole 512-bit codeword ``C(y_b)`` instead of one bit.

Roles: the *OT receiver* holds one codeword per OT; the *OT sender* ends with a key that
evaluates a PRF at any input. Steps:

1. Base OTs (:func:`base_ots_one_way`, one message each way): ``k = 512`` 1-out-of-2 OTs of
   16-byte seeds, the OT *sender* as base-OT receiver with random choice bits ``s``
   (the same X25519 construction as :mod:`pet.mpc.ot.base`, one direction only).
2. Per chunk of ``64 W`` OTs the receiver expands its seed pairs with AES-CTR
   (:class:`~pet.mpc.ot.aes.SeedStreams`, never restarted) into ``t0_j``, ``t1_j``
   (``64 W`` bits each, ``j < 512``) and sends ``u_j = t0_j ^ t1_j ^ d_j`` where ``d_j``
   is column ``j`` of the chunk's codeword matrix (64 bytes per OT). Its output for OT
   ``b`` is row ``b`` of ``t0``: ``t_b`` (512 bits).
3. The sender computes ``q_j = G(k_j^{s_j}) ^ s_j u_j = t0_j ^ s_j d_j``; transposed,
   ``q_b = t_b ^ (C(y_b) & s)``. For any codeword ``c``, ``q_b ^ (c & s)`` equals ``t_b``
   iff ``c = C(y_b)`` (codewords of a pseudorandom code differ in ~256 of 512 bits, so
   otherwise the two differ in ~128 unknown bits of ``s``). The caller hashes these
   values with a random oracle to get the OPRF outputs.

What each party learns: the sender sees ``u_j``, masked by the stream of the seed it did
not receive (``G(k_j^{1-s_j})``), so uniform; the receiver receives nothing in this
module. Traffic: ``64`` bytes per OT from receiver to sender, plus the base OTs
(``32 + 64 k`` bytes one way, 32 the other).

The transposes are the engine's 64x64 block kernel (:mod:`pet.mpc.ot._kernels`) applied to
``k / 64 = 8`` slabs (:mod:`pet.mpc.ot._kkrt_kernels`).
"""

from __future__ import annotations

import os

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pet.errors import InputError, ProtocolError
from pet.mpc.ot import _kernels, _kkrt_kernels
from pet.mpc.ot.aes import SeedStreams
from pet.mpc.ot.base import derive_key, dh_shared, oblivious_key, raw_bytes, session_id, transcript_hash

__all__ = ["CODE_BITS", "CODE_WORDS", "KkrtReceiver", "KkrtSender", "PseudorandomCode", "base_ots_one_way", "ecb"]

#: Width of the OT matrix and of the codewords (bits, and uint64 words).
CODE_BITS = 512
CODE_WORDS = CODE_BITS // 64
_NONCE = 32
_DIRECTION = 2  # key-derivation direction byte: distinct from the engine's 0 and 1


def base_ots_one_way(channel, party: int, *, ot_sender: bool, kappa: int = CODE_BITS):
    """``kappa`` base OTs in one direction, in one message each way.

    The party with ``ot_sender=True`` (the extension sender) is the base-OT *receiver*: it
    returns ``(sid, choices, keys)`` (uint8 bits, ``kappa`` 16-byte keys ``k_j^{s_j}``);
    the other returns ``(sid, pairs)`` (``kappa`` pairs ``(k_j^0, k_j^1)``). ``sid`` = SHA-256
    of both parties' fresh nonces, party 0's first. Protocol and security: as
    :mod:`pet.mpc.ot.base` (the receiver sends a real public key and an obliviously
    sampled point per OT; keys are bound to the session, the OT index, the choice and the
    transcript)."""
    if party not in (0, 1):
        raise InputError(f"party must be 0 or 1, got {party!r}")
    nonce = os.urandom(_NONCE)
    msg = {"pet": "kkrt-base", "kappa": kappa, "nonce": nonce, "role": "recv" if ot_sender else "send"}
    if ot_sender:
        choices = np.frombuffer(os.urandom(kappa), dtype=np.uint8) & np.uint8(1)
        secrets_, pks = [], bytearray()
        for j in range(kappa):
            a = X25519PrivateKey.generate()
            real, fake = raw_bytes(a.public_key()), oblivious_key()
            pks += real + fake if choices[j] == 0 else fake + real
            secrets_.append(a)
        msg["pks"] = bytes(pks)
    else:
        r = X25519PrivateKey.generate()
        msg["R"] = raw_bytes(r.public_key())
    peer = channel.exchange(msg)
    want = "send" if ot_sender else "recv"
    if (not isinstance(peer, dict) or peer.get("pet") != "kkrt-base" or peer.get("kappa") != kappa
            or peer.get("role") != want or not isinstance(peer.get("nonce"), bytes)
            or len(peer["nonce"]) != _NONCE or peer["nonce"] == nonce):
        raise ProtocolError(f"KKRT base OT: the peer's message is not a kappa={kappa} base-OT message of the "
                            "other role")
    sid = session_id(nonce, peer["nonce"]) if party == 0 else session_id(peer["nonce"], nonce)
    if ot_sender:
        R = peer.get("R")
        if not isinstance(R, bytes) or len(R) != 32:
            raise ProtocolError("KKRT base OT: the peer's point R is malformed")
        t = transcript_hash(R, msg["pks"])
        keys = [derive_key(sid, _DIRECTION, j, int(choices[j]), t, dh_shared(secrets_[j], R)) for j in range(kappa)]
        return sid, np.ascontiguousarray(choices), keys
    pks = peer.get("pks")
    if not isinstance(pks, bytes) or len(pks) != 64 * kappa:
        raise ProtocolError("KKRT base OT: the peer's public keys are malformed")
    t = transcript_hash(msg["R"], pks)
    pairs = [(derive_key(sid, _DIRECTION, j, 0, t, dh_shared(r, pks[64 * j:64 * j + 32])),
              derive_key(sid, _DIRECTION, j, 1, t, dh_shared(r, pks[64 * j + 32:64 * j + 64]))) for j in range(kappa)]
    return sid, pairs


class KkrtReceiver:
    """The OT receiver's side (step 2 of the module doc): :meth:`extend` per chunk."""

    def __init__(self, pairs: list):
        if len(pairs) != CODE_BITS:
            raise InputError(f"KkrtReceiver needs {CODE_BITS} seed pairs, got {len(pairs)}")
        self._g0 = SeedStreams([p[0] for p in pairs])
        self._g1 = SeedStreams([p[1] for p in pairs])
        self.ots = 0

    def extend(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``codes``: (4, 64 W, 2) uint64, the codeword chosen for each OT of the chunk in
        the key-major layout of :meth:`PseudorandomCode.encode`. Returns ``(u, t)``: ``u``
        (512, W) uint64 to send, ``t`` (64 W, 8) this side's output rows ``t_b``."""
        m = codes.shape[1] if codes.ndim == 3 else -1
        if m % 64 or codes.shape != (4, m, 2) or codes.dtype != np.uint64:
            raise InputError("codes must be a (4, 64 W, 2) uint64 array")
        W = m // 64
        t0 = self._g0.rows(W)
        t1 = self._g1.rows(W)
        u = np.empty((CODE_BITS, W), dtype=np.uint64)
        _kkrt_kernels.receiver_u(np.ascontiguousarray(codes), t0, t1, u)
        t = np.empty((m, CODE_WORDS), dtype=np.uint64)
        _kkrt_kernels.rows_to_ots(t0, t)
        self.ots += m
        return u, t


class KkrtSender:
    """The OT sender's side (step 3 of the module doc): :meth:`extend` per chunk.
    ``s`` (8 uint64 words) is the secret key part ANDed with a codeword."""

    def __init__(self, choices: np.ndarray, keys: list):
        if len(keys) != CODE_BITS or choices.shape != (CODE_BITS,):
            raise InputError(f"KkrtSender needs {CODE_BITS} choice bits and keys")
        self._s_bits = np.ascontiguousarray(choices, dtype=np.uint8)
        self.s = np.frombuffer(np.packbits(self._s_bits, bitorder="little").tobytes(), dtype="<u8").astype(np.uint64)
        self._g = SeedStreams(keys)
        self.ots = 0

    def extend(self, u: np.ndarray) -> np.ndarray:
        """``u``: the receiver's (512, W) matrix for the next chunk. Returns ``q`` (64 W, 8):
        ``q_b = t_b ^ (C(y_b) & s)``."""
        if not (isinstance(u, np.ndarray) and u.dtype == np.uint64 and u.ndim == 2 and u.shape[0] == CODE_BITS):
            raise ProtocolError(f"KKRT: the peer's u matrix is not a ({CODE_BITS}, W) uint64 array")
        W = u.shape[1]
        g = self._g.rows(W)
        _kernels.sender_q(g, u, self._s_bits)
        q = np.empty((64 * W, CODE_WORDS), dtype=np.uint64)
        _kkrt_kernels.rows_to_ots(g, q)
        self.ots += 64 * W
        return q


def ecb(key: bytes, blocks: np.ndarray) -> np.ndarray:
    """AES-128-ECB of the 128-bit blocks ``blocks`` ((n, 2) uint64) under ``key``, (n, 2)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    x = np.ascontiguousarray(blocks, dtype=np.uint64)
    n = x.shape[0]
    out = np.empty(2 * n + 2, dtype=np.uint64)  # update_into wants 15 spare bytes
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - a keyed PRF on distinct blocks
    if n:
        enc.update_into(memoryview(x).cast("B"), memoryview(out).cast("B"))
    return out[:2 * n].reshape(n, 2)


class PseudorandomCode:
    """The KKRT pseudorandom code: ``C(x) = AES_K0(x) || AES_K1(x) || AES_K2(x) || AES_K3(x)``
    for a 128-bit input ``x`` (512 bits out), with the four keys derived from the session
    id (fixed after both inputs are: semi-honest parties cannot choose inputs against
    them). Distinct inputs give codewords at Hamming distance ~256, far above the
    ``kappa = 128`` KKRT needs (KKRT16 section 4; libOTe ``KkrtNcoOtSender``)."""

    def __init__(self, sid: bytes):
        import hashlib

        self.keys = [hashlib.sha256(b"pet.mpc.ot/kkrt/code\x00" + sid + bytes([i])).digest()[:16] for i in range(4)]

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Codewords of the inputs ``x`` ((n, 2) uint64), key-major: (4, n, 2) uint64, so
        word ``w`` of codeword ``k`` is ``out[w // 2, k, w % 2]`` (each AES output lands in
        place, no interleaving copy)."""
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        x = np.ascontiguousarray(x, dtype=np.uint64)
        n = x.shape[0]
        flat = np.empty(8 * n + 2, dtype=np.uint64)  # update_into wants 15 spare bytes after each part
        src = memoryview(x).cast("B")
        for i, key in enumerate(self.keys):
            if n:
                enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - PRF on distinct blocks
                enc.update_into(src, memoryview(flat[2 * n * i:2 * n * (i + 1) + 2]).cast("B"))
        return flat[:8 * n].reshape(4, n, 2)
