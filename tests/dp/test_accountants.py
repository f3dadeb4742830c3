"""Accountants vs dp-accounting 0.6.0 (test-only oracle) and the reference values R1-R17."""

from __future__ import annotations

import math
import warnings

import dp_accounting as dpa
import numpy as np
import pytest
from dp_accounting import pld as dpa_pld
from dp_accounting import rdp as dpa_rdp
from dp_accounting.gaussian_mechanism import get_epsilon_gaussian, get_sigma_gaussian
from dp_accounting.pld import accountant as dpa_acc
from dp_accounting.pld.common import DifferentialPrivacyParameters as DPP

import pet.dp as dp
from pet.errors import InputError

REL = 1e-3


def _dpa_event(ev):
    if isinstance(ev, dp.GaussianEvent):
        return dpa.GaussianDpEvent(ev.noise_multiplier)
    if isinstance(ev, dp.LaplaceEvent):
        return dpa.LaplaceDpEvent(ev.scale)
    if isinstance(ev, dp.PoissonSampledEvent):
        return dpa.PoissonSampledDpEvent(ev.sampling_rate, _dpa_event(ev.event))
    raise AssertionError(ev)


RDP_EVENTS = [
    dp.GaussianEvent(0.8),
    dp.GaussianEvent(3.0),
    dp.LaplaceEvent(0.5),
    dp.LaplaceEvent(4.0),
    dp.PoissonSampledEvent(0.01, dp.GaussianEvent(1.0)),
    dp.PoissonSampledEvent(0.05, dp.GaussianEvent(1.5)),
    dp.PoissonSampledEvent(0.3, dp.GaussianEvent(2.5)),
]


@pytest.mark.parametrize("event", RDP_EVENTS, ids=repr)
@pytest.mark.parametrize("steps", [1, 10, 1000])
@pytest.mark.parametrize("delta", [1e-3, 1e-6, 1e-9])
def test_rdp_epsilon_matches_dp_accounting(event, steps, delta):
    mine = dp.RDPAccountant().compose(event, steps)
    oracle = dpa_rdp.RdpAccountant().compose(_dpa_event(event), steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.PrivacyWarning)
        assert mine.get_epsilon(delta) == pytest.approx(oracle.get_epsilon(delta), rel=REL, abs=1e-9)


@pytest.mark.parametrize("event", RDP_EVENTS, ids=repr)
@pytest.mark.parametrize("epsilon", [0.5, 2.0, 8.0])
def test_rdp_delta_matches_dp_accounting(event, epsilon):
    mine = dp.RDPAccountant().compose(event, 20)
    oracle = dpa_rdp.RdpAccountant().compose(_dpa_event(event), 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.PrivacyWarning)
        assert mine.get_delta(epsilon) == pytest.approx(oracle.get_delta(epsilon), rel=REL, abs=1e-15)


def test_rdp_curve_matches_dp_accounting_internals():
    orders = [1.5, 2, 2.5, 3.3, 5, 8, 16, 32, 64, 256]
    for q, s in [(0.01, 0.7), (0.1, 1.2), (0.5, 4.0)]:
        mine = dp.RDPAccountant(orders).compose(dp.PoissonSampledEvent(q, dp.GaussianEvent(s))).rdp
        oracle = dpa_rdp.RdpAccountant(orders).compose(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(s)))._rdp
        np.testing.assert_allclose(mine, oracle, rtol=1e-6)


def test_r1_opacus_dpsgd():
    acc = dp.RDPAccountant(orders=[1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)))
    acc.compose(dp.PoissonSampledEvent(0.04, dp.GaussianEvent(1.5)), 2250)
    assert acc.get_epsilon(1e-5) == pytest.approx(7.32911117143, rel=1e-3)


def test_r4_mnist_classic_conversion_and_pld():
    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    q = 256 / 60000
    for sigma, epochs, expected in [(1.1, 60, 3.01), (1.3, 15, 1.19), (0.7, 45, 7.10)]:
        steps = int(math.ceil(epochs * 60000 / 256))
        acc = dp.RDPAccountant(orders, conversion="classic").compose(
            dp.PoissonSampledEvent(q, dp.GaussianEvent(sigma)), steps)
        assert acc.get_epsilon(1e-5) == pytest.approx(expected, abs=0.01)
    pld = dp.PLDAccountant().compose(dp.PoissonSampledEvent(q, dp.GaussianEvent(1.1)), 14063)
    assert pld.get_epsilon(1e-5) == pytest.approx(2.382, abs=0.01)


def test_r5_r11_conversions_on_constant_curve():
    orders = list(range(2, 33))
    rdp = [1.1] * len(orders)
    eps, order = dp.rdp_to_epsilon(orders, rdp, 1e-5)
    assert eps == pytest.approx(1.32783806176, rel=1e-9) and order == 32
    assert dp.rdp_to_delta(orders, rdp, eps)[0] == pytest.approx(1e-5, rel=1e-6)
    classic, _ = dp.rdp_to_epsilon(orders, rdp, 1e-5, conversion="classic")
    assert classic == pytest.approx(1.1 + math.log(1e5) / 31, rel=1e-12)


def test_r6_subsampled_gaussian_curve():
    orders = [1.5, 2.5, 5, 50, 100, np.inf]
    acc = dp.RDPAccountant(orders).compose(dp.PoissonSampledEvent(0.01, dp.GaussianEvent(2.5)), 50)
    expected = [6.70579741e-04, 1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e02, np.inf]
    np.testing.assert_allclose(acc.rdp, expected, rtol=1e-4)


def test_r7_gaussian_fine_grid():
    acc = dp.RDPAccountant(np.arange(1.0, 100.0, 0.001)).compose(dp.GaussianEvent(4.530877117))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.PrivacyWarning)
        assert acc.get_epsilon(1e-6) == pytest.approx(1.0, rel=1e-3)
        assert acc.get_delta(1.0) == pytest.approx(1e-6, rel=1e-2)


def test_r17_laplace_rdp():
    orders = [1.5, 2, 4, 8, 32]
    acc = dp.RDPAccountant(orders).compose(dp.LaplaceEvent(1.0))
    np.testing.assert_allclose(acc.rdp, [0.51288351, 0.61912363, 0.81368930, 0.91019880, 0.97814843], rtol=1e-7)


def test_edge_of_grid_warns():
    acc = dp.RDPAccountant(orders=[2, 3, 4]).compose(dp.GaussianEvent(10.0))
    with pytest.warns(dp.PrivacyWarning, match="edge"):
        acc.get_epsilon(1e-5)


def test_compose_is_dry_run_first():
    acc = dp.RDPAccountant().compose(dp.GaussianEvent(1.0))
    before = acc.rdp
    bad = dp.ComposedEvent((dp.GaussianEvent(1.0), dp.PoissonSampledEvent(0.1, dp.LaplaceEvent(1.0))))
    assert not acc.supports(bad)
    with pytest.raises(dp.UnsupportedEventError, match="Poisson"):
        acc.compose(bad)
    np.testing.assert_array_equal(acc.rdp, before)
    assert len(acc.ledger) == 1
    assert acc.compose(dp.SelfComposedEvent(dp.GaussianEvent(1.0), 3)) is acc
    oracle = dpa_rdp.RdpAccountant().compose(dpa.GaussianDpEvent(1.0), 4)
    assert acc.get_epsilon(1e-5) == pytest.approx(oracle.get_epsilon(1e-5), rel=1e-9)


@pytest.mark.parametrize(
    "bad",
    [lambda: dp.GaussianEvent(0), lambda: dp.GaussianEvent(-1), lambda: dp.LaplaceEvent(float("nan")),
     lambda: dp.PoissonSampledEvent(1.5, dp.GaussianEvent(1)), lambda: dp.RDPAccountant(conversion="x"),
     lambda: dp.RDPAccountant().compose(dp.GaussianEvent(1), -1), lambda: dp.RDPAccountant().compose("gauss"),
     lambda: dp.RDPAccountant().get_epsilon(2.0), lambda: dp.PLDAccountant(value_discretization_interval=0)],
)
def test_bad_arguments_raise_input_error(bad):
    with pytest.raises(InputError):
        bad()


# ----- PLD -------------------------------------------------------------------------------------

PLD_EVENTS = [
    dp.GaussianEvent(1.0),
    dp.GaussianEvent(2.0),
    dp.LaplaceEvent(1.0),
    dp.LaplaceEvent(3.0),
    dp.PoissonSampledEvent(0.1, dp.GaussianEvent(1.0)),
    dp.PoissonSampledEvent(0.02, dp.GaussianEvent(0.8)),
    dp.PoissonSampledEvent(0.2, dp.LaplaceEvent(0.5)),
]


@pytest.mark.parametrize("event", PLD_EVENTS, ids=repr)
@pytest.mark.parametrize("steps", [1, 16])
def test_pld_matches_dp_accounting(event, steps):
    mine = dp.PLDAccountant().compose(event, steps)
    oracle = dpa_pld.PLDAccountant().compose(_dpa_event(event), steps)
    for delta in (1e-3, 1e-6):
        assert mine.get_epsilon(delta) == pytest.approx(oracle.get_epsilon(delta), rel=REL, abs=1e-6)
    for eps in (0.5, 2.0):
        assert mine.get_delta(eps) == pytest.approx(oracle.get_delta(eps), rel=REL, abs=1e-12)


def test_pld_is_not_below_exact_gaussian():
    # Pessimism: for a Gaussian, the exact profile is known in closed form.
    acc = dp.PLDAccountant().compose(dp.GaussianEvent(1.5))
    for eps in (0.1, 0.5, 1.0, 2.0, 3.0):
        exact = dp.gaussian_delta(1.5, eps)
        assert exact * (1 - 1e-9) <= acc.get_delta(eps) <= exact * (1 + 1e-3) + 1e-12  # 1e-9: float rounding


def test_r8_r9_r10_r11():
    assert dp.PLDAccountant().compose(dp.GaussianEvent(math.sqrt(3)), 3).get_delta(1.0) == pytest.approx(
        0.126936, rel=1e-3)
    sub = dp.PLDAccountant().compose(dp.PoissonSampledEvent(0.2, dp.GaussianEvent(0.5)), 3)
    assert sub.get_delta(1.0) == pytest.approx(0.15594, rel=1e-3)
    lap = dp.PLDAccountant().compose(dp.PoissonSampledEvent(0.2, dp.LaplaceEvent(0.5)), 3)
    assert lap.get_epsilon(1e-14) == pytest.approx(3 * math.log(1 + 0.2 * (math.e**2 - 1)), rel=1e-3)
    mix = dp.PLDAccountant().compose(dp.LaplaceEvent(1.0), 3).compose(dp.LaplaceEvent(2.0), 2)
    assert mix.get_epsilon(1e-14) == pytest.approx(4.0, rel=1e-3)
    pure = dp.PLDAccountant().compose(dp.EpsilonDeltaEvent(1, 0)).compose(dp.EpsilonDeltaEvent(2, 0))
    assert pure.get_delta(3.0) == 0.0 and pure.get_epsilon(0.0) == pytest.approx(3.0, abs=1e-9)
    approx = dp.PLDAccountant().compose(dp.EpsilonDeltaEvent(1, 0.1)).compose(dp.EpsilonDeltaEvent(2, 0.2))
    assert approx.get_delta(3.0) == pytest.approx(0.28, abs=1e-9)
    assert dp.basic_composition([1, 2], [0.1, 0.2]) == pytest.approx((3.0, 0.3))


def test_r13_gaussian_pld_equals_analytic():
    assert dp.PLDAccountant().compose(dp.GaussianEvent(2.0)).get_epsilon(1e-5) == pytest.approx(1.99309, rel=1e-4)


# ----- composition theorems ---------------------------------------------------------------------


def test_r12_optimal_advanced_composition():
    assert dp.advanced_composition(1, 1e-3, 30, 0.06) == pytest.approx(22)
    assert dp.advanced_composition(1, 1e-3, 30, 0.1) == pytest.approx(20)
    assert dp.advanced_composition(1, 0, 30, 0) == pytest.approx(30)
    assert dp.advanced_composition(1, 0.01, 30, 0.26) is None
    assert dp.advanced_composition(0.1, 0, 100, 1e-5) == pytest.approx(4.4)


@pytest.mark.parametrize("eps,delta,k,total", [(0.1, 0, 100, 1e-5), (0.5, 1e-6, 50, 1e-4), (0.01, 1e-8, 500, 1e-6),
                                               (2.0, 0, 7, 0.01)])
def test_advanced_composition_matches_dp_accounting(eps, delta, k, total):
    oracle = dpa_acc.advanced_composition(DPP(eps, delta), k, total)
    assert dp.advanced_composition(eps, delta, k, total) == pytest.approx(oracle)


@pytest.mark.parametrize("total_eps,total_delta,k,delta", [(10, 1e-5, 100, 0), (1.0, 1e-3, 20, 1e-6)])
def test_inverse_advanced_composition_matches_dp_accounting(total_eps, total_delta, k, delta):
    oracle = dpa_acc.get_smallest_epsilon_from_advanced_composition(
        DPP(total_eps, total_delta), k, delta
    )
    assert dp.smallest_epsilon_advanced_composition(total_eps, total_delta, k, delta) == pytest.approx(oracle, rel=1e-3)


def test_drv_formula_and_cap():
    e, d = dp.drv_composition(0.1, 0, 100, 1e-5)
    assert e == pytest.approx(math.sqrt(200 * math.log(1e5)) * 0.1 + 100 * 0.1 * math.expm1(0.1))
    assert e == pytest.approx(5.850, abs=1e-3) and d == pytest.approx(1e-5)
    assert dp.drv_composition(1.0, 0, 30, 1e-5) == (30.0, 0.0)  # never above basic composition


# ----- calibration --------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-3, 0.1, 1.0, 10.0, 1e3])
@pytest.mark.parametrize("delta", [1e-10, 1e-5, 0.1])
def test_analytic_gaussian_vs_dp_accounting_and_round_trip(eps, delta):
    sigma = dp.gaussian_sigma(eps, delta)
    assert sigma == pytest.approx(get_sigma_gaussian(eps, delta), rel=1e-5)
    assert dp.gaussian_epsilon(sigma, delta) == pytest.approx(eps, rel=1e-7)


def test_r13_analytic_gaussian_values():
    assert dp.gaussian_epsilon(2.0, 1e-5) == pytest.approx(1.99309, rel=1e-5)
    assert dp.gaussian_epsilon(2.0, 1e-5) == pytest.approx(get_epsilon_gaussian(2.0, 1e-5), rel=1e-6)
    assert dp.gaussian_sigma(1.0, 1e-5) == pytest.approx(3.7306, rel=1e-4)
    assert dp.classic_gaussian_sigma(1.0, 1e-5) == pytest.approx(4.8448, rel=1e-4)


def test_r14_zcdp_to_dp():
    # Gaussian scale 0.5 with sensitivity 1 is rho = 2 zCDP; the improved RDP conversion gives
    # OpenDP's 11.6886 on a fine order grid.
    acc = dp.RDPAccountant(orders=np.linspace(1.01, 40, 40000)).compose(dp.ZCDPEvent(2.0))
    assert acc.get_epsilon(1e-6) == pytest.approx(11.688596249354896, rel=1e-4)


@pytest.mark.filterwarnings("ignore::pet.dp.PrivacyWarning")
def test_r3_calibrate_noise():
    def make(s):
        return dp.RDPAccountant().compose(dp.PoissonSampledEvent(0.04, dp.GaussianEvent(s)), 2000)

    sigma = dp.calibrate_noise(make, 8.0, 1e-5, tol=1e-5)
    assert sigma == pytest.approx(1.3562, abs=2e-3)
    assert make(sigma).get_epsilon(1e-5) <= 8.0
