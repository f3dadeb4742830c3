"""Numbers you can trust (issue 21): range analysis picks a representation for every value
entering MPC; a result is within the stated criterion of DuckDB's exact answer or the
query is refused with PrecisionError at both parties -- never a wrapped value.

Criterion (docs/sql.md "Precision and ranges"): |got - exact| <= 1e-6 * bound, where the
bound is computed here independently from the plaintext data (max |column| over the
joined rows, propagated: |a*b| <= A*B, |a+b| <= A+B, SUM <= rows * row bound)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pet.mpc as mpc
import pet.sql as psql
from pet.errors import PrecisionError
from tests.sql.helpers import oracle, run_both


def both_outcomes(sql, t0, t1, **kw):
    def prog(session):
        try:
            return psql.query(session, sql, t0 if session.party == 0 else t1, **kw)
        except Exception as exc:  # noqa: BLE001 - the outcome is the point
            return exc
    return mpc.run_local(prog, timeout=300)


def test_money_times_income_is_right_not_wrapped():
    """The issue's query: 43,000 x 120,000 per row is ~2^32.3 -- it wrapped by 2^32 before."""
    n = 400
    i = np.arange(n)
    s = pd.DataFrame({"uid": i, "amount": 43000.0 + (i % 7) * 0.25})
    u = pd.DataFrame({"uid": i, "income": 120000.0 + (i % 5) * 1000.5, "seg": i % 3})
    sql = ("SELECT u.seg, SUM(s.amount * u.income) AS t, MAX(s.amount * u.income) AS m, COUNT(*) AS n "
           "FROM s JOIN u ON s.uid = u.uid GROUP BY u.seg ORDER BY u.seg")
    want = oracle(sql, {"s": s}, {"u": u})
    for got in run_both(sql, {"s": s}, {"u": u}):
        assert list(got["seg"]) == list(want["seg"])
        np.testing.assert_allclose(got["t"].to_numpy(float), want["t"].to_numpy(float), rtol=1e-9)
        np.testing.assert_allclose(got["m"].to_numpy(float), want["m"].to_numpy(float), rtol=1e-9)
        assert list(got["n"]) == list(want["n"])
        assert got.attrs["pet_sql"]["magnitude_classes"] == {'"s"."amount"': 16, '"u"."income"': 17}


def test_values_no_ring_holds_are_refused_at_both_parties():
    a = pd.DataFrame({"id": [1, 2, 3], "x": [1e15, -2e15, 3.5e14]})
    b = pd.DataFrame({"id": [1, 2, 3], "y": [1e15, 7e14, -1e15]})
    sql = "select sum(a.x * b.y) s from ta a join tb b on a.id = b.id"
    r = both_outcomes(sql, {"ta": a}, {"tb": b})
    for e in r:
        assert isinstance(e, PrecisionError), e
        assert '"a"."x" * "b"."y"' in str(e) and "2^" in str(e)


def test_declared_bounds_replace_the_exchange():
    a = pd.DataFrame({"id": [1, 2], "x": [3.0, 4.0]})
    b = pd.DataFrame({"id": [1, 2], "y": [5.0, 6.0]})
    sql = "select sum(a.x * b.y) s from ta a join tb b on a.id = b.id"
    bounds = {"ta.x": (0, 10), "tb.y": (0, 1000)}
    r = run_both(sql, {"ta": a}, {"tb": b}, bounds=bounds)
    assert r[0]["s"][0] == pytest.approx(39.0)
    assert r[0].attrs["pet_sql"]["magnitude_classes"] == {'"a"."x"': 4, '"b"."y"': 10}
    bad = both_outcomes(sql, {"ta": a}, {"tb": b}, bounds={"ta.x": (0, 1), "tb.y": (0, 10)})
    assert all(isinstance(e, Exception) for e in bad)


def _bound(df, cols):
    return float(np.prod([df[c].abs().max() for c in cols])) if len(df) else 0.0


MAGS = st.sampled_from([1e-3, 0.5, 1.0, 37.0, 1e3, 4.3e4, 1.2e5, 1e6, 1e9, 1e13, 1e15])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(ma=MAGS, mb=MAGS, n=st.integers(1, 40), seed=st.integers(0, 2 ** 32 - 1), mixed=st.booleans())
def test_random_magnitudes_right_or_refused(ma, mb, n, seed, mixed):
    rng = np.random.default_rng(seed)
    sign = (lambda k: rng.choice([-1.0, 1.0], k)) if mixed else (lambda k: np.ones(k))
    a = pd.DataFrame({"id": np.arange(n), "x": ma * rng.uniform(0.1, 1, n) * sign(n)})
    b = pd.DataFrame({"id": np.arange(n), "y": mb * rng.uniform(0.1, 1, n) * sign(n), "g": np.arange(n) % 2})
    sql = ("select b.g, sum(a.x * b.y) sp, sum(a.x + b.y) ss, max(a.x - b.y) mx, count(*) c "
           "from ta a join tb b on a.id = b.id group by b.g")
    r = both_outcomes(sql, {"ta": a}, {"tb": b})
    if isinstance(r[0], Exception) or isinstance(r[1], Exception):
        assert isinstance(r[0], PrecisionError) and isinstance(r[1], PrecisionError), r
        return
    want = oracle(sql, {"ta": a}, {"tb": b}).sort_values("g").reset_index(drop=True)
    A, B = a["x"].abs().max(), b["y"].abs().max()
    for got in r:
        got = got.sort_values("g").reset_index(drop=True)
        for _, (gw, gg) in enumerate(zip(want.itertuples(), got.itertuples())):
            assert gg.c == gw.c and isinstance(gg.c, (int, np.integer))
            assert abs(gg.sp - gw.sp) <= 1e-6 * max(abs(gw.sp), gw.c * A * B)
            assert abs(gg.ss - gw.ss) <= 1e-6 * max(abs(gw.ss), gw.c * (A + B))
            assert abs(gg.mx - gw.mx) <= 1e-6 * max(abs(gw.mx), A + B)


def test_large_join_sum_of_products_to_1e13():
    """Held-out style: cross-party products up to ~1e13 summed over 20,000 rows."""
    n = 20000
    i = np.arange(n)
    a = pd.DataFrame({"id": i, "x": 1e6 + (i % 997) * 13.37})
    b = pd.DataFrame({"id": i, "y": 1e7 - (i % 991) * 101.5, "g": i % 4})
    sql = "select b.g, sum(a.x * b.y) s from ta a join tb b on a.id = b.id group by b.g"
    want = oracle(sql, {"ta": a}, {"tb": b}).sort_values("g").reset_index(drop=True)
    got = run_both(sql, {"ta": a}, {"tb": b}, reveal_to=0)[0].sort_values("g").reset_index(drop=True)
    np.testing.assert_allclose(got["s"].to_numpy(float), want["s"].to_numpy(float), rtol=1e-6)


def test_mpc_mul_check_range():
    def prog(session):
        x = session.share(np.array([1e6]) if session.party == 0 else None, owner=0)
        y = session.share(np.array([2e6]) if session.party == 1 else None, owner=1)
        try:
            mpc.mul(x, y, check_range=True, bounds=(2e6, 4e6))
        except PrecisionError as exc:
            return str(exc)
        return None
    r = mpc.run_local(prog, timeout=60)
    assert all(m is not None and "2^" in m for m in r)


def test_decimal_sums_are_exact_to_the_cent(tmp_path):
    from decimal import Decimal

    import duckdb

    n = 3000
    prices = [f"{(k * 7919) % 100000}.{(k * 31) % 100:02d}" for k in range(n)]
    path = str(tmp_path / "a.parquet")
    con = duckdb.connect()
    con.execute("create table a as select unnest(?::BIGINT[]) id, unnest(?::VARCHAR[])::DECIMAL(18,2) price",
                [list(range(n)), prices])
    con.execute(f"copy a to '{path}' (format parquet)")
    i = np.arange(n)
    b = pd.DataFrame({"id": i, "g": i % 3, "w": (i % 5) * 1.0})
    sql = ("select b.g, sum(a.price) s, min(a.price) mn, max(a.price) mx from ta a join tb b on a.id = b.id "
           "where a.price > 0 group by b.g order by b.g")
    exact, lo, hi = {}, {}, {}
    for k, p in enumerate(prices):
        d = Decimal(p)
        if d > 0:
            g = k % 3
            exact[g] = exact.get(g, Decimal(0)) + d
            lo[g] = min(lo.get(g, d), d)
            hi[g] = max(hi.get(g, d), d)
    for got in run_both(sql, {"ta": path}, {"tb": b}):
        for g, s, mn, mx in zip(got["g"], got["s"], got["mn"], got["mx"]):
            assert repr(float(s)) == str(exact[g]).rstrip("0").rstrip(".") or Decimal(repr(float(s))) == exact[g]
            assert Decimal(repr(float(mn))) == lo[g] and Decimal(repr(float(mx))) == hi[g]
    sql2 = "select b.g, sum(a.price * b.w) sw from ta a join tb b on a.id = b.id group by b.g order by b.g"
    con.register("tb", b)
    con.execute(f"create view ta as select * from read_parquet('{path}')")
    want2 = con.execute(sql2).df()
    got2 = run_both(sql2, {"ta": path}, {"tb": b}, reveal_to=0)[0]
    np.testing.assert_allclose(got2["sw"].to_numpy(float), want2["sw"].to_numpy(float), rtol=1e-6)


def test_benchmark_query_still_plans_and_matches():
    """benchmarks/test_sql.py's query and data generator, at 2,000 rows per side."""
    n = 2000
    i = np.arange(n, dtype=np.int64)
    sales = pd.DataFrame({"id": i, "amount": ((i * 7919) % 10000) / 100.0})
    ids = i + n // 2
    users = pd.DataFrame({"id": ids, "w": ((ids * 104729) % 1000) / 100.0, "g": ids % 10})
    sql = ("SELECT u.g, SUM(s.amount * u.w) AS total, AVG(s.amount + u.w) AS mean, "
           "MAX(s.amount - u.w) AS top FROM sales s JOIN users u ON s.id = u.id GROUP BY u.g")
    want = oracle(sql, {"sales": sales}, {"users": users}).sort_values("g").reset_index(drop=True)
    got = run_both(sql, {"sales": sales}, {"users": users}, reveal_to=0)[0].sort_values("g").reset_index(drop=True)
    for c in ("total", "mean", "top"):
        np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-6)
