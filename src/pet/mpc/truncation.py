"""Exact fixed-point truncation with dealer help (1 round).

``trunc(x, s)`` computes shares of ``floor(x / 2^s)`` or that plus one ulp (never more),
for every ``x`` with ``|x| < 2^62``, with no probabilistic large-error failure.

Protocol (dealer gives shares of a uniform ``r``, of ``r >> s`` and of ``msb(r)``):

1. ``x' = x + 2^62`` (party 0 adds the constant), so ``x' in [0, 2^63)``;
2. open ``c = x' + r`` (one round, 8 bytes per element each way); ``c`` is uniform, so
   neither party learns anything about ``x``;
3. the wrap of ``x' + r`` over 2^64 is ``w = msb(r) * (1 - msb(c))`` exactly, because
   ``x' < 2^63``;
4. ``x' >> s = (c >> s) - (r >> s) + w * 2^(64-s) - borrow``, where ``borrow`` (0 or 1) is
   whether the low ``s`` bits of ``c`` are below those of ``r``; we drop it, which is the
   at-most-one-ulp error (``floor`` or ``floor + 1``);
5. subtract ``2^(62-s)`` (party 0) to undo step 1.

Correlated randomness: one ``trunc`` spec (two ring elements of correction per element).

Dealer-free (:class:`~pet.mpc.ot.source.OTSource`), the same ``trunc`` spec is served in
the wrap-bit form instead (``r = 0`` and the fields of :func:`_trunc_wrap`): still one
round, but each party sends one bit per element instead of 8 bytes, and the material is
one correlated OT of ``s`` bits per element instead of 64. The dealer path is unchanged.
"""

from __future__ import annotations

import numpy as np

from pet.mpc.correlated import TruncPair, field_pieces, material_source

__all__ = ["trunc", "trunc_spec", "trunc_with", "trunc_masked"]

_OFFSET = np.uint64(1 << 62)
_SIXTY_THREE = np.uint64(63)


def trunc_spec(shape, shift: int) -> TruncPair:
    """The correlated randomness of one truncation of ``shape`` by ``shift`` bits."""
    return TruncPair(tuple(int(v) for v in shape), int(shift))


def trunc_masked(session, xp: np.ndarray, shift: int, mat: dict) -> np.ndarray:
    """Steps 2-5 given this party's share of ``x' + r`` (``x + r``, plus ``2^62`` at party
    0) -- callers may fuse step 1 into their own kernel."""
    from pet.mpc import _kernels

    shape = xp.shape
    flat = np.ascontiguousarray(xp).reshape(-1)
    if "wprod" in mat:
        return _trunc_wrap(session, flat, shift, mat).reshape(shape)
    other = session.exchange(f"trunc{shape}>>{shift}", flat)
    other = np.asarray(other, dtype=np.uint64).reshape(-1)
    if other.size != flat.size:
        from pet.errors import ProtocolError

        raise ProtocolError("malformed truncation message")
    out = np.empty_like(flat)
    party0 = session.party == 0
    rs, rm = material_source(mat, "rs"), material_source(mat, "rm")
    if isinstance(rs, np.ndarray) and isinstance(rm, np.ndarray):  # whole arrays: one call
        _kernels.trunc_finish(flat, other, rs, rm, int(shift), party0, out)
        return out.reshape(shape)
    # a streamed pair: rs, rm read in pieces into reused buffers
    for i0, m, (rs_piece, rm_piece) in field_pieces([rs, rm], flat.size):
        _kernels.trunc_finish(flat[i0:i0 + m], other[i0:i0 + m], rs_piece, rm_piece, int(shift), party0,
                              out[i0:i0 + m])
    return out.reshape(shape)


def _trunc_wrap(session, flat: np.ndarray, shift: int, mat: dict) -> np.ndarray:
    """The dealer-free form (material of :class:`~pet.mpc.ot.source.OTSource`: ``r = 0``,
    a random bit ``wbit`` per element at each party -- ``a`` at party 0, ``b`` at party 1 --
    and shares ``wprod`` of ``2^(64-s) a b``). ``flat`` is this party's share of ``x'``.

    The wrap of ``x'_0 + x'_1`` over 2^64 is ``w = m0 OR m1 = m0 + m1 - m0 m1`` with
    ``m_p = msb(x'_p)``, because ``x' < 2^63`` (Cheetah's MSB0-to-wrap). One round: party 0
    sends ``d = m0 ^ a``, party 1 ``e = m1 ^ b`` (one bit per element, uniform); then
    ``m0 m1 = (a ^ d)(b ^ e) = de + d(1-2e) b + e(1-2d) a + (1-2d)(1-2e) ab``, all local
    given the shares of ``ab``. Each party outputs ``(x'_p >> s) - 2^(64-s) [w]_p``;
    party 0 adds ``1 - 2^(62-s)``: the sum is ``floor(x' / 2^s) + 1 - carry - 2^(62-s)``
    with ``carry`` (0 or 1) the carry of the low ``s`` bits, so the result is ``floor`` or
    ``floor + 1`` ulp, as with the dealer. A party learns ``d`` or ``e``: a bit masked by
    the other's uniform random bit."""
    from pet.mpc.ot import _kernels as _ot_kernels

    n = flat.size
    mine = np.zeros(-(-n // 64), dtype=np.uint64)
    own = mat["wbit"].reshape(-1)
    _ot_kernels.wrap_mask_bits(flat, own, mine)
    other = session.exchange(f"trunc({n})>>{shift}/wrap", mine)
    if not (isinstance(other, np.ndarray) and other.dtype == np.uint64 and other.shape == mine.shape):
        from pet.errors import ProtocolError

        raise ProtocolError("malformed truncation message")
    d, e = (mine, other) if session.party == 0 else (other, mine)
    out = np.empty_like(flat)
    _ot_kernels.wrap_trunc_finish(flat, own, mat["wprod"].reshape(-1), d, e, int(shift), session.party == 0, out)
    return out


def trunc_with(session, x: np.ndarray, shift: int, mat: dict) -> np.ndarray:
    """Steps 1-5 with the given ``trunc`` material; returns this party's share."""
    xp = np.reshape(x, -1) + mat["r"].reshape(-1)  # 1-d: 0-d shares wrap without scalar warnings
    if session.party == 0:
        xp += _OFFSET
    return trunc_masked(session, xp.reshape(np.shape(x)), shift, mat)


def trunc(session, x: np.ndarray, shift: int) -> np.ndarray:
    """Shares of ``x >> shift`` (arithmetic, at most 1 ulp high); see the module docstring.
    ``shift == 0`` returns ``x`` unchanged."""
    if int(shift) == 0:
        return x
    (mat,) = session.correlated([trunc_spec(x.shape, shift)])
    return trunc_with(session, x, shift, mat)
