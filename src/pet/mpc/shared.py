"""The :class:`Shared` type: one party's additive share of a secret array.

A ``Shared`` holds this party's uint64 share (``share``), the session, and the number of
fractional bits ``frac`` of the encoded value (0 for integers and for the 0/1 results of
comparisons). The secret is ``share_0 + share_1 mod 2^64``. Operators delegate to the
protocol modules; shape operations (indexing, reshape, transpose, sum) are local and free.
"""

from __future__ import annotations

import numpy as np

from pet.errors import InputError, PetTypeError

__all__ = ["Shared", "concatenate", "stack", "diag"]


class Shared:
    """A secret-shared array of one session (numpy-like, see :mod:`pet.mpc`)."""

    __array_ufunc__ = None  # make ``ndarray op Shared`` call our reflected operators
    __slots__ = ("session", "share", "frac")

    def __init__(self, session, share: np.ndarray, frac: int):
        self.session = session
        self.share = np.asarray(share, dtype=np.uint64)
        self.frac = int(frac)

    # -- constructors without messages (the only ones applications use) ----------------

    @classmethod
    def from_shares(cls, session, share, frac: int = 0) -> Shared:
        """A secret whose two additive shares the parties already hold: this party passes
        its share ``share`` (integers of any sign, reduced modulo 2^64, or uint64 ring
        words) with ``frac`` fractional bits; the secret is the sum of both parties'
        shares. No message.

        For values that are by construction a sum of the two parties' local
        contributions (a graph's cross-edge weight split between its endpoints' owners,
        sums of local terms) and for shares stored earlier (a model file's ``.share``
        arrays). What each party learns: nothing (it holds only its own share).
        """
        from pet.mpc import ring

        return cls(session, ring.to_ring(np.asarray(share)), _check_frac(frac))

    @classmethod
    def known_to(cls, session, value, owner: int, *, frac_bits: int, shape=None) -> Shared:
        """A value party ``owner`` knows entirely, as a sharing without any message: the
        owner's share is ``encode(value, frac_bits)``, the other party's is zero.

        The owner passes ``value``; the other party passes ``None`` and the (public)
        ``shape``. ``frac_bits`` is required: the other party cannot infer it from a dtype.
        Cheaper than :meth:`Session.share` (no round) when the value is only an operand of
        protocols that mask what they open (products, comparisons, truncation): neither
        party learns anything it did not know (the owner knows the value, the other holds
        zeros). Its shares are not uniformly random, so do not hand them to anyone as
        they are; open results with :meth:`Session.reveal` as usual.
        """
        from pet._validate import check_party
        from pet.mpc import ring

        owner = check_party(owner, "owner")
        f = ring.check_frac_bits(frac_bits)
        if session.party == owner:
            if value is None:
                raise InputError(f"party {owner} owns the value: pass it, not None")
            enc = ring.encode(np.asarray(value), f)
            if shape is not None and tuple(shape) != enc.shape:
                raise InputError(f"shape {tuple(shape)} does not match the value's shape {enc.shape}")
            return cls(session, enc, f)
        if value is not None:
            raise InputError(f"party {session.party} does not own this value: pass None (owner={owner})")
        if shape is None:
            raise InputError("the party that does not own the value must pass its shape=")
        return cls(session, np.zeros(tuple(shape), dtype=np.uint64), f)

    def scaled(self, k=1, *, shift: int = 0) -> Shared:
        """The value ``self * k / 2^shift`` for a public integer (array) ``k``, local and
        exact: each party multiplies its share by ``k`` modulo 2^64 and the result keeps
        ``self.frac + shift`` fractional bits (nothing is truncated; follow with
        :meth:`rescale` to return to fewer bits, one round).

        ``x.scaled(k, shift=F).rescale(x.frac)`` multiplies by the public real
        ``k / 2^F`` at a chosen precision ``F`` (independent of the session's
        ``frac_bits``); ``x.scaled(shift=s)`` divides by ``2^s`` by reinterpretation, and a
        negative ``shift`` (down to ``-x.frac``) multiplies by ``2^-shift`` the same way (e.g.
        ``x.scaled(shift=-x.frac)`` is the integer ``x * 2^x.frac``: the same words).
        The intermediate may carry up to 63 fractional bits (more than
        :data:`pet.mpc.ring.MAX_FRAC_BITS`): rescale it before any other operation. No
        message; the caller keeps ``|value * k| * 2^frac`` below 2^62.
        """
        from pet.mpc import ring

        if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) \
                or not -self.frac <= shift <= 63 - self.frac:
            raise InputError(f"shift must be an int in [{-self.frac}, {63 - self.frac}] for a value with "
                             f"{self.frac} fractional bits, got {shift!r}")
        kk = np.asarray(k)
        if kk.dtype.kind not in "biu":
            raise PetTypeError(f"k must be a public integer (array), got dtype {kk.dtype}")
        words = self.share if (kk.ndim == 0 and int(kk) == 1) else self.share * ring.to_ring(kk)
        return Shared(self.session, words, self.frac + int(shift))

    # -- array protocol ----------------------------------------------------------------

    @property
    def shape(self) -> tuple:
        return self.share.shape

    @property
    def ndim(self) -> int:
        return self.share.ndim

    @property
    def size(self) -> int:
        return self.share.size

    def __len__(self) -> int:
        return len(self.share)

    def __repr__(self) -> str:
        kind = "int" if self.frac == 0 else f"fixed(frac_bits={self.frac})"
        return f"<Shared {kind} shape={self.shape} party={self.session.party}>"

    def __bool__(self):
        raise PetTypeError("the truth value of a Shared array is secret: reveal it first")

    def _new(self, share, frac=None) -> Shared:
        return Shared(self.session, share, self.frac if frac is None else frac)

    def __getitem__(self, idx) -> Shared:
        if isinstance(idx, Shared) or (isinstance(idx, tuple) and any(isinstance(i, Shared) for i in idx)):
            raise PetTypeError("indexing by a secret index is not supported; use a one-hot product")
        return self._new(np.ascontiguousarray(self.share[idx]))

    def reshape(self, *shape) -> Shared:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._new(self.share.reshape(shape))

    def ravel(self) -> Shared:
        return self._new(np.ascontiguousarray(self.share.ravel()))

    flatten = ravel

    def transpose(self, *axes) -> Shared:
        return self._new(np.ascontiguousarray(self.share.transpose(*axes)))

    @property
    def T(self) -> Shared:
        return self.transpose()

    def swapaxes(self, a, b) -> Shared:
        return self._new(np.ascontiguousarray(self.share.swapaxes(a, b)))

    def copy(self) -> Shared:
        return self._new(self.share.copy())

    def sum(self, axis=None, keepdims=False) -> Shared:
        """Sum along ``axis`` (local, exact modulo 2^64)."""
        return self._new(np.asarray(self.share.sum(axis=axis, keepdims=keepdims, dtype=np.uint64)))

    # -- arithmetic --------------------------------------------------------------------

    def __add__(self, other):
        if getattr(other, "ring_bits", 64) == 128:
            return other + self  # the wide ring (pet.mpc.ring128): this value is lifted
        _check_shapes(self, other, '+')
        from pet.mpc import arithmetic
        return arithmetic.add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        if getattr(other, "ring_bits", 64) == 128:
            return (-other) + self
        _check_shapes(self, other, '-')
        from pet.mpc import arithmetic
        return arithmetic.sub(self, other)

    def __rsub__(self, other):
        _check_shapes(other, self, '-')
        from pet.mpc import arithmetic
        return arithmetic.add(arithmetic.neg(self), other)

    def __neg__(self):
        from pet.mpc import arithmetic
        return arithmetic.neg(self)

    def __pos__(self):
        return self

    def __mul__(self, other):
        if getattr(other, "ring_bits", 64) == 128:
            return other * self
        _check_shapes(self, other, '*')
        from pet.mpc import arithmetic
        return arithmetic.mul(self, other)

    __rmul__ = __mul__

    def __matmul__(self, other):
        from pet.mpc import arithmetic
        return arithmetic.matmul(self, other)

    def __rmatmul__(self, other):
        from pet.mpc import arithmetic
        return arithmetic.matmul(other, self)

    def __truediv__(self, other):
        _check_shapes(self, other, '/')
        from pet.mpc import nonlinear
        return nonlinear.divide(self, other)

    def __rtruediv__(self, other):
        _check_shapes(other, self, '/')
        from pet.mpc import nonlinear
        return nonlinear.divide(other, self)

    # -- comparisons (shared 0/1 integers) ---------------------------------------------

    def __lt__(self, other):
        _check_shapes(self, other, '<')
        from pet.mpc import compare
        return compare.less(self, other)

    def __le__(self, other):
        _check_shapes(self, other, '<=')
        from pet.mpc import compare
        return compare.less_equal(self, other)

    def __gt__(self, other):
        _check_shapes(self, other, '>')
        from pet.mpc import compare
        return compare.greater(self, other)

    def __ge__(self, other):
        _check_shapes(self, other, '>=')
        from pet.mpc import compare
        return compare.greater_equal(self, other)

    def __eq__(self, other):
        _check_shapes(self, other, '==')
        from pet.mpc import compare
        return compare.equal(self, other)

    def __ne__(self, other):
        return 1 - self.__eq__(other)

    __hash__ = None

    #: The ring of the shares (a :class:`pet.mpc.ring128.Shared128` has 128).
    ring_bits = 64

    def to_ring(self, bits: int):
        """This value in the ring of ``bits``: ``to_ring(64)`` is itself; ``to_ring(128)``
        is the :class:`pet.mpc.ring128.Shared128` of the same value and ``frac`` (1 round,
        1 bit per element each way; needs ``|v| 2^frac < 2^62``, the 64-bit safe range)."""
        from pet.mpc import ring128
        return ring128.to_ring(self, bits)

    def rescale(self, frac: int) -> Shared:
        """The same value with ``frac`` fractional bits (down: exact truncation, 1 round;
        up: local multiply by ``2^(frac - self.frac)``)."""
        from pet.mpc import arithmetic
        return arithmetic.rescale(self, frac)


def _check_frac(frac) -> int:
    from pet.mpc import ring

    return ring.check_frac_bits(frac)


def _check_same_session(items):
    sess = items[0].session
    for s in items:
        if not isinstance(s, Shared):
            raise PetTypeError("expected Shared values")
        if s.session is not sess:
            raise PetTypeError("Shared values from different sessions")
    return sess


def _common_frac(items):
    from pet.mpc import arithmetic
    top = max(s.frac for s in items)
    return [arithmetic.rescale(s, top) for s in items], top


def concatenate(items, axis: int = 0) -> Shared:
    """Concatenate Shared arrays along ``axis`` (local)."""
    items = list(items)
    if not items:
        raise PetTypeError("concatenate needs at least one Shared array")
    sess = _check_same_session(items)
    items, top = _common_frac(items)
    return Shared(sess, np.concatenate([s.share for s in items], axis=axis), top)


def stack(items, axis: int = 0) -> Shared:
    """Stack Shared arrays along a new ``axis`` (local)."""
    items = list(items)
    if not items:
        raise PetTypeError("stack needs at least one Shared array")
    sess = _check_same_session(items)
    items, top = _common_frac(items)
    return Shared(sess, np.stack([s.share for s in items], axis=axis), top)


def diag(s: Shared) -> Shared:
    """The shared ``k x k`` diagonal matrix of a shared vector of length ``k`` (local, like
    ``numpy.diag``): off-diagonal shares are zero on both sides."""
    if not isinstance(s, Shared) or s.ndim != 1:
        raise PetTypeError("diag expects a 1-D Shared vector")
    k = s.shape[0]
    out = np.zeros((k, k), dtype=np.uint64)
    out[np.arange(k), np.arange(k)] = s.share
    return Shared(s.session, out, s.frac)


def _check_shapes(a, b, op: str) -> None:
    """Raise :class:`~pet.errors.InputError` (a ``PetError`` and ``ValueError``) naming both
    shapes when the elementwise ``a op b`` cannot be broadcast (``@`` checks its own shapes
    in :func:`pet.mpc.arithmetic.matmul`). Shapes are public, so both parties raise alike."""
    sa, sb = np.shape(a.share if isinstance(a, Shared) else a), np.shape(b.share if isinstance(b, Shared) else b)
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        raise InputError(f"shape mismatch in a {op} b: shapes {sa} and {sb} cannot be broadcast together") from None
