"""One party's WHERE under differential privacy: evaluated by its owner on the joined rows
and folded into the MPC mask, never applied before the PSI -- the joined row count both
parties see is the unfiltered intersection, and what each party receives does not depend
on how many rows pass the filter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pet.mpc as mpc
import pet.sql as psql
from pet.sql.plan import build_plan
from tests.sql.helpers import oracle

IDS_A = np.arange(40)
IDS_B = np.arange(20, 60)            # intersection: ids 20..39, 20 rows
REGIONS = ["eu", "us", "asia"]
B = pd.DataFrame({"id": IDS_B, "w": np.linspace(0.0, 1.0, 40), "region": (REGIONS * 14)[:40],
                  "y": np.linspace(-2.0, 2.0, 40)})
Q_COUNT = "SELECT COUNT(*) AS n FROM a JOIN b ON a.id = b.id WHERE a.diag = 'X'"
Q_GROUPS = ("SELECT b.region, COUNT(*) AS n, SUM(b.w) AS s FROM a JOIN b ON a.id = b.id "
            "WHERE a.diag = 'X' AND b.w < 0.9 GROUP BY b.region")


def _a(passing):
    """Party 0's table: the same ids, ``passing`` (a boolean per row) says which rows have
    diag 'X'."""
    return pd.DataFrame({"id": IDS_A, "diag": np.where(passing, "X", "Y"), "v": np.arange(40.0)})


def _run(sql, a, b, repeat=1, **kw):
    """Per party: (results, bytes received, messages received, pet_sql attrs)."""
    def prog(session):
        out = []
        before = session.channel.stats.snapshot()
        for _ in range(repeat):
            out.append(psql.query(session, sql, {"a": a} if session.party == 0 else {"b": b}, **kw))
        st = session.channel.stats.snapshot() - before
        return out, st.bytes_received, st.messages_received
    return mpc.run_local(prog, timeout=300)


A_ALL, A_NONE, A_SOME = _a(np.ones(40, bool)), _a(np.zeros(40, bool)), _a(IDS_A % 3 == 0)


@pytest.mark.parametrize("sql, dp", [
    (Q_COUNT, psql.DP(1.0)),
    (Q_GROUPS, psql.DP(1.0, bounds={"s": (0, 1)}, public_groups={"region": REGIONS})),
])
def test_joined_rows_and_traffic_do_not_depend_on_a_one_party_where(sql, dp):
    runs = [_run(sql, a, B, dp=dp) for a in (A_ALL, A_NONE, A_SOME)]
    for run in runs:
        for res, _, _ in run:
            info = res[0].attrs["pet_sql"]
            # the size both parties see is the unfiltered intersection (PSI leakage), not
            # the filtered count (20, 0 or 7 rows): before the fix it was the filtered count
            assert info["joined_rows"] == 20 and info["intersection"] == 20
    for p in (0, 1):  # each party receives the same number of bytes and messages
        assert len({(run[p][1], run[p][2]) for run in runs}) == 1, [(run[p][1], run[p][2]) for run in runs]


def test_without_dp_the_plan_and_its_leakage_are_unchanged():
    schemas = [{"a": [["id", "BIGINT"], ["diag", "VARCHAR"], ["v", "DOUBLE"]]},
               {"b": [["id", "BIGINT"], ["w", "DOUBLE"], ["region", "VARCHAR"], ["y", "DOUBLE"]]}]
    exact = build_plan(Q_GROUPS, schemas)
    assert exact.own_filters == {} and "'X'" in exact.local_sql[0] and "0.9" in exact.local_sql[1]
    private = build_plan(Q_GROUPS, schemas, dp=True)
    assert sorted(private.own_filters) == [0, 1]
    for p in (0, 1):  # the condition is a column of the owner's query, not its WHERE
        where = private.local_sql[p].split(" WHERE ")[1]
        assert "'X'" not in where and "0.9" not in where
        assert private.columns[private.own_filters[p]].kind == "bool"
    # the exact query's joined row count is the filtered one, as documented
    res = _run(Q_COUNT, A_SOME, B)
    assert res[0][0][0].attrs["pet_sql"]["joined_rows"] == int((np.arange(20, 40) % 3 == 0).sum())


def _standardized(got, want, std):
    return (np.asarray(got, np.float64) - np.asarray(want, np.float64)) / std


def test_dp_results_with_filters_at_both_parties_match_duckdb_in_distribution():
    """Repeated noisy releases against DuckDB's exact answer: the errors, divided by the
    reported noise std, have mean ~0 and variance ~1 (one-party filters at both parties
    and a cross-party condition)."""
    sql = ("SELECT b.region, COUNT(*) AS n, SUM(a.v * b.y) AS s FROM a JOIN b ON a.id = b.id "
           "WHERE a.diag = 'X' AND b.w < 0.8 AND a.v > b.y GROUP BY b.region")
    # epsilon 1: each party's noise is a discrete Laplace of scale 2 (counts) -- spread
    # enough for the variance test (the sum of both parties' noise has excess kurtosis 1.5,
    # so the sample variance of 128 draws has a std of about 0.17)
    dp = psql.DP(1.0, bounds={"s": (-100, 100)}, public_groups={"region": REGIONS + ["mars"]})
    runs = _run(sql, A_SOME, B, repeat=16, dp=dp)
    want = oracle(sql, {"a": A_SOME}, {"b": B}).set_index("region")
    z = []
    for res in runs[0][0]:
        std = res.attrs["dp"]["noise_std"]
        got = res.set_index("region")
        for region in REGIONS + ["mars"]:
            exact = want.loc[region] if region in want.index else pd.Series({"n": 0, "s": 0.0})
            z.append(_standardized(got.loc[region, "n"], exact["n"], std["n"]))
            z.append(_standardized(got.loc[region, "s"], exact["s"], std["s"]))
    z = np.asarray(z)  # 128 standardized errors
    assert abs(z.mean()) < 4 / np.sqrt(len(z)), z.mean()
    assert 0.5 < z.var() < 1.6, z.var()
    assert [len(r[0]) for r in runs] == [16, 16]


BIG_EPS = 4000.0  # noise std ~ 1e-3 of a count unit: the exact filtered result is visible


def test_nulls_and_non_finite_values_in_dropped_rows_do_not_fail_the_query():
    x = np.where(IDS_A % 2 == 0, np.arange(40.0), np.nan)            # NULL where the row is dropped
    a = pd.DataFrame({"id": IDS_A, "x": x, "d": np.where(IDS_A % 2 == 0, 2.0, 0.0),
                      "z": np.where(IDS_A % 4 == 0, np.nan, 5.0)})
    sql = ("SELECT COUNT(*) AS n, SUM(a.x * b.w / a.d) AS s FROM a JOIN b ON a.id = b.id "
           "WHERE a.x IS NOT NULL AND a.d <> 0 AND a.z > 3")        # z NULL: the condition is NULL, dropped
    res = _run(sql, a, B, dp=psql.DP(BIG_EPS, bounds={"s": (0, 40)}))
    want = oracle(sql, {"a": a}, {"b": B})
    for r, _, _ in res:
        std = r[0].attrs["dp"]["noise_std"]
        assert r[0]["n"][0] == pytest.approx(want["n"][0], abs=0.5)
        assert r[0]["s"][0] == pytest.approx(want["s"][0], abs=6 * std["s"])
        assert r[0].attrs["pet_sql"]["joined_rows"] == 20


def test_data_derived_groups_with_a_one_party_where():
    """delta > 0 without public groups: the candidates come from all joined rows, the filter
    enters the selection count in MPC; large groups are released with the filtered values."""
    a = pd.DataFrame({"id": IDS_A, "k": np.where(IDS_A < 30, "lo", "hi"), "v": np.ones(40)})
    b = B.assign(region=np.where(IDS_B < 35, "r1", "r2"))
    sql = ("SELECT a.k, COUNT(*) AS n FROM a JOIN b ON a.id = b.id WHERE b.region = 'r1' GROUP BY a.k")
    res = _run(sql, a, b, dp=psql.DP(BIG_EPS, 1e-6))
    want = oracle(sql, {"a": a}, {"b": b}).sort_values("k").reset_index(drop=True)
    for r, _, _ in res:
        got = r[0].sort_values("k").reset_index(drop=True)
        assert list(got["k"]) == list(want["k"]) == ["hi", "lo"]   # ids 30..34 and 20..29
        assert np.allclose(got["n"].astype(float), want["n"].astype(float), atol=0.5)
        assert r[0].attrs["pet_sql"]["joined_rows"] == 20
