"""DP SQL without a dealer (correlations="ot", exactly two parties): the same releases and
the same noise distributions as with the dealer, and `pet sql --no-dealer --epsilon` as two
OS processes charging both ledgers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pet.dp as pdp
import pet.mpc as mpc
import pet.sql as psql
from tests.sql.helpers import oracle


def run(sql, t0, t1, correlations, **kw):
    def prog(session):
        return psql.query(session, sql, t0 if session.party == 0 else t1, **kw)
    return mpc.run_local(prog, timeout=600, correlations=correlations)


G = 150
USERS = pd.DataFrame({"uid": np.arange(2 * G), "g": np.arange(2 * G) % G, "w": np.linspace(-1, 1, 2 * G)})
SALES = pd.DataFrame({"uid": np.arange(2 * G), "x": np.linspace(-3, 3, 2 * G)})
T0, T1 = {"sales": SALES}, {"users": USERS}
SQL = "SELECT u.g, COUNT(*) AS n, SUM(s.x) AS t FROM sales s JOIN users u ON s.uid = u.uid GROUP BY u.g"
EXACT = oracle("SELECT u.g, COUNT(*) AS n, SUM(GREATEST(LEAST(s.x, 2), -2)) AS t FROM sales s "
               "JOIN users u ON s.uid = u.uid GROUP BY u.g", T0, T1).set_index("g")


def _noise(correlations, queries, **dp_kw):
    dn, dt, attrs = [], [], None
    for _ in range(queries):
        dp = psql.DP(**dp_kw, bounds={"t": (-2, 2)}, public_groups={"g": list(range(G))})
        got = run(SQL, T0, T1, correlations, dp=dp, reveal_to=0)[0].set_index("g").reindex(EXACT.index)
        dn.append((got["n"] - EXACT["n"]).to_numpy(np.float64))
        dt.append((got["t"] - EXACT["t"]).to_numpy(np.float64))
        attrs = got.attrs["dp"]
    return np.concatenate(dn), np.concatenate(dt), attrs


def _dlap_pmf(t, support):
    q = math.exp(-1.0 / t)
    return (1 - q) / (1 + q) * q ** np.abs(support)


def test_dealer_free_laplace_noise_has_the_reported_distribution_and_matches_the_dealer():
    dn, dt, a = _noise("ot", 2, epsilon=1.0)
    dn_d, dt_d, a_d = _noise("dealer", 2, epsilon=1.0)
    assert a["noise_std"] == a_d["noise_std"]
    for d, std in ((dn, a["noise_std"]["n"]), (dt, a["noise_std"]["t"])):
        assert abs(d.mean()) < 5 * std / math.sqrt(len(d))
        assert d.std() == pytest.approx(std, rel=0.2)
    # the count's noise: chi-square against the exact pmf of DLap(2) + DLap(2)
    support = np.arange(-60, 61)
    pmf = np.convolve(_dlap_pmf(2.0, support), _dlap_pmf(2.0, support))[60:-60]
    inner = np.arange(-7, 8)
    expected = np.array([pmf[support <= -8].sum()] + [pmf[support == k][0] for k in inner] + [pmf[support >= 8].sum()])
    observed = np.array([(dn <= -8).sum()] + [(dn == k).sum() for k in inner] + [(dn >= 8).sum()])
    assert stats.chisquare(observed, expected / expected.sum() * len(dn)).pvalue > 1e-4
    # the same distribution as with the dealer (two-sample KS on both columns)
    assert stats.ks_2samp(dt, dt_d).pvalue > 1e-4
    assert stats.ks_2samp(dn, dn_d).pvalue > 1e-4


def test_dealer_free_gaussian_noise_has_the_reported_std():
    dn, dt, a = _noise("ot", 2, epsilon=1.0, delta=1e-6)
    assert a["mechanism"] == "discrete_gaussian"
    for d, std in ((dn, a["noise_std"]["n"]), (dt, a["noise_std"]["t"])):
        assert abs(d.mean()) < 5 * std / math.sqrt(len(d))
        assert d.std() == pytest.approx(std, rel=0.2)
    assert stats.kstest(dt / a["noise_std"]["t"], "norm").pvalue > 1e-4


@pytest.mark.parametrize("correlations", ["ot", "dealer"])
def test_data_derived_groups_with_a_cross_party_mask_match_duckdb(correlations):
    users = USERS.assign(k=np.where(np.arange(2 * G) < 8, "rare", np.where(np.arange(2 * G) % 2, "odd", "even")))
    sql = ("SELECT u.k, COUNT(*) AS n, SUM(s.x) AS t FROM sales s JOIN users u ON s.uid = u.uid "
           "WHERE s.x > u.w GROUP BY u.k")
    r = run(sql, T0, {"users": users}, correlations, dp=psql.DP(4000.0, 1e-6, bounds={"t": (-2, 2)}))
    want = oracle(sql.replace("SUM(s.x)", "SUM(GREATEST(LEAST(s.x, 2), -2))"), T0, {"users": users})
    want = want[want["n"] >= 2].sort_values("k").reset_index(drop=True)
    for got in r:
        got = got.sort_values("k").reset_index(drop=True)
        assert list(got["k"]) == list(want["k"])
        assert np.allclose(got["n"], want["n"], atol=0.5)
        assert np.allclose(got["t"], want["t"], atol=6 * got.attrs["dp"]["noise_std"]["t"])
    pd.testing.assert_frame_equal(r[0].sort_values("k").reset_index(drop=True),
                                  r[1].sort_values("k").reset_index(drop=True))


def test_cli_no_dealer_dp_query_charges_both_ledgers(tmp_path):
    from tests.helpers import free_port, pet_process

    sales = pd.DataFrame({"uid": np.arange(120), "amount": np.linspace(0.5, 30.0, 120)})
    users = pd.DataFrame({"uid": np.arange(120), "region": ["eu"] * 70 + ["us"] * 45 + ["x1", "x2", "x3", "x4", "x5"]})
    sales.to_csv(tmp_path / "sales.csv", index=False)
    users.to_parquet(tmp_path / "users.parquet", index=False)
    ledgers = []
    for p in (0, 1):
        path = str(tmp_path / f"{p}.db")
        with pdp.BudgetLedger(path) as led:
            led.add_block("b", 10.0, 1e-5)
        ledgers.append(path)
    sql = ("SELECT u.region, COUNT(*) AS n, SUM(s.amount) AS total FROM sales s JOIN users u ON s.uid = u.uid "
           "GROUP BY u.region")
    dp = ["--epsilon", "4", "--delta", "1e-6", "--bound", "total=0:40"]  # no --public-groups: data-derived
    pport = free_port()
    p0 = pet_process("sql", "--party", "0", "--listen", f"127.0.0.1:{pport}", "--no-dealer",
                     "--table", f"sales={tmp_path / 'sales.csv'}", "--query", sql, "--output",
                     str(tmp_path / "out0.csv"), "--wait", "60", *dp, "--ledger", ledgers[0], "--block", "b")
    p1 = pet_process("sql", "--party", "1", "--connect", f"127.0.0.1:{pport}", "--no-dealer",
                     "--table", f"users={tmp_path / 'users.parquet'}", "--query", sql, "--output",
                     str(tmp_path / "out1.csv"), "--wait", "60", *dp, "--ledger", ledgers[1], "--block", "b")
    procs = [p0, p1]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "discrete_gaussian" in outs[0][0] and "noise std" in outs[0][0]
    got = [pd.read_csv(tmp_path / f"out{p}.csv").sort_values("region").reset_index(drop=True) for p in (0, 1)]
    pd.testing.assert_frame_equal(got[0], got[1])
    # eu (70) and us (45) are far above the threshold (18 at this epsilon); the one-row groups
    # are released with probability below delta
    assert list(got[0]["region"]) == ["eu", "us"]
    assert np.allclose(got[0]["n"], [70, 45], atol=25)  # noise std ~4
    for path in ledgers:
        with pdp.BudgetLedger(path) as led:
            led.check()
            blk = led.block("b")
        assert blk.consumed == pytest.approx(4.0) and blk.allocated == 0
