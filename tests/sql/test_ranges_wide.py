"""The wide ring in secure SQL (issue 21 item 2): values the 64-bit ring cannot hold are
computed in Z_2^128 (pet.mpc.ring128) and match DuckDB; queries that fit keep the 64-bit
plan; values no ring holds are refused with PrecisionError at both parties.

Criterion as in test_ranges.py: |got - exact| <= 1e-6 * bound, the bound computed here
from the plaintext data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pet.mpc as mpc
import pet.sql as psql
from pet.errors import PrecisionError
from tests.sql.helpers import oracle


def run(sql, t0, t1, correlations="dealer", **kw):
    def prog(session):
        try:
            return psql.query(session, sql, t0 if session.party == 0 else t1, **kw)
        except Exception as exc:  # noqa: BLE001 - the outcome is the point
            return exc
    return mpc.run_local(prog, timeout=600, correlations=correlations)


def _close(got, want, rtol):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), rtol=rtol)


def _money(n):
    i = np.arange(n)
    a = pd.DataFrame({"id": i, "x": 1e9 + (i % 997) * 1337.25, "z": 1e5 - (i % 13) * 3.5})
    b = pd.DataFrame({"id": i, "y": 2e9 - (i % 991) * 10101.5, "g": i % 4})
    return a, b


@pytest.mark.parametrize("source", ["dealer", "ot"])
def test_sum_of_products_beyond_64_bits(source):
    """1e9 x 2e9 per row (2^61) summed over 1,500 rows (2^72): wrapped or refused before."""
    a, b = _money(1500)
    sql = ("select b.g, sum(a.x * b.y) s, avg(a.x * b.y) av, count(*) c from ta a join tb b on a.id = b.id "
           "group by b.g order by b.g")
    want = oracle(sql, {"ta": a}, {"tb": b})
    r = run(sql, {"ta": a}, {"tb": b}, correlations=source)
    for got in r:
        assert not isinstance(got, Exception), got
        assert got.attrs["pet_sql"]["ring_bits"] == 128
        assert list(got["g"]) == list(want["g"]) and list(got["c"]) == list(want["c"])
        _close(got["s"], want["s"], 1e-9)
        _close(got["av"], want["av"], 1e-9)


def test_global_sum_avg_having_and_three_factors():
    a, b = _money(2000)
    sql = ("select sum(a.x * b.y) s, avg(a.x * b.y) av, sum(a.x * b.y * a.z) s3, sum(a.x * b.y) - sum(a.x) d "
           "from ta a join tb b on a.id = b.id")
    want = oracle(sql, {"ta": a}, {"tb": b})
    for got in run(sql, {"ta": a}, {"tb": b}):
        assert not isinstance(got, Exception), got
        for c in ("s", "av", "s3", "d"):
            _close(got[c], want[c], 1e-9)
    sums = sorted((a["x"] * b["y"]).groupby(b["g"]).sum())
    thr = (sums[1] + sums[2]) / 2  # between the second and third group's sums (~1e21)
    sql = ("select b.g, sum(a.x * b.y) s from ta a join tb b on a.id = b.id group by b.g "
           f"having sum(a.x * b.y) > {thr!r} order by b.g")
    want = oracle(sql, {"ta": a}, {"tb": b})
    assert len(want) == 2
    for got in run(sql, {"ta": a}, {"tb": b}, reveal_to=0)[:1]:
        assert list(got["g"]) == list(want["g"])
        _close(got["s"], want["s"], 1e-9)


def test_query_that_fits_keeps_the_64_bit_ring():
    i = np.arange(400)
    s = pd.DataFrame({"uid": i, "amount": 43000.0 + (i % 7) * 0.25})
    u = pd.DataFrame({"uid": i, "income": 120000.0 + (i % 5) * 1000.5, "seg": i % 3})
    sql = "SELECT u.seg, SUM(s.amount * u.income) AS t FROM s JOIN u ON s.uid = u.uid GROUP BY u.seg"
    for got in run(sql, {"s": s}, {"u": u}):
        assert got.attrs["pet_sql"]["ring_bits"] == 64


def test_values_no_ring_holds_are_refused():
    a = pd.DataFrame({"id": [1, 2, 3], "x": [1e15, -2e15, 3.5e14], "z": [1e15, 1e15, 2e15]})
    b = pd.DataFrame({"id": [1, 2, 3], "y": [1e15, 7e14, -1e15]})
    for sql in ("select sum(a.x * b.y * a.z) s from ta a join tb b on a.id = b.id",
                "select sum(a.x * b.y) s from ta a join tb b on a.id = b.id",
                "select max(a.x * b.y) m from ta a join tb b on a.id = b.id"):
        r = run(sql, {"ta": a}, {"tb": b})
        for e in r:
            assert isinstance(e, PrecisionError), e
            assert "2^" in str(e) and '"a"."x" * "b"."y"' in str(e)


MAGS = st.sampled_from([1e-3, 0.5, 37.0, 4.3e4, 1.2e5, 1e6, 1e9, 3e10, 1e13, 1e15])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(ma=MAGS, mb=MAGS, mc=MAGS, n=st.integers(1, 300), seed=st.integers(0, 2 ** 32 - 1), mixed=st.booleans())
def test_random_magnitudes_wide_right_or_refused(ma, mb, mc, n, seed, mixed):
    """Magnitudes 1e-3 .. 1e15, mixed signs, products of two and three factors: every
    result within 1e-6 of its bound of DuckDB's, or PrecisionError at both parties."""
    rng = np.random.default_rng(seed)
    sign = (lambda k: rng.choice([-1.0, 1.0], k)) if mixed else (lambda k: np.ones(k))
    a = pd.DataFrame({"id": np.arange(n), "x": ma * rng.uniform(0.1, 1, n) * sign(n),
                      "z": mc * rng.uniform(0.1, 1, n) * sign(n)})
    b = pd.DataFrame({"id": np.arange(n), "y": mb * rng.uniform(0.1, 1, n) * sign(n), "g": np.arange(n) % 2})
    sql = ("select b.g, sum(a.x * b.y) sp, sum(a.x * b.y * a.z) s3, sum(a.x + b.y) ss, avg(a.x * b.y) ap, "
           "count(*) c from ta a join tb b on a.id = b.id group by b.g")
    r = run(sql, {"ta": a}, {"tb": b})
    if isinstance(r[0], Exception) or isinstance(r[1], Exception):
        assert isinstance(r[0], PrecisionError) and isinstance(r[1], PrecisionError), r
        return
    want = oracle(sql, {"ta": a}, {"tb": b}).sort_values("g").reset_index(drop=True)
    A, B, C = a["x"].abs().max(), b["y"].abs().max(), a["z"].abs().max()
    for got in r:
        got = got.sort_values("g").reset_index(drop=True)
        for gw, gg in zip(want.itertuples(), got.itertuples()):
            assert gg.c == gw.c
            assert abs(gg.sp - gw.sp) <= 1e-6 * max(abs(gw.sp), gw.c * A * B)
            assert abs(gg.s3 - gw.s3) <= 1e-6 * max(abs(gw.s3), gw.c * A * B * C)
            assert abs(gg.ss - gw.ss) <= 1e-6 * max(abs(gw.ss), gw.c * (A + B))
            assert abs(gg.ap - gw.ap) <= 1e-6 * max(abs(gw.ap), A * B)


def test_row_level_where_and_output_comparisons_in_the_wide_ring():
    n = 50
    i = np.arange(n)
    a = pd.DataFrame({"id": i, "x": 1e12 + i * 1e9})
    b = pd.DataFrame({"id": i, "y": 2e12 - i * 3e9, "g": i % 3})
    t0, t1 = {"ta": a}, {"tb": b}
    sql = "select a.id, a.x * b.y p from ta a join tb b on a.id = b.id order by a.id"
    want = oracle(sql, t0, t1)
    for got in run(sql, t0, t1):
        assert got.attrs["pet_sql"]["ring_bits"] == 128
        _close(got["p"], want["p"], 1e-9)
    sql = ("select b.g, count(*) c, sum(a.x) s, sum(a.x * b.y) > 3.3e25 big from ta a join tb b on a.id = b.id "
           "where a.x * b.y > 1.99e24 group by b.g order by b.g")
    want = oracle(sql, t0, t1)
    assert 0 < want["c"].sum() < n
    for got in run(sql, t0, t1):
        assert list(got["g"]) == list(want["g"]) and list(got["c"]) == list(want["c"])
        assert list(got["big"]) == list(want["big"])
        _close(got["s"], want["s"], 1e-9)
