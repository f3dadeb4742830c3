"""The range of noisy DP sums in MPC (pet.sql.dp_ranges; docs/sql.md DP section; issue 21).

Tail bounds against the exact noise distributions (pmf sums), the ring boundary against
Python-int arithmetic of the worst case, and pet.sql.dp.check_ranges (the check run_dp
calls) against the stated bound."""

import math
import random

import pytest

from pet.errors import PrecisionError
from pet.sql import dp as D
from pet.sql import dp_ranges as R
from pet.sql import numbers as N


def _plan(sens, epsilon=1.0, delta=0.0, frac=0):
    m = D.Measurement(kind="sum", agg=0, name="s", frac=frac, lo_int=-sens, hi_int=sens, sens=sens)
    dplan = D.DPPlan(spec=D.DP(epsilon, delta), measurements=[m], count_index=None, agg_meas={}, key_lists=[],
                     min_group_size=None)
    D._calibrate(dplan)
    return dplan, m


def _laplace_tail_by_pmf(scale, t):
    q = math.exp(-1.0 / scale)
    z = (1 - q) / (1 + q)  # P(0); P(y) = z q^|y|
    return 2 * sum(z * q ** y for y in range(t, t + int(200 * scale) + 2000))


def _gauss_tail_by_pmf(s2, t):
    s = math.sqrt(s2)
    span = int(60 * s) + 50
    w = {y: math.exp(-y * y / (2 * s2)) for y in range(-span, span + 1)}
    z = sum(w.values())
    return sum(v for y, v in w.items() if abs(y) >= t) / z


@pytest.mark.parametrize("scale", [0.7, 3.0, 25.0])
def test_laplace_tail_exact_and_minimal(scale):
    for t in (1, 5, 40):
        assert R.laplace_tail(scale, t) == pytest.approx(_laplace_tail_by_pmf(scale, t), rel=1e-9)
    dplan, m = _plan(1, epsilon=1.0 / scale)
    t = R.noise_tail(m)
    assert R.laplace_tail(float(m.scale), t) <= 2.0 ** -64
    assert t == 1 or R.laplace_tail(float(m.scale), t - 1) > 2.0 ** -64 * 0.999999


@pytest.mark.parametrize("eps,delta", [(1.0, 1e-6), (0.1, 1e-9), (5.0, 1e-5)])
def test_gaussian_tail_bound_holds(eps, delta):
    dplan, m = _plan(3, epsilon=eps, delta=delta)
    t = R.noise_tail(m)
    assert _gauss_tail_by_pmf(float(m.sigma2), t) <= 2.0 ** -64
    assert _gauss_tail_by_pmf(float(m.sigma2), max(1, t // 2)) > 2.0 ** -64  # not absurdly loose


def test_sampled_noise_within_tail():
    for delta in (0.0, 1e-6):
        dplan, m = _plan(5, epsilon=0.5, delta=delta)
        t = R.noise_tail(m)
        draws = D.sample_noise(m, 300)
        assert max(abs(int(x)) for x in draws) < t


@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_ring_boundary_in_python_ints(delta):
    """The largest n accepted: the worst noisy value n S + 2 t (Python ints) lies below
    2^61 (the stored width of numbers.WIDTH); one row more and it does not -- refused."""
    S = 2 ** 20
    dplan, m = _plan(S, epsilon=1.0, delta=delta)
    t = R.noise_tail(m)
    n = (2 ** N.WIDTH - 1 - 2 * t) // S
    worst = n * S + 2 * t
    assert worst < 2 ** N.WIDTH and worst + S >= 2 ** N.WIDTH
    # as a signed ring word the worst value (and its negative) round-trips
    for v in (worst, -worst):
        word = v % 2 ** 64
        assert (word + 2 ** 63) % 2 ** 64 - 2 ** 63 == v
    R.check_noisy_sums(dplan, n)
    assert R.noisy_sum_num(m, n).k == N.WIDTH
    with pytest.raises(PrecisionError, match="DP noisy s over .* rows.*exceeds the 64-bit ring"):
        R.check_noisy_sums(dplan, n + 1)


def test_run_dp_check_is_at_least_as_strict():
    """Whatever pet.sql.dp.check_ranges (called by run_dp before MPC) accepts fits the
    2^-64-tail bound; so a noisy sum that passed it cannot wrap (but with 2^-63)."""
    rng = random.Random(3)  # not-secret: test data
    accepted = 0
    for _ in range(300):
        S = 2 ** rng.randrange(0, 50)
        eps = 10.0 ** rng.uniform(-1, 1)
        delta = rng.choice([0.0, 1e-6, 1e-9])
        n = int(2 ** rng.uniform(0, 50))
        dplan, _ = _plan(S, eps, delta)
        try:
            D.check_ranges(dplan, n)
        except PrecisionError:
            continue
        accepted += 1
        R.check_noisy_sums(dplan, n)
    assert accepted > 50
