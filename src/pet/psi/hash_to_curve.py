"""RFC 9380 hashing to curve25519 (Elligator 2) with SHA-512.

Two suites of RFC 9380 (section 8.5):

- ``curve25519_XMD:SHA-512_ELL2_NU_`` -- :func:`encode_to_curve`, one Elligator 2 map;
- ``curve25519_XMD:SHA-512_ELL2_RO_`` -- :func:`hash_to_curve`, two maps and a point
  addition (indistinguishable from a random oracle).

Both are checked against the RFC's test vectors (appendix J.7 of RFC 9380) in
``tests/psi/test_hash_to_curve.py``. The full functions return affine Montgomery points
``(x, y)`` with the cofactor cleared, exactly as in the RFC.

The PSI protocol only needs the u-coordinate (x) of a point, because X25519 works on
u-coordinates. :func:`encode_to_curve_u` is the fast path: it computes ``x(Q)`` of the
Elligator 2 output ``Q`` *before* cofactor clearing, with one field inversion and one
Legendre symbol and no square root. This is sound because an X25519 scalar is clamped
(a multiple of the cofactor 8): ``X25519(k, x(Q)) = x([k]Q) = x([k/8]P)`` with
``P = [8]Q = encode_to_curve(msg)``. :func:`hash_to_curve_u` is the same for the RO suite.

Field arithmetic uses gmpy2 (its ``powmod``/``invert``/``legendre`` are ~10x faster than
Python's ``pow`` here). Nothing in this module is secret-dependent except the messages;
it is not constant-time (the items hashed are the party's own data, processed locally).
"""

from __future__ import annotations

import hashlib

import gmpy2

from pet.errors import InputError

__all__ = [
    "P",
    "A",
    "expand_message_xmd",
    "hash_to_field",
    "map_to_curve_elligator2",
    "map_to_curve_u",
    "encode_to_curve",
    "hash_to_curve",
    "encode_to_curve_u",
    "hash_to_curve_u",
    "u_to_bytes",
    "SUITE_NU",
    "SUITE_RO",
]

#: The field prime 2^255 - 19.
P = gmpy2.mpz(2**255 - 19)
#: Montgomery coefficient of curve25519 (B = 1).
A = gmpy2.mpz(486662)
_Z = gmpy2.mpz(2)  # the Elligator 2 constant Z of the suite
_L = 48  # bytes per field element: ceil((ceil(log2 p) + k) / 8), k = 128
_SQRT_EXP = (P + 3) // 8
_SQRT_M1 = gmpy2.powmod(2, (P - 1) // 4, P)  # a square root of -1
_B_IN_BYTES = 64  # SHA-512 output
_S_IN_BYTES = 128  # SHA-512 block

SUITE_NU = "curve25519_XMD:SHA-512_ELL2_NU_"
SUITE_RO = "curve25519_XMD:SHA-512_ELL2_RO_"


def _check_dst(dst: bytes) -> bytes:
    if not isinstance(dst, (bytes, bytearray)):
        raise InputError(f"dst must be bytes, got {type(dst).__name__}")
    if not 0 < len(dst) <= 255:
        raise InputError(f"dst must be 1..255 bytes long, got {len(dst)}")
    return bytes(dst)


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-512."""
    dst = _check_dst(dst)
    ell = -(-len_in_bytes // _B_IN_BYTES)
    if ell > 255 or len_in_bytes > 65535:
        raise InputError(f"len_in_bytes={len_in_bytes} is too large for expand_message_xmd")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(
        bytes(_S_IN_BYTES) + bytes(msg) + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime
    ).digest()
    b = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    out = [b]
    for i in range(2, ell + 1):
        b = hashlib.sha512(bytes(x ^ y for x, y in zip(b0, b)) + bytes([i]) + dst_prime).digest()
        out.append(b)
    return b"".join(out)[:len_in_bytes]


def hash_to_field(msg: bytes, count: int, dst: bytes) -> list:
    """RFC 9380 section 5.2 for GF(2^255 - 19): ``count`` field elements."""
    data = expand_message_xmd(msg, dst, count * _L)
    return [gmpy2.mpz(int.from_bytes(data[i * _L:(i + 1) * _L], "big")) % P for i in range(count)]


def _is_square(x) -> bool:
    return gmpy2.legendre(x, P) != -1  # 0 counts as a square (RFC 9380 section 4)


def _sqrt(x):
    """A square root of a square ``x`` (p = 5 mod 8)."""
    y = gmpy2.powmod(x, _SQRT_EXP, P)
    if (y * y - x) % P != 0:
        y = y * _SQRT_M1 % P
    return y


def _sgn0(x) -> int:
    return int(x % 2)


def map_to_curve_elligator2(u):
    """RFC 9380 section 6.7.1 (J = A, K = 1, Z = 2): field element -> point (x, y)."""
    u = gmpy2.mpz(u) % P
    d = (1 + _Z * u * u) % P
    x1 = (-A * gmpy2.invert(d, P)) % P if d else gmpy2.mpz(0)  # inv0
    if x1 == 0:
        x1 = (-A) % P
    gx1 = x1 * (x1 * (x1 + A) + 1) % P
    x2 = (-x1 - A) % P
    if _is_square(gx1):
        x, y = x1, _sqrt(gx1)
        if _sgn0(y) != 1:
            y = (-y) % P
    else:
        gx2 = x2 * (x2 * (x2 + A) + 1) % P
        x, y = x2, _sqrt(gx2)
        if _sgn0(y) != 0:
            y = (-y) % P
    return x, y


def map_to_curve_u(u):
    """The x-coordinate of :func:`map_to_curve_elligator2` ``(u)``, without a square root."""
    u = gmpy2.mpz(u) % P
    d = (1 + _Z * u * u) % P
    x1 = (-A * gmpy2.invert(d, P)) % P if d else gmpy2.mpz(0)
    if x1 == 0:
        x1 = (-A) % P
    gx1 = x1 * (x1 * (x1 + A) + 1) % P
    return x1 if gmpy2.legendre(gx1, P) != -1 else (-x1 - A) % P


# -- affine Montgomery arithmetic (B = 1); None is the point at infinity ----------------


def _add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = (3 * x1 * x1 + 2 * A * x1 + 1) * gmpy2.invert(2 * y1, P) % P
    else:
        lam = (y2 - y1) * gmpy2.invert((x2 - x1) % P, P) % P
    x3 = (lam * lam - A - x1 - x2) % P
    y3 = (lam * (x1 - x3) - y1) % P
    return x3, y3


def _clear_cofactor(point):
    for _ in range(3):  # h_eff = 8
        point = _add(point, point)
    return point


def encode_to_curve(msg: bytes, dst: bytes):
    """``curve25519_XMD:SHA-512_ELL2_NU_`` encode_to_curve: ``(x, y)`` or None (identity)."""
    (u,) = hash_to_field(msg, 1, dst)
    return _clear_cofactor(map_to_curve_elligator2(u))


def hash_to_curve(msg: bytes, dst: bytes):
    """``curve25519_XMD:SHA-512_ELL2_RO_`` hash_to_curve: ``(x, y)`` or None (identity)."""
    u0, u1 = hash_to_field(msg, 2, dst)
    return _clear_cofactor(_add(map_to_curve_elligator2(u0), map_to_curve_elligator2(u1)))


def u_to_bytes(x) -> bytes:
    """A u-coordinate as the 32-byte little-endian string X25519 takes."""
    return int(x).to_bytes(32, "little")


def encode_to_curve_u(msg: bytes, dst: bytes) -> bytes:
    """32-byte u-coordinate of the NU map output before cofactor clearing (see module doc)."""
    (u,) = hash_to_field(msg, 1, dst)
    return u_to_bytes(map_to_curve_u(u))


def hash_to_curve_u(msg: bytes, dst: bytes) -> bytes:
    """32-byte u-coordinate of ``Q0 + Q1`` of the RO suite before cofactor clearing.

    The identity (probability about 2^-252) is returned as u = 0, which X25519 rejects.
    """
    u0, u1 = hash_to_field(msg, 2, dst)
    q = _add(map_to_curve_elligator2(u0), map_to_curve_elligator2(u1))
    return u_to_bytes(0 if q is None else q[0])


def encode_to_curve_u_batch(msgs, dst: bytes) -> list[bytes]:
    """:func:`encode_to_curve_u` for many messages (the hot loop of the PSI; same output).

    Uses one field inversion for the whole batch (Montgomery's trick) and decides the
    Elligator 2 branch with a Legendre symbol of ``gx1 * d^4`` (a square factor), so no
    per-item inversion or square root is needed.
    """
    dst = _check_dst(dst)
    dst_prime = dst + bytes([len(dst)])
    start = hashlib.sha512(bytes(_S_IN_BYTES))  # Z_pad, one whole block, absorbed once
    post = _L.to_bytes(2, "big") + b"\x00" + dst_prime
    tail = b"\x01" + dst_prime
    sha512 = hashlib.sha512
    from_bytes = gmpy2.mpz.from_bytes
    p, a = P, A
    a2 = A * A
    one = gmpy2.mpz(1)
    dens = []  # d = 1 + 2u^2 (1 when d == 0, flagged by a None numerator)
    nums = []  # x = num / d
    for msg in msgs:
        h = start.copy()
        h.update(msg)
        h.update(post)
        u = from_bytes(sha512(h.digest() + tail).digest()[:_L], "big") % p
        d = (1 + 2 * u * u) % p
        if not d:  # inv0(0) = 0 -> x1 = 0 -> x1 = -A; decide with the plain formula
            x1 = (-a) % p
            gx1 = x1 * (x1 * (x1 + a) + 1) % p
            dens.append(one)
            nums.append(x1 if gmpy2.legendre(gx1, p) != -1 else (-x1 - a) % p)
            continue
        # x1 = -A/d, gx1 = -A (d^2 - A^2 d + A^2) / d^3; gx1 * d^4 has the same Legendre symbol
        if gmpy2.legendre(-a * d * (d * d - a2 * d + a2) % p, p) != -1:
            nums.append(-a)  # x1 = -A / d
        else:
            nums.append(-2 * a * u * u)  # x2 = -x1 - A = -2 A u^2 / d
        dens.append(d)
    n = len(dens)
    if n == 0:
        return []
    prefix = [one] * n
    acc = one
    for i in range(n):
        prefix[i] = acc
        acc = acc * dens[i] % p
    inv = gmpy2.invert(acc, p)
    out = [b""] * n
    for i in range(n - 1, -1, -1):
        out[i] = (nums[i] * inv * prefix[i] % p).to_bytes(32, "little")
        inv = inv * dens[i] % p
    return out
