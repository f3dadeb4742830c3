"""Comparisons and selection on shared values: ``< <= > >= ==``, sign, where, maximum,
minimum, relu, argmax, max.

All comparisons reduce to the most significant bit of a difference
(:func:`pet.mpc.boolean.msb`, 8 rounds) and return shared integers 0/1 (``frac = 0``).
``a < b`` is exact whenever ``a - b`` (on the common fixed-point scale) fits in the
signed 64-bit ring, in particular whenever ``|a - b| >= 2^-f`` and both are in the safe
range. A party learns nothing from a comparison (every opened value is masked).
"""

from __future__ import annotations

import numpy as np

from pet.errors import InputError, PetTypeError
from pet.mpc import arithmetic
from pet.mpc.boolean import msb
from pet.mpc.shared import Shared, concatenate

__all__ = ["less", "less_equal", "greater", "greater_equal", "equal", "sign_bit", "where",
           "maximum", "minimum", "relu", "argmax", "argmin", "max", "min"]


def _diff(a, b) -> Shared:
    """``a - b`` as a Shared on the common scale (at least one must be Shared)."""
    if isinstance(a, Shared):
        return arithmetic.sub(a, b)
    if isinstance(b, Shared):
        return arithmetic.add(arithmetic.neg(b), a)
    raise PetTypeError("a comparison needs at least one Shared operand")


def sign_bit(x: Shared) -> Shared:
    """Shared 0/1: 1 where ``x < 0`` (8 rounds)."""
    return Shared(x.session, msb(x.session, x.share), 0)


def less(a, b) -> Shared:
    """``a < b`` as shared 0/1 (8 rounds)."""
    return sign_bit(_diff(a, b))


def greater(a, b) -> Shared:
    """``a > b`` as shared 0/1 (8 rounds)."""
    return sign_bit(_diff(b, a))


def less_equal(a, b) -> Shared:
    """``a <= b`` = ``1 - (b < a)`` (8 rounds)."""
    return 1 - greater(a, b)


def greater_equal(a, b) -> Shared:
    """``a >= b`` = ``1 - (a < b)`` (8 rounds)."""
    return 1 - less(a, b)


def equal(a, b) -> Shared:
    """``a == b`` as shared 0/1: ``1 - [d < 0] - [-d < 0]`` for ``d = a - b``, both signs
    in one batched MSB (8 rounds, twice the traffic of ``<``)."""
    d = _diff(a, b)
    both = Shared(d.session, np.concatenate([d.share.ravel(), np.negative(d.share).ravel()]), d.frac)
    bits = sign_bit(both)
    n = d.size
    s = Shared(d.session, bits.share[:n] + bits.share[n:], 0).reshape(d.shape)
    return 1 - s


def where(cond: Shared, a, b) -> Shared:
    """``cond ? a : b`` elementwise for shared 0/1 ``cond``: ``b + cond * (a - b)``
    (1 round, a Beaver product with an integer bit needs no truncation)."""
    if not isinstance(cond, Shared):
        raise PetTypeError("where: cond must be a Shared 0/1 array (use numpy.where for public conditions)")
    if cond.frac != 0:
        raise InputError("where: cond must be an integer 0/1 Shared (the result of a comparison)")
    if not isinstance(a, Shared) and not isinstance(b, Shared):
        return arithmetic.add(cond * (np.asarray(a) - np.asarray(b)), b)
    diff = _diff(a, b)
    return arithmetic.add(cond * diff, b)


def maximum(a, b) -> Shared:
    """Elementwise maximum (9 rounds)."""
    return where(greater(a, b), a, b)


def minimum(a, b) -> Shared:
    """Elementwise minimum (9 rounds)."""
    return where(less(a, b), a, b)


def relu(x: Shared) -> Shared:
    """``max(x, 0)`` = ``x * [x > 0]`` (9 rounds)."""
    return x * greater(x, 0)


def _tournament(x: Shared, axis: int, largest: bool):
    """Tournament along ``axis``: returns (extreme values, one-hot of the first extreme).

    ``ceil(log2 n)`` levels, each one batched comparison of adjacent pairs and one mux
    (9 rounds); then the one-hot is built top-down with one product per level (1 round
    each). Ties go to the lower index, as in numpy.
    """
    if not isinstance(x, Shared):
        raise PetTypeError("argmax/max expect a Shared array")
    if x.ndim == 0:
        raise InputError("argmax/max need at least one dimension")
    axis = axis % x.ndim
    n = x.shape[axis]
    if n == 0:
        raise InputError("argmax/max of an empty axis")
    v = x.swapaxes(axis, -1)
    lead = v.shape[:-1]
    bits = []  # per level: (comparison bits, whether a carried odd element exists)
    while v.shape[-1] > 1:
        m = v.shape[-1]
        half = m // 2
        left, right = v[..., 0:2 * half:2], v[..., 1:2 * half:2]
        c = greater(right, left) if largest else less(right, left)
        win = arithmetic.add(c * _diff(right, left), left)
        if m % 2:
            win = concatenate([win, v[..., m - 1:m]], axis=-1)
        bits.append((c, m % 2 == 1))
        v = win
    weight = arithmetic.constant(x.session, np.ones(lead + (1,), dtype=np.int64), 0)
    for c, odd in reversed(bits):
        half = c.shape[-1]
        w_pairs = weight[..., :half]
        w_right = w_pairs * c
        w_left = w_pairs - w_right
        inter = np.empty(lead + (2 * half,), dtype=np.uint64)
        inter[..., 0::2] = w_left.share
        inter[..., 1::2] = w_right.share
        nxt = Shared(x.session, inter, 0)
        if odd:
            nxt = concatenate([nxt, weight[..., half:half + 1]], axis=-1)
        weight = nxt
    value = v[..., 0]
    onehot = weight.swapaxes(axis, -1) if x.ndim > 1 else weight
    return value, onehot


def argmax(x: Shared, axis: int = -1, *, one_hot: bool = False) -> Shared:
    """Index of the (first) maximum along ``axis`` as a shared integer, or with
    ``one_hot=True`` the shared one-hot vector (same shape as ``x``). Reveal it with
    ``session.reveal`` if the index may be public. Exact when the top two values differ
    by at least ``2^-f``. Rounds: ``10 * ceil(log2 n)``."""
    _, oh = _tournament(x, axis, True)
    if one_hot:
        return oh
    return _index_of(oh, axis)


def argmin(x: Shared, axis: int = -1, *, one_hot: bool = False) -> Shared:
    """Like :func:`argmax` for the (first) minimum."""
    _, oh = _tournament(x, axis, False)
    if one_hot:
        return oh
    return _index_of(oh, axis)


def _index_of(onehot: Shared, axis: int) -> Shared:
    axis = axis % onehot.ndim
    n = onehot.shape[axis]
    shape = [1] * onehot.ndim
    shape[axis] = n
    idx = np.arange(n, dtype=np.uint64).reshape(shape)
    return Shared(onehot.session, (onehot.share * idx).sum(axis=axis, dtype=np.uint64), 0)


def max(x: Shared, axis: int = -1) -> Shared:  # noqa: A001 - numpy name
    """Maximum along ``axis`` by a tournament tree (``9 * ceil(log2 n)`` rounds)."""
    value, _ = _tournament(x, axis, True)
    return value


def min(x: Shared, axis: int = -1) -> Shared:  # noqa: A001 - numpy name
    """Minimum along ``axis`` by a tournament tree."""
    value, _ = _tournament(x, axis, False)
    return value
