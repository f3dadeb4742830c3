"""Products of XOR-shared bits with arithmetic-shared values in ONE round, with no opening
of ``n x bits`` ring elements.

The usual route -- :func:`pet.mpc.boolean.b2a_bits` (one round, one opened word per
element) and then a Beaver product or matrix product with the 0/1 shares (one more round,
``n x bits`` masked ring elements each way) -- opens every bit's masked arithmetic form.
Here the dealer's :class:`~pet.mpc.correlated.B2AMul` material already holds the mask
bits times a uniform multiplier ``b``, so the value only has to be opened masked by ``b``,
in the same round as the B2A word:

For a XOR-shared word ``v`` (per element), its bit ``j`` is ``v_j = c_j xor r_j`` with
``c = v xor rho`` opened (``rho`` the dealer's XOR-shared word, ``r_j`` its bits), so
``v_j = c_j + (1 - 2 c_j) r_j``; for a shared ``y`` with ``e = y - b`` opened,
``r_j y = e r_j + r_j b``, hence

    ``v_j y = c_j y + (1 - 2 c_j) (e [r_j] + [r_j b])``

-- local, exact modulo 2^64, given the public ``c, e`` and the shares ``[r_j]``,
``[r_j b]`` of the correlation.

* :func:`bits_times` (``per_bit=0``): ``v_j(i) y_i`` for every element ``i`` and listed bit
  ``j`` (``y`` one value per element); the histograms' ``membership x gradient``;
* :func:`bits_dot` (``per_bit=1``): ``sum_j v_j(i) w_j`` for every element ``i`` (``w`` one
  value per listed bit); selecting a per-node value for every row.

Cost: one round; each party sends one word per element and one ring element per element
(:func:`bits_times`) or per bit (:func:`bits_dot`). Compared with B2A then a product: one
round less and ``n x bits`` (Beaver: ``2 n x bits``) fewer ring elements each way. The
dealer sends the receiving party ``2 n x bits`` ring elements (``ra`` and ``rb``).

What each party learns: ``c = v xor rho`` (uniform: ``rho`` is the dealer's, unknown to
it) and ``e = y - b`` (uniform: ``b`` is uniform and shared); nothing else. The dealer
learns the shapes.
"""

from __future__ import annotations

import numpy as np

from pet.errors import InputError, PetTypeError, ProtocolError
from pet.mpc.correlated import B2AMul
from pet.mpc.shared import Shared

__all__ = ["bits_times", "bits_dot"]

_U = np.uint64


def _words(words, what="words") -> np.ndarray:
    w = np.asarray(words)
    if w.dtype != np.uint64 or w.ndim != 1:
        raise InputError(f"{what} must be a 1-D uint64 array of this party's XOR shares, got {w.dtype} {w.shape}")
    return np.ascontiguousarray(w)


def _bits(bits) -> tuple:
    bits = tuple(int(b) for b in bits)
    if not 1 <= len(bits) <= 64 or any(not 0 <= b <= 63 for b in bits):
        raise InputError("bits must list 1..64 bit positions in 0..63")
    return bits


def _open(session, op: str, words: np.ndarray, value: np.ndarray, mat: dict):
    """One round: open ``c = words xor rho`` and ``e = value - b``."""
    c_mine = words ^ mat["rho"]
    e_mine = value - mat["b"]
    got = session.exchange(op, [c_mine, e_mine])
    if not (isinstance(got, list) and len(got) == 2 and all(isinstance(g, np.ndarray) for g in got)
            and got[0].shape == c_mine.shape and got[1].shape == e_mine.shape):
        raise ProtocolError(f"malformed {op} message")
    return c_mine ^ got[0].astype(_U), e_mine + got[1].astype(_U)


def _check(session, value, n_expected: int, what: str) -> Shared:
    if not isinstance(value, Shared) or value.session is not session:
        raise PetTypeError(f"{what} must be a Shared value of the same session")
    if value.size != n_expected:
        raise InputError(f"{what} has {value.size} elements, expected {n_expected}")
    return value


def bits_times(session, words, bits, y: Shared) -> Shared:
    """Arithmetic shares of ``bit_j(v_i) * y_i`` (shape ``(n, len(bits))``, ``y``'s scale) for
    XOR-shared words ``v`` (this party's shares ``words``, shape ``(n,)``) and a shared
    ``y`` of ``n`` elements. One round (see the module docstring)."""
    words, bits = _words(words), _bits(bits)
    n = words.size
    y = _check(session, y, n, "y")
    (mat,) = session.correlated([B2AMul((n,), bits, 0)])
    c, e = _open(session, "bits-times", words, y.share.reshape(n), mat)
    cb = (c[:, None] >> np.array(bits, dtype=_U)) & _U(1)  # public bits (n, nb)
    out = (_U(1) - (cb << _U(1))) * (e[:, None] * mat["ra"] + mat["rb"])
    out += cb * y.share.reshape(n, 1)
    return Shared.from_shares(session, out, y.frac)


def bits_dot(session, words, bits, w: Shared) -> Shared:
    """Arithmetic shares of ``sum_j bit_j(v_i) * w_j`` (shape ``(n,)``, ``w``'s scale) for
    XOR-shared words ``v`` (this party's shares ``words``, shape ``(n,)``) and a shared
    ``w`` with one element per listed bit. One round (see the module docstring)."""
    words, bits = _words(words), _bits(bits)
    n = words.size
    w = _check(session, w, len(bits), "w")
    (mat,) = session.correlated([B2AMul((n,), bits, 1)])
    ws = w.share.reshape(-1)
    c, e = _open(session, "bits-dot", words, ws, mat)
    cb = (c[:, None] >> np.array(bits, dtype=_U)) & _U(1)  # public bits (n, nb)
    per = (_U(1) - (cb << _U(1))) * (mat["ra"] * e[None, :] + mat["rb"])
    out = (per + cb * ws[None, :]).sum(axis=1, dtype=_U)
    return Shared.from_shares(session, out, w.frac)
