"""Differentially private secure SQL (issue 18): API, clamping, noise distribution,
refusals, budgets on both parties' ledgers (also after kills), the CLI over TLS."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pet.dp as pdp
import pet.mpc as mpc
import pet.sql as psql
from pet.errors import BudgetExceeded, InputError
from pet.sql import SqlMismatch, SqlNotSupported
from pet.sql.dp import laplace_std, zcdp_budget
from tests.sql.helpers import oracle, run_both

SALES = pd.DataFrame({"uid": np.arange(60), "amount": np.linspace(0.5, 30.0, 60)})
USERS = pd.DataFrame({"uid": np.arange(20, 80), "w": np.linspace(-2.0, 2.0, 60),
                      "region": ["eu", "us", "asia"] * 20})
T0, T1 = {"sales": SALES}, {"users": USERS}
Q = ("SELECT u.region, COUNT(*) AS n, SUM(s.amount) AS total FROM sales s JOIN users u ON s.uid = u.uid "
     "GROUP BY u.region")
REGIONS = {"region": ["eu", "us", "asia", "mars"]}


def outcomes(sql, t0, t1, kw0, kw1=None):
    """Each party's result or exception."""
    kw1 = kw0 if kw1 is None else kw1

    def prog(session):
        kw = kw0 if session.party == 0 else kw1
        try:
            return psql.query(session, sql, t0 if session.party == 0 else t1, **kw)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return exc
    return mpc.run_local(prog, timeout=300)


# -- 1. API --------------------------------------------------------------------------------------

def test_dp_result_carries_attrs_and_public_groups():
    dp = psql.DP(2.0, bounds={"total": (0, 40)}, public_groups=REGIONS)
    r0, r1 = run_both(Q, T0, T1, dp=dp)
    for r in (r0, r1):
        assert list(r.columns) == ["region", "n", "total"]
        assert sorted(r["region"]) == ["asia", "eu", "mars", "us"]  # exactly the public groups
        a = r.attrs["dp"]
        assert a["epsilon"] == 2.0 and a["delta"] == 0.0 and a["mechanism"] == "discrete_laplace"
        # two measurements (count, sum), eps 1 each; per party discrete Laplace of scale S/eps
        assert a["noise_std"]["n"] == pytest.approx(math.sqrt(2) * laplace_std(1.0))
        f = a["frac_bits"]["total"]
        assert f == 30 - 6
        assert a["noise_std"]["total"] == pytest.approx(math.sqrt(2) * laplace_std(40 * 2 ** f) * 2 ** -f)
        assert a["accounted_epsilon"] == pytest.approx(2.0)
        assert r["n"].dtype.kind == "i"
    # the same noisy values at both receivers
    assert r0.sort_values("region").reset_index(drop=True).equals(r1.sort_values("region").reset_index(drop=True))


def test_noise_std_is_within_1_5x_of_the_central_mechanism():
    dp = psql.DP(1.0, 1e-5, bounds={"total": (0, 40)}, public_groups=REGIONS)
    r = run_both(Q, T0, T1, dp=dp, reveal_to=0)
    assert r[1] is None
    a = r[0].attrs["dp"]
    assert a["mechanism"] == "discrete_gaussian"
    # central: one discrete Gaussian per measurement at rho/2 -> sigma = S / sqrt(rho)
    rho = zcdp_budget(1.0, 1e-5)
    assert a["noise_std"]["n"] / (1 / math.sqrt(rho)) == pytest.approx(math.sqrt(2), rel=1e-3)
    assert a["noise_std"]["total"] / (40 / math.sqrt(rho)) == pytest.approx(math.sqrt(2), rel=1e-3)
    assert a["accounted_epsilon"] <= 1.0


@pytest.mark.parametrize("kw1", [
    {"epsilon": 1.5}, {"delta": 1e-6}, {"bounds": {"total": (0, 41)}},
    {"public_groups": {"region": ["eu", "us"]}},
])
def test_different_dp_parameters_are_a_mismatch_at_both(kw1):
    base = {"epsilon": 1.0, "delta": 0.0, "bounds": {"total": (0, 40)}, "public_groups": REGIONS}
    other = {**base, **kw1}
    r = outcomes(Q, T0, T1, {"dp": psql.DP(**base)}, {"dp": psql.DP(**other)})
    assert all(isinstance(x, SqlMismatch) and "dp" in str(x) for x in r), r
    r = outcomes(Q, T0, T1, {"dp": psql.DP(**base)}, {})
    assert all(isinstance(x, SqlMismatch) for x in r), r


def test_dp_argument_validation():
    with pytest.raises(InputError, match="epsilon"):
        psql.DP(0)
    with pytest.raises(InputError, match="delta"):
        psql.DP(1.0, 1.0)
    with pytest.raises(InputError, match="lo must be < hi"):
        psql.DP(1.0, bounds={"t": (5, 1)})
    with pytest.raises(InputError, match="block"):
        psql.DP(1.0, ledger="x.db")
    with pytest.raises(InputError, match="repeated"):
        psql.DP(1.0, public_groups={"r": ["a", "a"]})


# -- 2. contributions clamped inside MPC; refusals ------------------------------------------------

OUTLIERS = pd.DataFrame({"uid": np.arange(10), "amount": [1e9, -1e9, 3.0, 4.0, 5.0, 2e6, 7.0, -5e5, 9.0, 1.0]})
PEERS = pd.DataFrame({"uid": np.arange(10), "w": [1.0, 2.0, -3.0, 1.0, 1e7, 1.0, 1.0, 1.0, 1.0, 0.5],
                      "k": [0, 1] * 5})
BIG_EPS = 4000.0  # noise std ~ 0.01: the clamped sum is visible, the unclamped one far away


def _clamped(sql_expr, lo, hi, by=None):
    con_sql = (f"SELECT {by + ', ' if by else ''}SUM(GREATEST(LEAST({sql_expr}, {hi}), {lo})) AS t, COUNT(*) AS n "
               f"FROM o s JOIN p u ON s.uid = u.uid {'GROUP BY ' + by if by else ''}")
    return oracle(con_sql, {"o": OUTLIERS}, {"p": PEERS})


@pytest.mark.parametrize("expr, by", [
    ("s.amount", None),                 # one party's value, no groups: its owner clamps in plaintext
    ("s.amount", "u.k"),                # one party's value, the peer's groups: Beaver product
    ("s.amount * u.w", None),           # a cross-party value: clamped in MPC
    ("s.amount * u.w", "u.k"),
])
def test_out_of_bound_rows_cannot_move_the_sum_beyond_the_bound(expr, by):
    lo, hi = -10.0, 10.0
    sql = (f"SELECT {by + ', ' if by else ''}SUM({expr}) AS t, COUNT(*) AS n FROM o s JOIN p u ON s.uid = u.uid "
           f"{'GROUP BY ' + by if by else ''}")
    groups = {"k": [0, 1]} if by else None
    dp = psql.DP(BIG_EPS, bounds={"t": (lo, hi)}, public_groups=groups)
    got = run_both(sql, {"o": OUTLIERS}, {"p": PEERS}, dp=dp)[0]
    want = _clamped(expr, lo, hi, by)
    raw = oracle(sql, {"o": OUTLIERS}, {"p": PEERS})
    if by:
        got, want, raw = (d.sort_values("k").reset_index(drop=True) for d in (got, want, raw))
    std = got.attrs["dp"]["noise_std"]["t"]
    assert std < 0.02
    # a cross-party row value is computed at the precision its *unclamped* range allows
    # (products up to ~1e16 here: 0 fractional bits), then clamped: <= 1 ulp per row
    ulp = 1.0 if "*" in expr else 0.0
    assert np.allclose(got["t"], want["t"], atol=10 * std + 10 * ulp + 1e-6), (got, want)
    assert np.all(np.abs(got["t"] - raw["t"]) > 1000)   # the outliers did not get through
    assert np.all(np.abs(got["t"]) <= 10 * hi * 5 + 1)   # at most (rows) * bound
    assert np.allclose(got["n"], want["n"], atol=1)


def test_avg_is_clamped_noisy_sum_over_noisy_count():
    sql = "SELECT AVG(s.amount) AS a, COUNT(*) AS n FROM o s JOIN p u ON s.uid = u.uid"
    got = run_both(sql, {"o": OUTLIERS}, {"p": PEERS}, dp=psql.DP(BIG_EPS, bounds={"a": (0, 10)}))[0]
    want = _clamped("s.amount", 0, 10)
    assert got["a"][0] == pytest.approx(want["t"][0] / 10, abs=0.01)
    assert got.attrs["dp"]["noise_std"]["a"] is None
    assert set(got.attrs["dp"]["avg_noise"]["a"]) == {"sum_noise_std", "count_noise_std"}


@pytest.mark.parametrize("sql, kw, needle", [
    ("SELECT MAX(s.amount) AS m FROM sales s JOIN users u ON s.uid = u.uid", {}, "MAX"),
    ("SELECT MIN(s.amount * u.w) AS m, COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid", {}, "MIN"),
    ("SELECT SUM(s.amount) AS total FROM sales s JOIN users u ON s.uid = u.uid", {}, "'total' without bounds"),
    ("SELECT AVG(s.amount) AS mean FROM sales s JOIN users u ON s.uid = u.uid", {}, "'mean' without bounds"),
    (Q, {"bounds": {"total": (0, 40)}}, "pure epsilon-DP"),                      # data-derived keys, delta = 0
    # (data-derived keys with delta > 0 are released by a noisy threshold: tests/sql/test_dp_groups.py)
    ("SELECT COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid HAVING COUNT(*) > 3", {}, "HAVING"),
    ("SELECT COUNT(*) * 2 AS n FROM sales s JOIN users u ON s.uid = u.uid", {}, "expression"),
    ("SELECT s.uid FROM sales s JOIN users u ON s.uid = u.uid", {}, "row-level"),
    ("SELECT COUNT(*) AS n FROM sales s", {}, "one party"),
])
def test_refusals_at_both_parties(sql, kw, needle):
    r = outcomes(sql, T0, T1, {"dp": psql.DP(**{"epsilon": 1.0, **kw})})
    assert isinstance(r[0], SqlNotSupported) and needle in str(r[0]), r
    assert isinstance(r[1], Exception)  # the peer stops too (same refusal, or the peer's failure status)


def test_bounds_for_a_count_or_unknown_column_are_refused():
    r = outcomes("SELECT COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid", T0, T1,
                 {"dp": psql.DP(1.0, bounds={"n": (0, 1)})})
    assert all(isinstance(x, InputError) for x in r)
    r = outcomes("SELECT COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid", T0, T1,
                 {"dp": psql.DP(1.0, bounds={"zz": (0, 1)})})
    assert all(isinstance(x, InputError) for x in r)


def test_count_of_an_expression_needs_no_bounds_and_min_group_size_uses_the_noisy_count():
    sql = ("SELECT u.region, COUNT(s.amount) AS c FROM sales s JOIN users u ON s.uid = u.uid "
           "GROUP BY u.region")
    got = run_both(sql, T0, T1, dp=psql.DP(BIG_EPS, public_groups=REGIONS), min_group_size=5)[0]
    # mars has no rows: its noisy count (std ~ 1e-3) is below 5 and it is not released
    assert sorted(got["region"]) == ["asia", "eu", "us"]
    assert got.attrs["suppressed_groups"] == 1
    assert list(got.sort_values("region")["c"]) == [13, 14, 13]


CLAMP_VALUES = np.array([-1e5, -3.0, -2.5, 0.0, 0.1, 0.10000005, 0.2, 3.25, 999.99, 1000.0, 1e4, 6e4])


def _lattice_measurement(lo, hi, frac):
    from fractions import Fraction

    from pet.sql.dp import Measurement

    lo_int, hi_int = math.ceil(Fraction(lo) * 2 ** frac), math.floor(Fraction(hi) * 2 ** frac)
    return Measurement("sum", 0, f"[{lo}, {hi}]", lo, hi, frac, lo_int, hi_int, max(abs(lo_int), abs(hi_int)), "float")


def test_shared_clamps_are_exact_and_batched_in_one_comparison():
    # every shared contribution stays inside [lo_int, hi_int] of its lattice and is within one
    # ulp of the plaintext clamp; all measurements share one MSB and one product (a finer value
    # adds its truncation round), where clamping each by minimum then maximum took 18 rounds
    # per measurement and 37 for one finer than its lattice
    from pet.sql.dp import _contributions
    from pet.sql.values import Sh

    fv = 16
    ms = [_lattice_measurement(0, 1000, 20),              # coarser value: compared at 2^-16, scaled up
          _lattice_measurement(-2.5, 3.25, 28),
          _lattice_measurement(0.1, 0.1000001, 33),       # no point of 2^-16 inside: every row -> a bound
          _lattice_measurement(-40000, 50000, 14)]        # finer value: truncated to 2^-14 first
    assert [m.frac >= fv for m in ms] == [True, True, True, False]

    def prog(session):
        vals = [Sh(session.share(CLAMP_VALUES if session.party == 0 else None, owner=0, frac_bits=fv), "float")
                for _ in ms]
        before = session.channel.stats.snapshot()
        out = _contributions(session, None, ms, vals, len(CLAMP_VALUES))
        sent = (session.channel.stats.snapshot() - before).messages_sent
        return [np.asarray(session.reveal(o.s)).astype(np.int64) for o in out], sent

    (got, sent0), (got1, sent1) = mpc.run_local(prog, timeout=120)
    for m, g, g1 in zip(ms, got, got1):
        assert np.array_equal(g, g1)
        assert np.all((g >= m.lo_int) & (g <= m.hi_int)), (m.name, g)
        want = np.clip(CLAMP_VALUES, m.lo, m.hi)
        ulp = 2.0 ** -min(fv, m.frac)
        assert np.allclose(g * 2.0 ** -m.frac, want, rtol=0, atol=ulp + 2.0 ** -m.frac), (m.name, g * 2.0 ** -m.frac)
    assert sent0 == sent1 <= 12, sent0


_NO_SCIPY = textwrap.dedent("""
    import sys
    import numpy as np, pandas as pd
    import pet.mpc as mpc, pet.sql as psql

    sales = pd.DataFrame({"uid": np.arange(30), "amount": np.linspace(0.5, 30.0, 30)})
    users = pd.DataFrame({"uid": np.arange(30), "w": np.linspace(-2.0, 2.0, 30), "g": np.arange(30) % 3})
    sql = ("SELECT u.g, COUNT(*) AS n, SUM(s.amount * u.w) AS t FROM sales s JOIN users u ON s.uid = u.uid "
           "GROUP BY u.g")
    for delta in (0.0, 1e-6):
        dp = psql.DP(1.0, delta, bounds={"t": (-10, 10)}, public_groups={"g": [0, 1, 2]})
        r = mpc.run_local(lambda s: psql.query(s, sql, {"sales": sales} if s.party == 0 else {"users": users},
                                                dp=dp), timeout=120)
        assert len(r[0]) == 3
    print(sorted(m for m in sys.modules if m.split(".")[:2] in (["scipy", "signal"], ["scipy", "stats"],
                                                                 ["scipy", "special"])))
""")


def test_a_dp_query_does_not_load_scipy_signal_stats_or_special():
    # importing pet.dp used to load scipy.signal and scipy.stats (the PLD accountant), about a
    # second of CPU that every process paid in its first DP query -- most of the old DP
    # overhead of benchmarks/test_sql_dp.py; pet.dp now imports scipy where it is used (numba
    # loads scipy's base and scipy.linalg for every query, DP or not)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", _NO_SCIPY], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


# -- 3. the noise: distribution against the reported std, zero mean --------------------------------

def _two_laplace_cdf(z, b):
    """CDF of the sum of two independent Laplace(0, b)."""
    z = np.asarray(z, dtype=np.float64)
    tail = 0.25 * (2 + np.abs(z) / b) * np.exp(-np.abs(z) / b)
    return np.where(z >= 0, 1 - tail, tail)


def _dlap_pmf(t, support):
    q = math.exp(-1.0 / t)
    return (1 - q) / (1 + q) * q ** np.abs(support)


G = 300  # groups per query: one independent noise draw each


def _noise_samples(dp_kw, queries):
    users = pd.DataFrame({"uid": np.arange(2 * G), "g": np.arange(2 * G) % G})
    sales = pd.DataFrame({"uid": np.arange(2 * G), "x": np.linspace(-3, 3, 2 * G)})
    sql = "SELECT u.g, COUNT(*) AS n, SUM(s.x) AS t FROM sales s JOIN users u ON s.uid = u.uid GROUP BY u.g"
    exact = oracle("SELECT u.g, COUNT(*) AS n, SUM(GREATEST(LEAST(s.x, 2), -2)) AS t FROM sales s "
                   "JOIN users u ON s.uid = u.uid GROUP BY u.g", {"sales": sales}, {"users": users})
    exact = exact.set_index("g").reindex(range(G + 5), fill_value=0)  # 5 empty public groups
    dn, dt, attrs = [], [], None
    for _ in range(queries):
        dp = psql.DP(**dp_kw, bounds={"t": (-2, 2)}, public_groups={"g": list(range(G + 5))})
        got = run_both(sql, {"sales": sales}, {"users": users}, dp=dp, reveal_to=1)[1].set_index("g")
        got = got.reindex(exact.index)
        dn.append((got["n"] - exact["n"]).to_numpy(np.float64))
        dt.append((got["t"] - exact["t"]).to_numpy(np.float64))
        attrs = got.attrs["dp"]
    return np.concatenate(dn), np.concatenate(dt), attrs


def test_laplace_noise_matches_reported_std_and_distribution():
    dn, dt, a = _noise_samples({"epsilon": 1.0}, queries=2)
    for d, std in ((dn, a["noise_std"]["n"]), (dt, a["noise_std"]["t"])):
        assert abs(d.mean()) < 5 * std / math.sqrt(len(d))
        assert d.std() == pytest.approx(std, rel=0.2)
    # the sum's noise: two continuous-like discrete Laplace of scale 2*2 / 0.5 each (f = 28)
    b = 2.0 / 0.5
    assert stats.kstest(dt, lambda z: _two_laplace_cdf(z, b)).pvalue > 1e-4
    # the count's noise: chi-square against the exact pmf of DLap(2) + DLap(2)
    support = np.arange(-60, 61)
    pmf = np.convolve(_dlap_pmf(2.0, support), _dlap_pmf(2.0, support))[60:-60]
    bins = np.arange(-8, 9)
    expected = np.array([pmf[support <= -8].sum()] + [pmf[support == k][0] for k in bins[1:-1]] +
                        [pmf[support >= 8].sum()])
    observed = np.array([(dn <= -8).sum()] + [(dn == k).sum() for k in bins[1:-1]] + [(dn >= 8).sum()])
    assert stats.chisquare(observed, expected / expected.sum() * len(dn)).pvalue > 1e-4


def test_gaussian_noise_matches_reported_std_and_distribution():
    dn, dt, a = _noise_samples({"epsilon": 1.0, "delta": 1e-6}, queries=2)
    for d, std in ((dn, a["noise_std"]["n"]), (dt, a["noise_std"]["t"])):
        assert abs(d.mean()) < 5 * std / math.sqrt(len(d))
        assert d.std() == pytest.approx(std, rel=0.2)
    # the sum's noise (lattice 2^-28: continuous for the test) against the normal of the reported std
    assert stats.kstest(dt / a["noise_std"]["t"], "norm").pvalue > 1e-4
    # the count: a discrete Gaussian sum, compared with the normal of the reported std by chi-square
    std = a["noise_std"]["n"]
    edges = np.array([-np.inf, -2, -1, -0.5, 0, 0.5, 1, 2, np.inf]) * std
    observed = np.histogram(dn, bins=edges + 0.5)[0]
    expected = np.diff(stats.norm.cdf((edges + 0.5) / std)) * len(dn)
    assert stats.chisquare(observed, expected).pvalue > 1e-4


# -- 4. public groups over keys of both parties ---------------------------------------------------

def test_public_product_groups_over_both_parties_keys():
    sales = SALES.assign(shop=np.arange(60) % 2)
    sql = ("SELECT s.shop, u.region, COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid "
           "GROUP BY s.shop, u.region")
    dp = psql.DP(BIG_EPS, public_groups={"shop": [0, 1, 7], "region": ["eu", "us", "asia"]})
    got = run_both(sql, {"sales": sales}, T1, dp=dp)[0]
    want = oracle(sql, {"sales": sales}, T1)
    assert len(got) == 9  # every listed combination, the empty ones as noisy zeros
    merged = got.merge(want, on=["shop", "region"], how="left", suffixes=("", "_x")).fillna(0)
    assert np.allclose(merged["n"], merged["n_x"], atol=1)


# -- 5. budgets on both ledgers -------------------------------------------------------------------

def _ledger(path, eps, **kw):
    with pdp.BudgetLedger(path) as led:
        led.add_block("b", eps, 1e-6, **kw)
    return str(path)


def _state(path):
    with pdp.BudgetLedger(path) as led:
        led.check()
        blk = led.block("b")
        return blk, [led.claim(c) for c in led.claim_ids()]


def _dp_kw(l0, l1, eps=1.0):
    def dp(ledger):
        return psql.DP(eps, bounds={"total": (0, 40)}, public_groups=REGIONS, ledger=ledger, block="b")
    return {"dp": dp(l0)}, {"dp": dp(l1)}


def test_released_result_is_charged_at_both(tmp_path):
    l0, l1 = _ledger(tmp_path / "0.db", 3.0), _ledger(tmp_path / "1.db", 3.0)
    k0, k1 = _dp_kw(l0, l1)
    r = outcomes(Q, T0, T1, k0, k1)
    assert all(isinstance(x, pd.DataFrame) for x in r), r
    for path in (l0, l1):
        blk, claims = _state(path)
        assert blk.consumed == pytest.approx(1.0) and blk.allocated == 0 and blk.unlocked == pytest.approx(2.0)
        assert [c.state for c in claims] == ["allocated"] and claims[0].consumed["b"]  # consumed in full
        assert claims[0].claim_id.startswith("pet.sql/")


@pytest.mark.parametrize("poor", [0, 1])
def test_one_poor_ledger_refuses_at_both_and_nobody_is_charged(tmp_path, poor):
    eps = [5.0, 5.0]
    eps[poor] = 0.5
    l0, l1 = _ledger(tmp_path / "0.db", eps[0]), _ledger(tmp_path / "1.db", eps[1])
    k0, k1 = _dp_kw(l0, l1)
    r = outcomes(Q, T0, T1, k0, k1)
    assert all(isinstance(x, BudgetExceeded) for x in r), r
    assert "block 'b' cannot cover" in str(r[poor]) and "peer" in str(r[1 - poor])
    for p, path in enumerate((l0, l1)):
        blk, claims = _state(path)
        assert blk.consumed == 0 and blk.allocated == 0 and blk.unlocked == eps[p]
        assert [c.state for c in claims] == ([] if p == poor else ["released"])


def test_failure_before_the_opening_releases_both_claims(tmp_path):
    l0, l1 = _ledger(tmp_path / "0.db", 3.0), _ledger(tmp_path / "1.db", 3.0)
    k0, k1 = _dp_kw(l0, l1)
    sales = SALES.astype({"amount": object})
    sales.loc[30, "amount"] = None  # a NULL entering MPC stops both parties at the local step
    r = outcomes(Q, {"sales": sales}, T1, k0, k1)
    assert all(isinstance(x, Exception) for x in r), r
    for path in (l0, l1):
        blk, claims = _state(path)
        assert blk.unlocked == 3.0 and blk.consumed == 0 and [c.state for c in claims] == ["released"]


@pytest.mark.parametrize("block_delta", [0.0, 1e-7])
def test_query_delta_above_a_basic_blocks_delta_is_refused_at_both(tmp_path, block_delta):
    paths = []
    for p in (0, 1):
        with pdp.BudgetLedger(tmp_path / f"{p}.db") as led:
            led.add_block("b", 5.0, block_delta if p == 0 else 1e-5)
        paths.append(str(tmp_path / f"{p}.db"))
    k0, k1 = ({"dp": psql.DP(1.0, 1e-6, bounds={"total": (0, 40)}, public_groups=REGIONS, ledger=path, block="b")}
              for path in paths)
    r = outcomes(Q, T0, T1, k0, k1)
    assert all(isinstance(x, BudgetExceeded) for x in r), r
    assert "delta" in str(r[0]) and "peer" in str(r[1])
    for path in paths:
        blk, claims = _state(path)
        assert blk.consumed == 0 and blk.allocated == 0 and all(c.state == "released" for c in claims)


def test_duplicate_keys_reveal_counts_is_refused_under_dp():
    r = outcomes(Q, T0, T1, {"dp": psql.DP(1.0, bounds={"total": (0, 40)}, public_groups=REGIONS),
                             "duplicate_keys": "reveal_counts"})
    assert all(isinstance(x, SqlNotSupported) and "reveal_counts" in str(x) for x in r), r


def test_renyi_block_is_charged_the_composed_curve(tmp_path):
    orders = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    l0 = _ledger(tmp_path / "0.db", 5.0, orders=orders)
    l1 = _ledger(tmp_path / "1.db", 5.0)
    k0, k1 = _dp_kw(l0, l1)
    k0["dp"] = psql.DP(1.0, 1e-6, bounds={"total": (0, 40)}, public_groups=REGIONS, ledger=l0, block="b")
    k1["dp"] = psql.DP(1.0, 1e-6, bounds={"total": (0, 40)}, public_groups=REGIONS, ledger=l1, block="b")
    r = outcomes(Q, T0, T1, k0, k1)
    assert all(isinstance(x, pd.DataFrame) for x in r), r
    blk, _ = _state(l0)
    rho = zcdp_budget(1.0, 1e-6)
    assert np.allclose(blk.consumed, rho * np.asarray(orders))  # two zCDP measurements of rho/2
    blk1, _ = _state(l1)
    assert blk1.consumed == pytest.approx(1.0)


_KILLED = textwrap.dedent(
    """
    import os, signal, sys
    import pandas as pd, numpy as np
    import pet.mpc as mpc, pet.sql as psql, pet.sql.dp as sdp
    l0, l1, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    sales = pd.DataFrame({"uid": np.arange(60), "amount": np.linspace(0.5, 30.0, 60)})
    users = pd.DataFrame({"uid": np.arange(20, 80), "region": ["eu", "us", "asia"] * 20})
    Q = ("SELECT u.region, COUNT(*) AS n, SUM(s.amount) AS total FROM sales s JOIN users u "
         "ON s.uid = u.uid GROUP BY u.region")
    if mode == "after-opening":
        sdp._after_opening_hook = lambda: os.kill(os.getpid(), signal.SIGKILL)
    def prog(session):
        dp = psql.DP(0.1, bounds={"total": (0, 40)}, public_groups={"region": ["eu", "us", "asia"]},
                     ledger=l0 if session.party == 0 else l1, block="b")
        return psql.query(session, Q, {"sales": sales} if session.party == 0 else {"users": users}, dp=dp)
    n = 0
    while True:
        mpc.run_local(prog, timeout=300)
        n += 1
        print(n, flush=True)
    """
)


def _run_victim(tmp_path, mode, kill_after=None):
    l0, l1 = _ledger(tmp_path / "0.db", 100.0), _ledger(tmp_path / "1.db", 100.0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", _KILLED, l0, l1, mode], stdout=subprocess.PIPE, text=True, env=env)
    try:
        if kill_after is not None:
            for _ in range(kill_after):
                p.stdout.readline()
            import time
            time.sleep(0.3)
            os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(timeout=300)
        p.stdout.close()
    assert p.returncode == -signal.SIGKILL
    return l0, l1


def test_kill_between_opening_and_charge_leaves_claims_allocated_and_ledgers_consistent(tmp_path):
    l0, l1 = _run_victim(tmp_path, "after-opening")
    for path in (l0, l1):
        blk, claims = _state(path)  # check(): invariants, claims add up, log replays
        assert [c.state for c in claims] == ["allocated"]
        assert blk.allocated == pytest.approx(0.1) and blk.consumed == 0  # not returned to unlocked
        assert blk.unlocked == pytest.approx(99.9)


def test_kill_at_any_point_of_repeated_queries_leaves_ledgers_consistent(tmp_path):
    l0, l1 = _run_victim(tmp_path, "loop", kill_after=2)
    for path in (l0, l1):
        blk, claims = _state(path)
        assert len(claims) >= 2
        assert all(c.state in ("allocated", "released") for c in claims)
        spent = blk.allocated + blk.consumed
        assert spent == pytest.approx(0.1 * sum(c.state == "allocated" for c in claims))
        assert blk.consumed >= 0.2 - 1e-9  # the completed queries were charged


# -- 6. the CLI end to end over TLS ----------------------------------------------------------------

def test_cli_dp_query_over_tls_charges_both_ledgers(tmp_path):
    from pet.transport import make_test_pki
    from tests.helpers import free_port, pet_process

    SALES.to_csv(tmp_path / "sales.csv", index=False)
    USERS.to_parquet(tmp_path / "users.parquet", index=False)
    l0, l1 = _ledger(tmp_path / "0.db", 2.0), _ledger(tmp_path / "1.db", 2.0)
    make_test_pki(tmp_path / "pki")
    tls = ["--tls-dir", str(tmp_path / "pki")]
    dport, pport = free_port(), free_port()
    dp = ["--epsilon", "1.5", "--delta", "1e-6", "--bound", "total=0:40", "--public-groups", "region=eu,us,asia,mars"]
    dealer = pet_process("dealer", "--listen", f"127.0.0.1:{dport}", "--wait", "60", *tls)
    p0 = pet_process("sql", "--party", "0", "--listen", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
                     "--table", f"sales={tmp_path / 'sales.csv'}", "--query", Q, "--reveal-to", "0",
                     "--output", str(tmp_path / "out.csv"), "--wait", "60", *dp,
                     "--ledger", l0, "--block", "b", *tls)
    p1 = pet_process("sql", "--party", "1", "--connect", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
                     "--table", f"users={tmp_path / 'users.parquet'}", "--query", Q, "--reveal-to", "0",
                     "--wait", "60", *dp, "--ledger", l1, "--block", "b", *tls)
    procs = [p0, p1, dealer]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert "discrete_gaussian" in outs[0][0] and "noise std" in outs[0][0]
    got = pd.read_csv(tmp_path / "out.csv")
    assert sorted(got["region"]) == ["asia", "eu", "mars", "us"]
    for path in (l0, l1):
        blk, _ = _state(path)
        assert blk.consumed == pytest.approx(1.5)
    # a second run does not fit either ledger: both refuse, nothing more is charged
    p0 = pet_process("sql", "--party", "0", "--listen", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
                     "--table", f"sales={tmp_path / 'sales.csv'}", "--query", Q, "--reveal-to", "0",
                     "--output", str(tmp_path / "out2.csv"), "--wait", "60", *dp,
                     "--ledger", l0, "--block", "b", *tls)
    p1 = pet_process("sql", "--party", "1", "--connect", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
                     "--table", f"users={tmp_path / 'users.parquet'}", "--query", Q, "--reveal-to", "0",
                     "--wait", "60", *dp, "--ledger", l1, "--block", "b", *tls)
    dealer = pet_process("dealer", "--listen", f"127.0.0.1:{dport}", "--wait", "60", *tls)
    procs = [p0, p1, dealer]
    try:
        outs = [p.communicate(timeout=240) for p in procs[:2]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs[:2]] != [0, 0], outs
    assert "cannot cover" in outs[0][1] and not (tmp_path / "out2.csv").exists()
    for path in (l0, l1):
        blk, _ = _state(path)
        assert blk.consumed == pytest.approx(1.5) and blk.allocated == 0


def test_cli_rejects_bad_bound_spec(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pet", "sql", "--party", "0", "--listen", "127.0.0.1:1",
                          "--dealer", "127.0.0.1:2", "--table", "a=b.csv", "--query", Q, "--epsilon", "1",
                          "--bound", "total=0-4", "--output", str(tmp_path / "o.csv")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "COLUMN=LO:HI" in out.stderr
