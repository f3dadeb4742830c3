"""The wide ring Z_2^128: :class:`Shared128`, values the 64-bit ring cannot hold.

A :class:`Shared128` holds this party's share as uint64 limbs, shape ``(*shape, 2)``
(``[..., 0]`` the low word, ``[..., 1]`` the high word), and ``frac`` fractional bits,
like :class:`~pet.mpc.Shared`. The secret is ``share_0 + share_1 mod 2^128`` read as a
signed 128-bit integer, divided by ``2^frac``.

Range: every encoded value must satisfy ``|v * 2^frac| < 2^126`` (:data:`SAFE_BITS`; the
truncation shifts by ``2^126``), and a product's raw value (both operands' fractional
bits) too: e.g. integers up to ``2^63`` times integers up to ``2^62``, or ``1e15 x 1e15 =
1e30 < 2^100`` with up to 26 fractional bits. Outside it the result wraps, as in the 64-bit
ring; :meth:`Shared128.mul` with ``check_range=True`` and bounds refuses instead.

Operations and their cost (online; ``n`` elements; 64-bit figures for comparison, dealer):

==========================  ========  ===============================  =====================
operation                   rounds    bytes per element, each party    64-bit ring
==========================  ========  ===============================  =====================
``+ -``, ``* int``, sum     0         0                                0
``Shared.to_ring(128)``     1         1 bit                            --
``x.to_ring(64)``           0         0 (needs ``|v| 2^f < 2^62``)     --
``x * y`` (Beaver)          1         32                               1 round, 16
``rescale`` (truncate)      1 per 64  1 bit                            1 round, 8 (dealer)
                            bits                                       or 1 bit (OT)
``x * y`` with truncation   2         32 + 1 bit                       2 rounds, 24
``<``, sign                 17        2 x 33 + 1 bit                   8 rounds, 33
==========================  ========  ===============================  =====================

Correlated randomness (both sources, :mod:`pet.mpc.correlated`): ``triple128`` (dealer:
two words of correction per element, to party 1; OT source: two
:class:`~pet.mpc.ot.gilboa128.Gilboa128` products, 8 KiB per element for both parties
together, vs 2.5 KiB for a 64-bit triple) and ``wrapbit`` (dealer: one word; OT source:
one correlated OT of a 64-bit message).

Protocols (semi-honest; what a party learns: nothing -- every opened word is masked by a
uniform value or bit of the other party's material):

* **lift** ``Z_2^64 -> Z_2^128`` of a value ``|x| < 2^62``: ``x' = x + 2^62`` lies in
  ``[0, 2^63)``, so ``x'_0 + x'_1 = x' + 2^64 w`` with the wrap ``w = m_0 OR m_1``,
  ``m_p = msb(x'_p)``. Party 0 opens ``m_0 ^ a``, party 1 ``m_1 ^ b`` (``a``, ``b`` the
  ``wrapbit`` bits: one bit per element each way); with the shares of ``ab`` both get
  shares of ``m_0 m_1`` and of ``w = m_0 + m_1 - m_0 m_1`` (mod 2^64 suffices: it is
  multiplied by ``2^64``). The 128-bit share is ``(x'_p, -[w]_p)``, minus ``2^62`` at
  party 0. Exact.
* **truncation** by ``s <= 64`` bits of ``|x| < 2^126``: the same wrap-bit step on bit 127
  of ``x' = x + 2^126``; each party outputs ``(x'_p >> s) - 2^(128-s) [w]_p`` (party 0 adds
  ``1 - 2^(126-s)``): ``floor(x / 2^s)`` or one ulp more, as the 64-bit truncation.
* **product**: Beaver with a ``triple128``: open ``d = x - a``, ``e = y - b``.
* **sign**: the sign of ``x`` is bit 63 of ``hi_0 + hi_1 + carry`` with ``carry`` the carry
  of ``lo_0 + lo_1``, which is bit 63 of ``(lo_0 >> 1) + (lo_1 >> 1) + b_0 b_1`` (``b_p`` the
  low bit of ``lo_p``; the AND by one wrap-bit round): exact, 1 + 8 + 8 rounds (two
  64-bit MSBs, :func:`pet.mpc.boolean.msb`).
* **limbs**: :func:`split_limbs` writes each party's share as five 26-bit limbs, a 64-bit
  sharing of integers below ``2^27``; an integer linear map with non-negative
  coefficients (a 0/1 group matrix product over ``m`` rows) keeps them below
  ``m 2^27 < 2^62`` in the 64-bit ring, and :func:`join_limbs` lifts and recombines them
  (one lift round). That is how a 64-bit matrix product sums wide values per group.
"""

from __future__ import annotations

import numpy as np

from pet.errors import InputError, PetTypeError, PrecisionError, ProtocolError
from pet.mpc import _kernels128 as K
from pet.mpc.correlated import Triple128, WrapBit

__all__ = ["Shared128", "SAFE_BITS", "LIMB_BITS", "LIMBS", "encode", "decode", "lift", "lift_many", "to_ring",
           "constant", "split_limbs", "join_limbs", "sign_bit", "where", "reveal", "mul_specs"]

#: Encoded magnitudes in the wide ring must be below ``2^SAFE_BITS``.
SAFE_BITS = 126
#: Width of the limbs of :func:`split_limbs` (five limbs cover 128 bits).
LIMB_BITS = 26
#: Number of limbs of :func:`split_limbs`.
LIMBS = 5
_OFF62 = np.uint64(1 << 62)


# -- encoding (public values) -----------------------------------------------------------------

def _negate(words: np.ndarray, where) -> np.ndarray:
    lo, hi = words[..., 0], words[..., 1]
    nlo = np.uint64(0) - lo
    nhi = np.uint64(0) - hi - (lo != 0).astype(np.uint64)
    out = words.copy()
    out[..., 0] = np.where(where, nlo, lo)
    out[..., 1] = np.where(where, nhi, hi)
    return out


def encode(x, frac: int) -> np.ndarray:
    """Public reals or integers ``x`` as 128-bit words ``(*shape, 2)`` with ``frac``
    fractional bits (floats rounded to the nearest multiple of ``2^-frac``); raises
    :class:`~pet.errors.PrecisionError` if ``|x * 2^frac| >= 2^126`` or not finite."""
    frac = _check_frac(frac)
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise PetTypeError(f"x must be a real numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        scaled = np.rint(arr.astype(np.float64) * 2.0 ** frac)
        if not np.all(np.isfinite(scaled)):
            raise PrecisionError("cannot encode NaN or infinite values")
        if scaled.size and float(np.max(np.abs(scaled))) >= 2.0 ** SAFE_BITS:
            raise PrecisionError(f"a value is outside the wide ring's safe range |x| < 2^{SAFE_BITS - frac} "
                                 f"for frac_bits={frac}")
        mag = np.abs(scaled)
        hi = np.floor(mag / 2.0 ** 64)
        lo = mag - hi * 2.0 ** 64
        words = np.stack([lo.astype(np.uint64), hi.astype(np.uint64)], axis=-1)
        return _negate(words, scaled < 0)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and int(arr.max()) >= 2 ** 63:
        raise PrecisionError("an unsigned integer above 2^63 is not supported")
    ints = arr.astype(np.int64)
    if ints.size and frac and max(abs(int(ints.max())), abs(int(ints.min()))) >= 2 ** (SAFE_BITS - frac):
        raise PrecisionError(f"an integer is outside the wide ring's safe range |x| < 2^{SAFE_BITS - frac}")
    flat = np.ascontiguousarray(ints.reshape(-1)).view(np.uint64)
    out = np.empty((flat.size, 2), dtype=np.uint64)
    K.lift_words(flat, out)
    if frac:
        K.shift_left(out.copy(), frac, out)
    return out.reshape(ints.shape + (2,))


def decode(words, frac: int):
    """128-bit words ``(*shape, 2)`` as values: int64 for ``frac == 0`` when every value
    fits (else an object array of Python ints), float64 ``v / 2^frac`` otherwise."""
    words = np.asarray(words, dtype=np.uint64)
    lo, hi = words[..., 0], words[..., 1]
    if frac == 0:
        if np.all(hi == np.uint64(0) - (lo >> np.uint64(63))):
            return lo.view(np.int64).copy()
        out = np.empty(lo.shape, dtype=object)
        for idx in np.ndindex(lo.shape):
            v = (int(hi[idx]) << 64) | int(lo[idx])
            out[idx] = v - (1 << 128) if v >> 127 else v
        return out
    neg = (hi >> np.uint64(63)).astype(bool)
    mag = _negate(words, neg)
    val = mag[..., 1].astype(np.float64) * 2.0 ** 64 + mag[..., 0].astype(np.float64)
    return np.where(neg, -val, val) / 2.0 ** frac


def _check_frac(frac) -> int:
    if isinstance(frac, bool) or not isinstance(frac, (int, np.integer)) or not 0 <= int(frac) <= 120:
        raise InputError(f"frac_bits of a wide value must be an int in [0, 120], got {frac!r}")
    return int(frac)


def constant(session, value, frac: int = 0) -> Shared128:
    """A public constant as a trivially shared wide value (party 0 holds it)."""
    enc = encode(value, frac)
    return Shared128(session, enc if session.party == 0 else np.zeros_like(enc), frac)


# -- the wrap-bit step (lift, truncation) -----------------------------------------------------

def _wrap_open(session, op: str, top: np.ndarray, mat: dict):
    """Open ``msb(top) ^ wbit`` (one bit per element each way); returns ``(d, e)``."""
    n = top.size
    mine = np.zeros(-(-n // 64), dtype=np.uint64)
    K.mask_bits(top, mat["wbit"].reshape(-1), mine)
    other = session.exchange(op, mine)
    if not (isinstance(other, np.ndarray) and other.dtype == np.uint64 and other.shape == mine.shape):
        raise ProtocolError("malformed wide-ring wrap message")
    return (mine, other) if session.party == 0 else (other, mine)


def lift_words(session, x: np.ndarray) -> np.ndarray:
    """This party's 128-bit shares ``(*shape, 2)`` of the 64-bit shared ``x`` (each value
    ``|x| < 2^62``): 1 round, 1 bit per element each way (see the module doc)."""
    shape = x.shape
    n = x.size
    (mat,) = session.correlated([WrapBit((n,))])
    xp = np.ascontiguousarray(x, dtype=np.uint64).reshape(-1).copy()
    if session.party == 0:
        xp += _OFF62
    d, e = _wrap_open(session, f"lift128({n})", xp, mat)
    out = np.empty((n, 2), dtype=np.uint64)
    K.lift_finish(xp, mat["wbit"].reshape(-1), mat["wprod"].reshape(-1), d, e, session.party == 0, out)
    return out.reshape(shape + (2,))


def trunc_words(session, x: np.ndarray, shift: int, mat: dict | None = None) -> np.ndarray:
    """Shares of ``x >> shift`` (arithmetic; ``|x| < 2^126``; at most one ulp high per
    round of 64 bits): 1 round per 64 bits of ``shift``."""
    shift = int(shift)
    while shift > 0:
        s = min(shift, 64)
        shape = x.shape
        flat = np.ascontiguousarray(x).reshape(-1, 2)
        n = flat.shape[0]
        if mat is None:
            (mat,) = session.correlated([WrapBit((n,))])
        xp = flat.copy()
        if session.party == 0:
            xp[:, 1] += np.uint64(1 << 62)  # + 2^126
        d, e = _wrap_open(session, f"trunc128({n})>>{s}", np.ascontiguousarray(xp[:, 1]), mat)
        out = np.empty_like(xp)
        K.trunc_finish(xp, mat["wbit"].reshape(-1), mat["wprod"].reshape(-1), d, e, s, session.party == 0, out)
        x = out.reshape(shape)
        shift -= s
        mat = None
    return x


def mul_specs(size: int, shift: int) -> list:
    """The correlated randomness of one wide product of ``size`` elements truncated by
    ``shift <= 64`` bits (for :meth:`pet.mpc.Session.prepare`)."""
    specs = [Triple128((int(size),))]
    if shift:
        specs.append(WrapBit((int(size),)))
    return specs


def mul_words(session, x: np.ndarray, y: np.ndarray, shift: int = 0) -> np.ndarray:
    """Shares of ``(x * y) >> shift`` mod 2^128 for equal-shape word arrays ``(*shape, 2)``:
    Beaver (1 round, 32 bytes per element each way) and, if ``shift``, one truncation
    round per 64 bits."""
    shape = x.shape
    n = int(np.prod(shape[:-1], dtype=np.int64))
    mats = session.correlated(mul_specs(n, shift if shift <= 64 else 0))
    t = mats[0]
    xa = np.ascontiguousarray(x).reshape(n, 2)
    ya = np.ascontiguousarray(y).reshape(n, 2)
    a, b = t["a"].reshape(n, 2), t["b"].reshape(n, 2)
    mine = np.empty((2, n, 2), dtype=np.uint64)
    K.sub(xa, a, mine[0])
    K.sub(ya, b, mine[1])
    other = session.exchange(f"mul128{shape[:-1]}", mine)
    if not (isinstance(other, np.ndarray) and other.shape == mine.shape and other.dtype == np.uint64):
        raise ProtocolError("malformed wide Beaver opening")
    opened = np.empty_like(mine)
    K.add(mine[0], other[0], opened[0])
    K.add(mine[1], other[1], opened[1])
    z = np.empty((n, 2), dtype=np.uint64)
    K.beaver_finish(opened[0], opened[1], a, b, t["c"].reshape(n, 2), session.party == 0, z)
    if shift:
        z = trunc_words(session, z, shift, mats[1] if len(mats) > 1 else None)
    return z.reshape(shape)


# -- conversions ------------------------------------------------------------------------------

def lift(x) -> Shared128:
    """The 64-bit :class:`~pet.mpc.Shared` ``x`` in the wide ring (same value and
    ``frac``; 1 round). Needs ``|x| 2^frac < 2^62`` (the 64-bit safe range)."""
    from pet.mpc.shared import Shared

    if not isinstance(x, Shared):
        raise PetTypeError("lift expects a 64-bit Shared value")
    return Shared128(x.session, lift_words(x.session, x.share), x.frac)


def lift_many(values: list) -> list:
    """:func:`lift` of several 64-bit Shared values of one session in one round."""
    if not values:
        return []
    session = values[0].session
    flat = np.concatenate([np.ascontiguousarray(v.share).reshape(-1) for v in values])
    words = lift_words(session, flat)
    out, pos = [], 0
    for v in values:
        out.append(Shared128(session, words[pos:pos + v.size].reshape(v.shape + (2,)), v.frac))
        pos += v.size
    return out


def to_ring(x, bits: int):
    """``x`` in the ring of ``bits`` (64 or 128): see :meth:`pet.mpc.Shared.to_ring` and
    :meth:`Shared128.to_ring`."""
    from pet.mpc.shared import Shared

    if bits not in (64, 128) or isinstance(bits, bool):
        raise InputError(f"bits must be 64 or 128, got {bits!r}")
    if isinstance(x, Shared128):
        if bits == 128:
            return x
        return Shared(x.session, np.ascontiguousarray(x.share[..., 0]), min(x.frac, 63))
    if isinstance(x, Shared):
        return x if bits == 64 else lift(x)
    raise PetTypeError("to_ring expects a Shared or Shared128 value")


def split_limbs(x: Shared128):
    """Each party's share as five :data:`LIMB_BITS`-bit limbs: a 64-bit
    :class:`~pet.mpc.Shared` of shape ``(*shape, 5)`` with ``frac = 0`` holding integers
    ``L_j < 2^27`` with ``sum_j 2^(26 j) L_j = x * 2^frac (mod 2^128)``. Local."""
    from pet.mpc.shared import Shared

    lo, hi = x.share[..., 0], x.share[..., 1]
    mask = np.uint64((1 << LIMB_BITS) - 1)
    limbs = []
    for j in range(LIMBS):
        s = LIMB_BITS * j
        if s + LIMB_BITS <= 64:
            v = (lo >> np.uint64(s)) & mask
        elif s < 64:
            v = ((lo >> np.uint64(s)) | (hi << np.uint64(64 - s))) & mask
        else:
            v = (hi >> np.uint64(s - 64)) & mask
        limbs.append(v)
    return Shared(x.session, np.stack(limbs, axis=-1), 0)


def join_limbs(limbs, frac: int) -> Shared128:
    """The wide value ``sum_j 2^(26 j) L_j`` with ``frac`` fractional bits from a 64-bit
    Shared of limb sums ``(*shape, 5)`` (each ``0 <= L_j < 2^62``): one lift round."""
    w = lift_words(limbs.session, limbs.share)  # (*shape, 5, 2)
    shape = w.shape[:-2]
    flat = w.reshape(-1, LIMBS, 2)
    acc = np.zeros((flat.shape[0], 2), dtype=np.uint64)
    tmp = np.empty_like(acc)
    for j in range(LIMBS):
        K.shift_left(np.ascontiguousarray(flat[:, j]), LIMB_BITS * j, tmp)
        K.add(acc, tmp, acc)
    return Shared128(limbs.session, acc.reshape(shape + (2,)), frac)


# -- comparison -------------------------------------------------------------------------------

def sign_bit(x: Shared128):
    """Shared 0/1 (64-bit :class:`~pet.mpc.Shared`, ``frac = 0``): 1 where ``x < 0``
    (17 rounds: one wrap-bit AND, two 64-bit MSBs; exact)."""
    from pet.mpc.boolean import msb
    from pet.mpc.shared import Shared

    session = x.session
    lo = np.ascontiguousarray(x.share[..., 0]).reshape(-1)
    hi = np.ascontiguousarray(x.share[..., 1])
    n = lo.size
    (mat,) = session.correlated([WrapBit((n,))])
    d, e = _wrap_open(session, f"carry128({n})", lo << np.uint64(63), mat)  # opens b_p ^ wbit_p
    both_low = np.empty(n, dtype=np.uint64)
    K.and_finish(mat["wbit"].reshape(-1), mat["wprod"].reshape(-1), d, e, session.party == 0, both_low)
    # (lo_0 >> 1) + (lo_1 >> 1) + b_0 b_1 < 2^64: its bit 63 is the carry of lo_0 + lo_1
    carry = msb(session, ((lo >> np.uint64(1)) + both_low).reshape(hi.shape))
    return Shared(session, msb(session, np.ascontiguousarray(hi + carry)), 0)


def where(cond, a, b) -> Shared128:
    """``cond ? a : b`` for a shared 0/1 ``cond`` (64-bit, e.g. a comparison) and wide or
    64-bit ``a``, ``b``: ``b + cond * (a - b)`` (``cond`` lifted and one wide Beaver
    product: 2 rounds). :func:`pet.mpc.where` is for 64-bit values only."""
    a_w = a if isinstance(a, Shared128) else None
    b_w = b if isinstance(b, Shared128) else None
    if a_w is None and b_w is None:
        raise PetTypeError("ring128.where needs a Shared128 operand (use pet.mpc.where otherwise)")
    diff = (a_w - b) if a_w is not None else -(b_w - a)
    return diff.mul(cond) + b


def reveal(session, x: Shared128, to):
    """Open ``x`` to both parties (``to=None``) or to party ``to`` (see
    :meth:`pet.mpc.Session.reveal`; 16 bytes per element)."""
    op = f"reveal128{x.shape}->{to}"
    if to is None:
        other = session.exchange(op, x.share)
    elif to == session.party:
        other = session.exchange(op, None)
        if other is None:
            raise ProtocolError(f"both parties expect to receive reveal(to={to})")
    else:
        if session.exchange(op, x.share) is not None:
            raise ProtocolError(f"both parties sent their share for reveal(to={to})")
        return None
    if not (isinstance(other, np.ndarray) and other.shape == x.share.shape):
        raise ProtocolError("malformed reveal message")
    total = np.empty((x.size, 2), dtype=np.uint64)
    K.add(x.share.reshape(-1, 2), np.asarray(other, dtype=np.uint64).reshape(-1, 2), total)
    return decode(total.reshape(x.share.shape), x.frac)


# -- the type ---------------------------------------------------------------------------------

class Shared128:
    """A secret-shared array in Z_2^128 (see the module doc): ``share`` ``(*shape, 2)``
    uint64 limbs, ``frac`` fractional bits, ``ring_bits = 128``. Operators: ``+ - *``
    (with Shared128, 64-bit :class:`~pet.mpc.Shared` operands -- lifted first, 1 round --
    and public numbers), comparisons ``< <= > >=`` (shared 0/1 in the 64-bit ring), shape
    operations (local), :meth:`rescale`, :meth:`to_ring`, :meth:`sum`."""

    __array_ufunc__ = None
    __slots__ = ("session", "share", "frac")
    ring_bits = 128

    def __init__(self, session, share, frac: int):
        share = np.asarray(share, dtype=np.uint64)
        if share.ndim < 1 or share.shape[-1] != 2:
            raise InputError("a Shared128 share must have a last axis of 2 limbs")
        self.session = session
        self.share = share
        self.frac = _check_frac(frac)

    # -- shape ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.share.shape[:-1]

    @property
    def ndim(self) -> int:
        return self.share.ndim - 1

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<Shared128 frac_bits={self.frac} shape={self.shape} party={self.session.party}>"

    def __bool__(self):
        raise PetTypeError("the truth value of a Shared128 array is secret: reveal it first")

    __hash__ = None

    def _new(self, share, frac=None) -> Shared128:
        return Shared128(self.session, share, self.frac if frac is None else frac)

    def __getitem__(self, idx) -> Shared128:
        idx = idx if isinstance(idx, tuple) else (idx,)
        if any(i is Ellipsis for i in idx):
            idx = idx + (slice(None),)
        return self._new(np.ascontiguousarray(self.share[idx]))

    def reshape(self, *shape) -> Shared128:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._new(self.share.reshape(tuple(shape) + (2,)))

    def ravel(self) -> Shared128:
        return self._new(np.ascontiguousarray(self.share.reshape(-1, 2)))

    def transpose(self, *axes) -> Shared128:
        axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = axes or tuple(reversed(range(self.ndim)))
        return self._new(np.ascontiguousarray(self.share.transpose(axes + (self.ndim,))))

    @property
    def T(self) -> Shared128:
        return self.transpose()

    def copy(self) -> Shared128:
        return self._new(self.share.copy())

    def sum(self, axis=None, keepdims=False) -> Shared128:
        """Sum along ``axis`` (local, exact modulo 2^128)."""
        if axis is None:
            moved, rest = self.share.reshape(-1, 1, 2), ()
        else:
            axis = int(axis) % self.ndim
            moved = np.moveaxis(self.share, axis, 0)
            rest = moved.shape[1:-1]
            moved = moved.reshape(moved.shape[0], -1, 2)
        out = np.zeros((moved.shape[1], 2), dtype=np.uint64)
        K.sum_rows(np.ascontiguousarray(moved), out)
        res = out.reshape(rest + (2,))
        if keepdims:
            res = np.expand_dims(res, tuple(range(self.ndim)) if axis is None else axis)
        return self._new(res)

    # -- conversions ---------------------------------------------------------------------
    def to_ring(self, bits: int):
        """``to_ring(128)``: itself; ``to_ring(64)``: the 64-bit :class:`~pet.mpc.Shared`
        of the same value (local: the low limbs), correct only when ``|v| 2^frac < 2^62``
        (e.g. after :meth:`rescale` of a value known to be small)."""
        return to_ring(self, bits)

    def rescale(self, frac: int) -> Shared128:
        """The same value with ``frac`` fractional bits (down: exact truncation, 1 round
        per 64 bits; up: local shift)."""
        frac = _check_frac(frac)
        if frac == self.frac:
            return self
        if frac > self.frac:
            out = np.empty((self.size, 2), dtype=np.uint64)
            K.shift_left(np.ascontiguousarray(self.share.reshape(-1, 2)), frac - self.frac, out)
            return self._new(out.reshape(self.share.shape), frac)
        return self._new(trunc_words(self.session, self.share, self.frac - frac), frac)

    def _public(self, value, frac: int) -> np.ndarray:
        enc = encode(np.broadcast_to(np.asarray(value), self.shape), frac)
        return enc if self.session.party == 0 else np.zeros_like(enc)

    def _operand(self, other):
        """``other`` as a Shared128 of this session (64-bit Shared lifted: 1 round)."""
        from pet.mpc.shared import Shared

        if isinstance(other, Shared128):
            if other.session is not self.session:
                raise PetTypeError("Shared values belong to different sessions")
            return other
        if isinstance(other, Shared):
            if other.session is not self.session:
                raise PetTypeError("Shared values belong to different sessions")
            return lift(other)
        return None

    # -- arithmetic ----------------------------------------------------------------------
    def _linear(self, other, sign: int) -> Shared128:
        o = self._operand(other)
        if o is None:
            o = Shared128(self.session, self._public(other, self.frac), self.frac)
        top = max(self.frac, o.frac)
        a, b = self.rescale(top), o.rescale(top)
        xs, ys = np.broadcast_arrays(a.share, b.share)
        xs, ys = np.ascontiguousarray(xs).reshape(-1, 2), np.ascontiguousarray(ys).reshape(-1, 2)
        out = np.empty_like(xs)
        (K.add if sign > 0 else K.sub)(xs, ys, out)
        return self._new(out.reshape(np.broadcast_shapes(a.share.shape, b.share.shape)), top)

    def __add__(self, other):
        return self._linear(other, 1)

    __radd__ = __add__

    def __sub__(self, other):
        return self._linear(other, -1)

    def __neg__(self):
        return self._new(_negate(self.share, True))

    def __rsub__(self, other):
        return (-self)._linear(other, 1)

    def __pos__(self):
        return self

    def scaled(self, k=1, *, shift: int = 0) -> Shared128:
        """``self * k / 2^shift`` for a public integer (array) ``k``: local, exact (the
        result keeps ``frac + shift`` bits)."""
        kk = np.asarray(k)
        if kk.dtype.kind not in "biu":
            raise PetTypeError(f"k must be a public integer (array), got dtype {kk.dtype}")
        if not -self.frac <= int(shift) <= 120 - self.frac:
            raise InputError(f"shift must be in [{-self.frac}, {120 - self.frac}], got {shift!r}")
        words = self.share
        if not (kk.ndim == 0 and int(kk) == 1):
            kb = np.ascontiguousarray(np.broadcast_to(kk.astype(np.int64), self.shape)).reshape(-1)
            out = np.empty((self.size, 2), dtype=np.uint64)
            K.scale_int(np.ascontiguousarray(self.share.reshape(-1, 2)), kb, out)
            words = out.reshape(self.share.shape)
        return self._new(words, self.frac + int(shift))

    def mul(self, other, *, frac: int | None = None, check_range: bool = False, bounds=None) -> Shared128:
        """``self * other`` elementwise; the result has ``frac`` fractional bits (default:
        the larger of the operands'). Shared operands: Beaver mod 2^128 (1 round) plus one
        truncation round when bits are dropped. A public integer: local; a public real:
        encoded with ``self.frac`` bits, then truncated.

        Range: the raw product ``|x| 2^fx |y| 2^fy`` must stay below ``2^126``, else it
        wraps silently; ``check_range=True`` with ``bounds=(bx, by)`` raises
        :class:`~pet.errors.PrecisionError` before any message instead."""
        o = self._operand(other)
        if check_range:
            if bounds is None:
                raise InputError("mul(check_range=True) needs bounds=(bound_x, bound_y)")
            fy = o.frac if o is not None else self.frac
            raw = float(bounds[0]) * 2.0 ** self.frac * float(bounds[1]) * 2.0 ** fy
            if not raw < 2.0 ** SAFE_BITS:
                raise PrecisionError(f"mul: |x| <= {float(bounds[0]):g} times |y| <= {float(bounds[1]):g} "
                                     f"(fractional bits {self.frac} + {fy}) exceeds the wide ring's safe range "
                                     f"2^{SAFE_BITS}: the product would wrap")
        if o is None:
            arr = np.asarray(other)
            if arr.dtype.kind not in "biuf":
                raise PetTypeError(f"cannot multiply a Shared128 value by dtype {arr.dtype}")
            if arr.dtype.kind != "f" or bool(np.all(arr == np.rint(arr))):
                out = self.scaled(np.rint(arr).astype(np.int64) if arr.dtype.kind == "f" else arr)
                return out if frac is None else out.rescale(frac)
            # a public real: ~50 significant bits as an integer times 2^-fc (local), then one truncation
            top = float(np.max(np.abs(arr))) if arr.size else 0.0
            fc = max(0, min(64, 50 - (int(np.frexp(top)[1]) if top > 0 else 0)))
            k = np.rint(arr.astype(np.float64) * 2.0 ** fc).astype(np.int64)
            return self.scaled(k, shift=fc).rescale(self.frac if frac is None else _check_frac(frac))
        target = max(self.frac, o.frac) if frac is None else _check_frac(frac)
        raw = self.frac + o.frac
        shift = max(0, raw - target)
        xs, ys = np.broadcast_arrays(self.share, o.share)
        words = mul_words(self.session, np.ascontiguousarray(xs), np.ascontiguousarray(ys), shift)
        out = self._new(words, raw - shift)
        return out if out.frac == target else out.rescale(target)

    def __mul__(self, other):
        return self.mul(other)

    __rmul__ = __mul__

    # -- comparisons (shared 0/1 in the 64-bit ring) ---------------------------------------
    def __lt__(self, other):
        return sign_bit(self - other)

    def __gt__(self, other):
        return sign_bit(-(self - other))

    def __le__(self, other):
        return 1 - (self > other)

    def __ge__(self, other):
        return 1 - (self < other)

    def __eq__(self, other):
        """``1 - [d < 0] - [-d < 0]`` for ``d = self - other``: both signs in one batch."""
        from pet.mpc.shared import Shared

        d = self - other
        both = Shared128(self.session, np.concatenate([d.share.reshape(-1, 2), (-d).share.reshape(-1, 2)]), d.frac)
        bits = sign_bit(both)
        n = d.size
        return 1 - Shared(self.session, bits.share[:n] + bits.share[n:], 0).reshape(d.shape)

    def __ne__(self, other):
        return 1 - self.__eq__(other)

    def reveal(self, to=None):
        """Open to both parties or to ``to`` (:meth:`pet.mpc.Session.reveal`)."""
        return self.session.reveal(self, to)
