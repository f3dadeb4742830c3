"""The :class:`Shared` type: one party's additive share of a secret array.

A ``Shared`` holds this party's uint64 share (``share``), the session, and the number of
fractional bits ``frac`` of the encoded value (0 for integers and for the 0/1 results of
comparisons). The secret is ``share_0 + share_1 mod 2^64``. Operators delegate to the
protocol modules; shape operations (indexing, reshape, transpose, sum) are local and free.
"""

from __future__ import annotations

import numpy as np

from pet.errors import PetTypeError

__all__ = ["Shared", "concatenate", "stack"]


class Shared:
    """A secret-shared array of one session (numpy-like, see :mod:`pet.mpc`)."""

    __array_ufunc__ = None  # make ``ndarray op Shared`` call our reflected operators
    __slots__ = ("session", "share", "frac")

    def __init__(self, session, share: np.ndarray, frac: int):
        self.session = session
        self.share = np.asarray(share, dtype=np.uint64)
        self.frac = int(frac)

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

    def _new(self, share, frac=None) -> "Shared":
        return Shared(self.session, share, self.frac if frac is None else frac)

    def __getitem__(self, idx) -> "Shared":
        if isinstance(idx, Shared) or (isinstance(idx, tuple) and any(isinstance(i, Shared) for i in idx)):
            raise PetTypeError("indexing by a secret index is not supported; use a one-hot product")
        return self._new(np.ascontiguousarray(self.share[idx]))

    def reshape(self, *shape) -> "Shared":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._new(self.share.reshape(shape))

    def ravel(self) -> "Shared":
        return self._new(np.ascontiguousarray(self.share.ravel()))

    flatten = ravel

    def transpose(self, *axes) -> "Shared":
        return self._new(np.ascontiguousarray(self.share.transpose(*axes)))

    @property
    def T(self) -> "Shared":
        return self.transpose()

    def swapaxes(self, a, b) -> "Shared":
        return self._new(np.ascontiguousarray(self.share.swapaxes(a, b)))

    def copy(self) -> "Shared":
        return self._new(self.share.copy())

    def sum(self, axis=None, keepdims=False) -> "Shared":
        """Sum along ``axis`` (local, exact modulo 2^64)."""
        return self._new(np.asarray(self.share.sum(axis=axis, keepdims=keepdims, dtype=np.uint64)))

    # -- arithmetic --------------------------------------------------------------------

    def __add__(self, other):
        from pet.mpc import arithmetic
        return arithmetic.add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        from pet.mpc import arithmetic
        return arithmetic.sub(self, other)

    def __rsub__(self, other):
        from pet.mpc import arithmetic
        return arithmetic.add(arithmetic.neg(self), other)

    def __neg__(self):
        from pet.mpc import arithmetic
        return arithmetic.neg(self)

    def __pos__(self):
        return self

    def __mul__(self, other):
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
        from pet.mpc import nonlinear
        return nonlinear.divide(self, other)

    def __rtruediv__(self, other):
        from pet.mpc import nonlinear
        return nonlinear.divide(other, self)

    # -- comparisons (shared 0/1 integers) ---------------------------------------------

    def __lt__(self, other):
        from pet.mpc import compare
        return compare.less(self, other)

    def __le__(self, other):
        from pet.mpc import compare
        return compare.less_equal(self, other)

    def __gt__(self, other):
        from pet.mpc import compare
        return compare.greater(self, other)

    def __ge__(self, other):
        from pet.mpc import compare
        return compare.greater_equal(self, other)

    def __eq__(self, other):
        from pet.mpc import compare
        return compare.equal(self, other)

    def __ne__(self, other):
        return 1 - self.__eq__(other)

    __hash__ = None

    def rescale(self, frac: int) -> "Shared":
        """The same value with ``frac`` fractional bits (down: exact truncation, 1 round;
        up: local multiply by ``2^(frac - self.frac)``)."""
        from pet.mpc import arithmetic
        return arithmetic.rescale(self, frac)


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
