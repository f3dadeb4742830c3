"""Worst-case magnitudes of the values vertical XGBoost computes in MPC, and the check
that refuses a training run they do not fit (issue 21: right, or refused -- never wrapped).

Every value is fixed point in Z_2^64 with ``F = 16`` fractional bits (:mod:`pet.ml.booster`);
a stored value needs ``|v| 2^frac < 2^61`` and a Beaver product needs its *raw* product
``|x| 2^fx |y| 2^fy < 2^62`` (:data:`pet.mpc.ring.SAFE_BITS`) before truncation. The bounds
below depend only on public facts both parties hold after the handshake (``n``, the
objective and the estimator parameters), so both parties run :func:`check_training` on
the same numbers and raise the same :class:`~pet.errors.PrecisionError` before any MPC
work; nothing is exchanged for it. docs/ml.md "Ranges" derives each line.

``S`` is the public power of two dividing g, h, lambda and min_child_weight
(``booster._scale_power``: ``(n hmax + lambda) / S <= 2^16``).

Squared error (targets scaled by the label party to ``y' = (y - base) / c``, ``|y'| <= 1``;
residuals ``r = margin - y'`` are the gradients, ``h = 1``): a leaf moves its rows'
residuals by ``-a mean(r)`` with ``0 <= a <= eta``, which never increases ``||r||_2`` for
``eta <= 2`` (and multiplies it by at most ``eta - 1`` otherwise), so after any number of
trees ``|r_i| <= R = sqrt(n) max(1, eta - 1)^T``. Hence ``|g| <= R``, ``|G| <= sqrt(n) R``,
``H <= n``, ``|w| = |G| / (H + lambda) <= R`` (Cauchy-Schwarz: ``|G| <= sqrt(n_l) ||r||``,
``H = n_l``), gain terms ``G^2 / (S (H + lambda)) <= R^2 / S``, margins ``<= R + 1``.

Logistic: ``g = p - y`` in ``[-1, 1]``, ``h = p (1 - p)`` in ``[0, 1/4]``; ``|G| <= n``,
``H <= n / 4``. ``H`` has no lower bound (saturated probabilities), so ``lambda / S`` must
itself lie in the reciprocal's domain: ``reg_lambda > 2^-10 S`` (:func:`min_logistic_lambda`;
with ``reg_lambda = 0`` a node of ``H < 2^-10`` got the leaf 0 instead of ``-eta G / H``).
The leaf weight ``G / (H + lambda)`` has no bound better than ``n / lambda`` independent
of the data (rows whose probability saturates at the wrong label have ``g`` near 1 and
``h`` near 0); where that bound could wrap the leaf's raw product (``|w| >= 2^14``) or the
gain term's (``(n / S)(n / lambda) >= 2^30``) -- from 16,384 lambda rows -- training checks
the weights in MPC instead (:func:`leaf_check_needed`, :func:`refuse_large_leaves`): every
``|w| < 2^12``, else PrecisionError at both parties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pet.errors import PrecisionError

__all__ = ["F", "SAFE_BITS", "STORE_BITS", "RECIP_LO", "RECIP_HI", "Magnitude", "scale_power", "residual_bound",
           "training_magnitudes", "check_training", "max_rows", "min_logistic_lambda",
           "LEAF_BITS", "leaf_check_needed", "refuse_large_leaves"]

F = 16                 # fractional bits of g, h, sums, gains, leaf weights, margins
SAFE_BITS = 62         # a Beaver product's raw value must stay below 2^SAFE_BITS
STORE_BITS = 61        # a stored value's encoding must stay below 2^STORE_BITS
RECIP_LO, RECIP_HI = 2.0 ** -10, 2.0 ** 17  # domain of pet.mpc.reciprocal
H_LIMIT = 2.0 ** 16    # booster._H_LIMIT
HESS_EPS = 1e-6        # pet.ml._plain.HESS_EPS


@dataclass(frozen=True)
class Magnitude:
    """One value entering MPC: worst-case ``|value|`` and the power of two its encoding
    (or its raw product, for a product) must stay below: ``bound * 2^frac < 2^limit_bits``."""
    name: str
    param: str   # the parameter that drives it (named in the error)
    bound: float
    frac: int
    limit_bits: int
    advice: str = ""  # what to change (default: reduce ``param``)

    @property
    def bits(self) -> float:
        """log2 of the encoding (or raw product) of the worst case."""
        return math.log2(self.bound) + self.frac if self.bound > 0 else -math.inf

    @property
    def fits(self) -> bool:
        return self.bits < self.limit_bits


def scale_power(n: int, hmax: float, lam: float) -> float:
    """The public power of two dividing g, h (the same rule as ``booster._scale_power``)."""
    need = (n * hmax + lam) / H_LIMIT
    return float(2.0 ** max(0, math.ceil(math.log2(need)))) if need > 1 else 1.0


def residual_bound(n: int, n_estimators: int, learning_rate: float) -> float:
    """Squared error: bound ``R`` on every residual ``|margin - y'|`` after any tree."""
    grow = max(1.0, float(learning_rate) - 1.0)
    return math.sqrt(max(n, 1)) * grow ** int(n_estimators)


def training_magnitudes(n: int, params: dict) -> list:
    """The enforced worst-case magnitudes of one training run (see the module doc), each
    a :class:`Magnitude`; plus the reciprocal's domain as two pseudo-entries."""
    lam = float(params["reg_lambda"])
    eta = float(params["learning_rate"])
    T = int(params["n_estimators"])
    logistic = params["objective"] == "binary:logistic"
    hmax = 0.25 if logistic else 1.0
    S = scale_power(n, hmax, lam)
    out = []
    if logistic:
        gmax, Gmax, Hmax = 1.0, float(n), n * hmax
    else:
        R = residual_bound(n, T, eta)
        gmax, Gmax, Hmax = R, math.sqrt(max(n, 1)) * R, float(n)
    out.append(Magnitude("gradient g (times a 0/1 membership)", "n_estimators/learning_rate", gmax, 2 * F, SAFE_BITS))
    out.append(Magnitude("sum of gradients G / S (per bin, per node)", "n", Gmax / S, F, STORE_BITS))
    out.append(Magnitude("sum of hessians H / S (per bin, per node)", "n", Hmax / S, F, STORE_BITS))
    out.append(Magnitude("H + lambda (upper end of the reciprocal's domain, times 2^-17)", "reg_lambda",
                         (Hmax + lam) / S / RECIP_HI, 0, 0))
    # lower end: a non-empty valid child has H >= 1 (squared error) or H >= min_child_weight
    hlow = max(1.0, float(params["min_child_weight"])) if not logistic \
        else max(float(params["min_child_weight"]), HESS_EPS)
    out.append(Magnitude("2^-10 / (H + lambda) of a valid child (lower end of the reciprocal's domain)",
                         "reg_lambda", RECIP_LO / ((hlow + lam) / S), 0, 0))
    if logistic:
        # a node's hessian sum has no lower bound (p (1 - p) -> 0 as probabilities saturate; the
        # root and the nodes that do not split keep their rows whatever H is): only lambda keeps
        # (H + lambda) / S in the reciprocal's domain, which returns 0 below it (a wrong leaf)
        out.append(Magnitude("2^-10 / (H + lambda) of a node whose hessian sum is near 0 (lower end of the "
                             "reciprocal's domain)", "reg_lambda",
                             RECIP_LO / (lam / S) if lam > 0 else math.inf, 0, 0,
                             f"use reg_lambda > {min_logistic_lambda(n):g} (the minimum for binary:logistic "
                             f"with n={n})"))
    if not logistic:
        out.append(Magnitude("leaf weight G / (H + lambda) (product G * 1/(H + lambda))", "n", R, 3 * F, SAFE_BITS))
        out.append(Magnitude("gain term G^2 / (S (H + lambda))", "n", R * R / S, 2 * F, SAFE_BITS))
        out.append(Magnitude("scaled leaf -learning_rate * w", "learning_rate", R * max(eta, 2.0 ** -F), 2 * F,
                             SAFE_BITS))
        out.append(Magnitude("margin after n_estimators trees", "n_estimators", R + 1.0, F, STORE_BITS))
    return out


def check_training(n: int, params: dict) -> None:
    """Raise PrecisionError (same at both parties: public inputs only) if a worst-case
    value of training with ``n`` rows and ``params`` does not fit its range."""
    for m in training_magnitudes(n, params):
        if not m.fits:
            raise PrecisionError(
                f"vertical XGBoost with n={n} rows, {params['objective']}, reg_lambda={params['reg_lambda']}, "
                f"learning_rate={params['learning_rate']}, n_estimators={params['n_estimators']}: the {m.name} "
                f"can reach 2^{m.bits:.1f} (bound {m.bound:.3g} with {m.frac} fractional bits), above the "
                f"range 2^{m.limit_bits} of the 64-bit ring; {m.advice or f'reduce {m.param!r}'} "
                "(docs/ml.md, 'Ranges')")


#: Logistic leaf weights are held to ``|w| < 2^LEAF_BITS`` when the static bound ``n /
#: lambda`` does not keep them in range (:func:`leaf_check_needed`): then ``w 2^48`` (the
#: leaf's raw product) stays below 2^60 and ``|G / S| w 2^32`` (the gain term's, with
#: ``|G / S| <= 2^18``) below 2^62.
LEAF_BITS = 12


def leaf_check_needed(n: int, params: dict) -> bool:
    """Whether logistic training must check its leaf weights in MPC: the worst case over
    all data, ``|w| <= n / lambda`` (every row of a node saturated at the wrong label: ``g
    = +-1``, ``h = 0``), could wrap the leaf's raw product (``|w| >= 2^14``) or the gain
    term's (``(n / S)(n / lambda) >= 2^30``). Squared error: never (bounded statically)."""
    if params["objective"] != "binary:logistic":
        return False
    lam = float(params["reg_lambda"])
    S = scale_power(n, 0.25, lam)
    wmax = n / lam if lam > 0 else math.inf
    return not (wmax < 2.0 ** (SAFE_BITS - 3 * F) and (n / S) * wmax < 2.0 ** (SAFE_BITS - 2 * F))


def refuse_large_leaves(session, bits) -> None:
    """Open the number of weights ``|G / (H + lambda)| >= 2^LEAF_BITS`` (``bits``: this
    party's arithmetic shares of their flags) to both parties (1 round) and raise the same
    PrecisionError at both if it is not 0. Both learn that count (0 in every run that
    continues); nothing derived from such a weight was opened before."""
    import numpy as np

    from pet.mpc import Shared

    total = np.asarray([np.sum(np.asarray(bits, dtype=np.uint64), dtype=np.uint64)], dtype=np.uint64)
    count = int(np.asarray(session.reveal(Shared.from_shares(session, total, 0)))[0])
    if count:
        raise PrecisionError(
            f"vertical XGBoost, binary:logistic: a leaf weight G / (H + lambda) reached 2^{LEAF_BITS} "
            f"({2 ** LEAF_BITS}), beyond which its products leave the 64-bit ring (rows whose probability "
            "saturated at the wrong label); raise 'reg_lambda' or 'min_child_weight', or lower "
            "'learning_rate' (docs/ml.md, 'Ranges')")


def min_logistic_lambda(n: int) -> float:
    """The smallest ``reg_lambda`` (exclusive) binary:logistic accepts with ``n`` rows:
    ``2^-10 S`` (``S`` = :func:`scale_power` of ``n``; 2^-10 up to 262,140 rows), so that
    ``(H + lambda) / S`` of any node stays in the reciprocal's domain however small its
    hessian sum ``H``. ``S`` depends on lambda too (``(n / 4 + lambda) / S <= 2^16``): the
    smallest ``S`` consistent with a lambda just above ``2^-10 S``."""
    S = scale_power(n, 0.25, 0.0)
    while True:
        S2 = scale_power(n, 0.25, RECIP_LO * S * (1.0 + 1e-9))
        if S2 == S:
            return RECIP_LO * S
        S = S2


def max_rows(params: dict, hi: int = 1 << 62) -> int:
    """The largest ``n`` :func:`check_training` accepts with ``params`` (binary search;
    the conditions are monotone in ``n``); 0 if none."""
    def ok(n):
        try:
            check_training(n, params)
            return True
        except PrecisionError:
            return False
    if not ok(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
