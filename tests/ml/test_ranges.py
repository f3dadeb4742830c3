"""Worst-case ranges of vertical XGBoost (pet.ml.ranges; docs/ml.md "Ranges"; issue 21).

The bounds are checked against exact arithmetic (Python ints and Fractions), not against
the module's own formulas: worst-case data is built, the values the booster encodes are
computed exactly, and they must lie within the stated bounds (the bound is valid) and
leave the ring exactly where the check starts refusing (the refusal is necessary)."""

import math
import random
from fractions import Fraction

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import PrecisionError
from pet.ml import booster
from pet.ml import ranges as R
from pet.ml.booster import train

BASE = dict(n_estimators=10, max_depth=3, learning_rate=0.3, reg_lambda=1.0, gamma=0.0, min_child_weight=1.0,
            max_bin=16)


def _params(**kw):
    return dict(BASE, objective="reg:squarederror", **kw)


def _simulate_squared_error(y, eta, lam, trees, depth, rng):
    """Exact (Fraction) squared-error boosting on random partitions: every residual, leaf
    weight and gain term the booster would encode, as exact rationals."""
    n = len(y)
    r = [Fraction(-v) for v in y]  # margin 0, g = margin - y'
    seen = {"r": max(abs(v) for v in r), "w": Fraction(0), "G": Fraction(0), "term": Fraction(0)}
    for _ in range(trees):
        leaf = [rng.randrange(2 ** depth) for _ in range(n)]
        for j in range(2 ** depth):
            rows = [i for i in range(n) if leaf[i] == j]
            if not rows:
                continue
            G = sum(r[i] for i in rows)
            H = len(rows)
            w = G / (H + lam)
            seen["G"] = max(seen["G"], abs(G))
            seen["w"] = max(seen["w"], abs(w))
            seen["term"] = max(seen["term"], G * w)
            for i in rows:
                r[i] -= eta * w
        seen["r"] = max(seen["r"], max(abs(v) for v in r))
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_squared_error_bounds_hold_exactly(seed):
    rng = random.Random(seed)  # not-secret: test data
    n = rng.randrange(2, 40)
    # adversarial scaled targets in [-1, 1]: extremes of both signs
    y = [Fraction(rng.choice([-1, 1])) if rng.random() < 0.7 else Fraction(rng.randrange(-8, 9), 8)
         for _ in range(n)]
    eta = Fraction(rng.choice([1, 3, 7, 10, 15, 20]), 10)  # up to 2
    lam = Fraction(rng.choice([0, 1, 5]))
    T = 6
    seen = _simulate_squared_error(y, eta, lam, T, 2, rng)
    Rb = R.residual_bound(n, T, float(eta))
    assert seen["r"] <= Rb and seen["w"] <= Rb            # |g|, |w| <= R
    assert seen["G"] <= math.sqrt(n) * Rb                  # |G| <= sqrt(n) R
    assert seen["term"] <= Rb * Rb                         # G^2 / (H + lambda) <= R^2 (S = 1)


def test_squared_error_growth_needs_the_learning_rate_factor():
    # with learning_rate > 2 residuals do grow: the max(1, eta - 1)^T factor is needed
    rng = random.Random(1)  # not-secret: test data
    y = [Fraction(1)] * 4
    seen = _simulate_squared_error(y, Fraction(3), Fraction(0), 4, 0, rng)
    assert seen["r"] > math.sqrt(4)
    assert seen["r"] <= R.residual_bound(4, 4, 3.0)


def test_leaf_weight_boundary_in_python_ints():
    """learning_rate 3, 10 trees: R = sqrt(n) 2^10; the leaf weight's raw product
    G 2^16 * (1/(H + lambda)) 2^32 reaches 2^62 (the truncation's limit) at n = 256."""
    p = _params(learning_rate=3.0, n_estimators=10, reg_lambda=0.0)
    assert R.max_rows(p) == 255
    for n, fits in ((255, True), (256, False)):
        Rb = R.residual_bound(n, 10, 3.0)
        # worst case: a one-row leaf (H = 1, lambda = 0) holding the whole residual R
        G_enc = int(math.floor(Rb * 2 ** 16))
        recip_enc = 2 ** 32  # 1 / (1 + 0) with 32 fractional bits
        raw = G_enc * recip_enc
        assert (raw < 2 ** 62) == fits
        if fits:
            R.check_training(n, p)
        else:
            with pytest.raises(PrecisionError, match="learning_rate=3.0.*leaf weight.*reduce 'n'"):
                R.check_training(n, p)


@pytest.mark.parametrize("objective,lam", [("reg:squarederror", 1.0), ("reg:squarederror", 0.0),
                                           ("binary:logistic", 1.0)])
def test_row_limit_is_the_reciprocal_domain_in_python_ints(objective, lam):
    """At the largest accepted n every enforced value fits, checked with Python ints; one
    row more and a valid child's H + lambda falls below the reciprocal's domain 2^-10."""
    p = dict(BASE, objective=objective, reg_lambda=lam)
    nmax = R.max_rows(p)
    hmax = Fraction(1, 4) if objective == "binary:logistic" else Fraction(1)
    hlow = Fraction(1)  # a valid child: H >= 1 row (squared error) or >= min_child_weight = 1 (logistic)
    for n, fits in ((nmax, True), (nmax + 1, False)):
        S = Fraction(booster._scale_power(n, float(hmax), lam)).limit_denominator(1)
        assert S.denominator == 1 and S == R.scale_power(n, float(hmax), lam)
        # worst-case sums, encoded with 16 fractional bits, as Python ints
        G = n  # logistic: n rows of |g| <= 1; squared error: sqrt(n) R with R = sqrt(n)
        assert (G * 2 ** 16) // int(S) < 2 ** 61
        assert (n * hmax + lam) / S < 2 ** 17                  # upper end: always kept by S
        ok_low = (hlow + Fraction(lam)) / S > Fraction(1, 2 ** 10)
        if objective == "binary:logistic":  # a node of any H (near 0): lambda alone
            ok_low = ok_low and Fraction(lam) / S > Fraction(1, 2 ** 10)
        assert ok_low == fits
        if fits:
            R.check_training(n, p)
        else:
            with pytest.raises(PrecisionError, match="reg_lambda"):
                R.check_training(n, p)
    assert nmax > 10 ** 7  # ordinary training sets are far inside


def test_error_names_parameter_and_docs():
    p = _params(learning_rate=3.0)
    with pytest.raises(PrecisionError) as e:
        R.check_training(10 ** 6, p)
    msg = str(e.value)
    assert "n=1000000" in msg and "reg_lambda=" in msg and "docs/ml.md" in msg and "2^" in msg


def _both(fn):
    def prog(session):
        try:
            return fn(session)
        except Exception as exc:  # noqa: BLE001 - returned to the test
            return exc
    return mpc.run_local(prog, timeout=300)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)  # not-secret: test data
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + X[:, 2] > 0).astype(np.float64)
    return [X[:, :2], X[:, 2:]], y


def test_oversized_input_refused_at_both_parties(monkeypatch):
    # a 24-bit "ring" for stored values: G / S = n <= 2^8 rows fit, 300 do not
    monkeypatch.setattr(R, "STORE_BITS", 24)
    calls = []
    real = booster.BinCodes

    def spy(*a, **k):  # any MPC preparation after the check would build the codes
        calls.append(1)
        return real(*a, **k)
    monkeypatch.setattr(booster, "BinCodes", spy)
    kw = dict(BASE, objective="binary:logistic", n_estimators=1, max_depth=2, base_score=0.5)
    kw.pop("objective")
    parts, y = _data(300)
    r = _both(lambda s: train(s, parts[s.party], y if s.party == 0 else None, objective="binary:logistic", **kw))
    for out in r:
        assert isinstance(out, PrecisionError), out
        assert "n=300" in str(out) and "sum of gradients" in str(out)
    assert not calls
    parts, y = _data(200)
    r = _both(lambda s: train(s, parts[s.party], y if s.party == 0 else None, objective="binary:logistic", **kw))
    assert all(isinstance(out, dict) for out in r), r


# -- logistic: reg_lambda keeps (H + lambda) / S in the reciprocal's domain for any H ------------

def test_logistic_lambda_minimum_in_python_ints():
    """A logistic node's hessian sum H can be as small as 0 (saturated probabilities; the
    root and nodes that do not split keep their rows whatever H is), so (0 + lambda) / S
    must reach the reciprocal's lower end 2^-10 (exact rationals): lambda = 0 is refused,
    as is 2^-10 S itself; one step above is accepted."""
    for n in (1000, 262_140, 262_144, 10 ** 6):
        lam_min = Fraction(R.min_logistic_lambda(n))
        for lam, fits in ((Fraction(0), False), (lam_min, False), (lam_min * Fraction(1025, 1024), True)):
            S = Fraction(booster._scale_power(n, 0.25, float(lam)))  # the booster's own S for this lambda
            assert ((0 + lam) / S > Fraction(1, 2 ** 10)) == fits
            p = dict(BASE, objective="binary:logistic", reg_lambda=float(lam))
            if fits:
                R.check_training(n, p)
            else:
                with pytest.raises(PrecisionError, match=r"reg_lambda > .*minimum for binary:logistic"):
                    R.check_training(n, p)
    # squared error: a non-empty node has H >= 1 row; an empty one has G = 0, so the leaf 0 of
    # reciprocal(0) is right -- lambda = 0 stays accepted
    R.check_training(1000, _params(reg_lambda=0.0))


def test_reciprocal_below_its_domain_returns_zero():
    """Why: pet.mpc.reciprocal is 0 below 2^-10 (the leaf -eta G / (H + lambda) would be
    0 instead of, e.g., -0.3 * 1e-4 / 2^-11 = -0.061); at the accepted minimum it is right."""
    lam = R.min_logistic_lambda(1000) * 1.001
    xs = np.array([lam, 2.0 ** -11, 2.0 ** -12])

    def prog(session):
        x = session.share(xs if session.party == 0 else None, owner=0)
        return session.reveal(mpc.reciprocal(x).rescale(16 + 8))
    got = mpc.run_local(prog, timeout=120)[0]
    assert abs(got[0] * lam - 1.0) < 1e-3
    assert got[1] == 0.0 and got[2] == 0.0


def test_logistic_lambda_zero_refused_at_both_parties_before_mpc(monkeypatch):
    calls = []
    real = booster.BinCodes

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)
    monkeypatch.setattr(booster, "BinCodes", spy)
    kw = dict(BASE, n_estimators=1, max_depth=2, base_score=0.5, reg_lambda=0.0)
    parts, y = _data(200)
    r = _both(lambda s: train(s, parts[s.party], y if s.party == 0 else None, objective="binary:logistic", **kw))
    for out in r:
        assert isinstance(out, PrecisionError), out
        assert "reg_lambda=0.0" in str(out) and "minimum for binary:logistic" in str(out)
    assert not calls


# -- logistic leaf weights: checked in MPC where n / lambda does not bound them ----------------

def _leaves(states):
    words = (np.asarray(states[0]["leaf_share"], dtype=np.uint64)
             + np.asarray(states[1]["leaf_share"], dtype=np.uint64))
    return words.view(np.int64) / 2.0 ** states[0]["frac"]


def _fit_logistic(X_parts, y, **kw):
    kw = dict(dict(BASE, n_estimators=1, max_depth=2), **kw)
    return _both(lambda s: train(s, X_parts[s.party], y if s.party == 0 else None, objective="binary:logistic",
                                 **kw))


def test_leaf_check_needed_at_the_static_edge_in_python_ints():
    """The check runs exactly where the worst case over all data -- every row of a node
    saturated at the wrong label, |w| = n / lambda -- would wrap a raw product (Python
    ints: w 2^16 * (1/lambda) 2^32 >= 2^62, or (n / S) 2^16 * w 2^16 >= 2^62)."""
    def wraps(n, lam):
        S = int(R.scale_power(n, 0.25, lam))
        w = Fraction(n) / Fraction(lam)
        leaf_raw = w * 2 ** 48
        gain_raw = Fraction(n, S) * w * 2 ** 32
        return leaf_raw >= 2 ** 62 or gain_raw >= 2 ** 62
    for lam in (1.0, 0.5, 4.0, 0.01):
        edge = next(n for n in range(1, 1 << 20) if wraps(n, lam))
        for n in (edge - 1, edge):
            p = dict(BASE, objective="binary:logistic", reg_lambda=lam)
            assert R.leaf_check_needed(n, p) == wraps(n, lam) == (n == edge)
    assert not R.leaf_check_needed(10 ** 6, _params(reg_lambda=0.0))


def test_saturated_wrong_leaf_is_refused_at_both_parties():
    """base_score 1 - 1e-6 (margin 13.8: the piecewise sigmoid is exactly 1) and every label
    0: g = 1, h = 0, the root's weight is n / lambda = 30,000 (2^14.9): its raw product
    wrapped silently before; now both parties refuse."""
    parts, _ = _data(300)
    y = np.zeros(300)
    assert R.leaf_check_needed(300, dict(BASE, objective="binary:logistic", reg_lambda=0.01))
    r = _fit_logistic(parts, y, reg_lambda=0.01, base_score=1 - 1e-6)
    for out in r:
        assert isinstance(out, PrecisionError), out
        assert "leaf weight" in str(out) and "2^12" in str(out)


def test_leaf_check_changes_no_model(monkeypatch):
    """Ordinary data with the check on (n / lambda = 30,000) gives the model it gives with
    the check off: same splits, leaves within the fixed point's noise."""
    parts, y = _data(300, seed=3)
    kw = dict(reg_lambda=0.01, base_score=0.5, n_estimators=2)
    on = _fit_logistic(parts, y, **kw)
    assert all(isinstance(s, dict) for s in on), on
    monkeypatch.setattr(R, "leaf_check_needed", lambda n, params: False)
    off = _fit_logistic(parts, y, **kw)
    for a, b in zip(on, off):
        assert np.array_equal(a["owner"], b["owner"]) and np.array_equal(a["feature"], b["feature"])
    np.testing.assert_allclose(_leaves(on), _leaves(off), atol=1e-3)
