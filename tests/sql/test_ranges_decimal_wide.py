"""DECIMAL columns in the wide ring (issue 21 items 2 and 4): SUM of DECIMAL(18,2) money
times a DECIMAL(18,2) income is an exact scaled integer (10^-4) too large for the 64-bit
ring; it is computed in Z_2^128 and matches DuckDB's exact DECIMAL(38,4) result (as the
nearest float64, which is how pet returns it); sums that fit stay in 64 bits; products no
ring holds are refused at both parties."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

import pet.mpc as mpc
import pet.sql as psql
from pet.errors import PrecisionError


def _tables(tmp_path, n, money, income):
    con = duckdb.connect()
    con.execute("create table a as select unnest(?::BIGINT[]) id, unnest(?::VARCHAR[])::DECIMAL(18,2) money",
                [list(range(n)), money])
    con.execute("create table b as select unnest(?::BIGINT[]) id, unnest(?::VARCHAR[])::DECIMAL(18,2) income, "
                "unnest(?::BIGINT[]) g", [list(range(n)), income, [k % 3 for k in range(n)]])
    pa, pb = str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")
    con.execute(f"copy a to '{pa}' (format parquet)")
    con.execute(f"copy b to '{pb}' (format parquet)")
    return con, pa, pb


def _run(sql, pa, pb, correlations="dealer"):
    def prog(session):
        try:
            return psql.query(session, sql, {"ta": pa} if session.party == 0 else {"tb": pb})
        except Exception as exc:  # noqa: BLE001 - the outcome is the point
            return exc
    return mpc.run_local(prog, timeout=600, correlations=correlations)


def _exact(con, sql):
    return con.execute(sql.replace(" ta ", " a ").replace(" tb ", " b ")).fetchall()


@pytest.mark.parametrize("source", ["dealer", "ot"])
def test_sum_of_decimal_products_needs_wide_ring_and_is_exact(tmp_path, source):
    n = 3000
    # money up to 1e7 (2^30 cents), income 5e4..2e5: each product up to ~2^54 in units of
    # 10^-4, a group's sum of 1,000 of them above 2^61: beyond the 64-bit ring's width
    money = [f"{(k * 7919) % 10000000}.{(k * 31) % 100:02d}" for k in range(n)]
    income = [f"{50000 + (k * 104729) % 150000}.{(k * 17) % 100:02d}" for k in range(n)]
    con, pa, pb = _tables(tmp_path, n, money, income)
    sql = ("select b.g, sum(a.money * b.income) s, sum(a.money) m, count(*) c from ta a join tb b "
           "on a.id = b.id group by b.g order by b.g")
    want = _exact(con, sql)
    assert con.execute("select typeof(sum(a.money * b.income)) from a join b on a.id = b.id").fetchone()[0] \
        == "DECIMAL(38,4)"
    # independent Python Decimal oracle agrees with DuckDB
    py = {}
    for k in range(n):
        py[k % 3] = py.get(k % 3, Decimal(0)) + Decimal(money[k]) * Decimal(income[k])
    assert [w[1] for w in want] == [py[g] for g in range(3)]
    assert max(abs(w[1]) for w in want) * 10 ** 4 >= 2 ** 61  # does not fit the 64-bit ring's width
    for got in _run(sql, pa, pb, source):
        assert not isinstance(got, Exception), got
        assert got.attrs["pet_sql"]["ring_bits"] == 128
        assert list(got["g"]) == [w[0] for w in want] and list(got["c"]) == [w[3] for w in want]
        for s, m, w in zip(got["s"], got["m"], want):
            assert float(s) == float(w[1]), (s, w[1])          # exact: the nearest float64 of the decimal
            assert Decimal(repr(float(m))) == w[2]              # exact to the cent


def test_decimal_sum_that_fits_stays_in_64_bits(tmp_path):
    n = 500
    money = [f"{(k * 7919) % 100000}.{(k * 31) % 100:02d}" for k in range(n)]
    income = [f"{(k * 13) % 1000}.{(k * 17) % 100:02d}" for k in range(n)]
    con, pa, pb = _tables(tmp_path, n, money, income)
    sql = "select b.g, sum(a.money * b.income) s from ta a join tb b on a.id = b.id group by b.g order by b.g"
    want = _exact(con, sql)
    for got in _run(sql, pa, pb):
        assert not isinstance(got, Exception), got
        assert got.attrs["pet_sql"].get("ring_bits", 64) == 64
        assert [float(s) for s in got["s"]] == [float(w[1]) for w in want]


def test_decimal_product_no_ring_holds_is_refused_at_both(tmp_path):
    n = 50
    # ~9e13 each (2^53 cents): a product of 2^106 units of 10^-4, above the wide ring's 2^95
    money = [f"{9 * 10 ** 13 + k}.25" for k in range(n)]
    income = [f"{9 * 10 ** 13 - k}.50" for k in range(n)]
    con, pa, pb = _tables(tmp_path, n, money, income)
    sql = "select b.g, sum(a.money * b.income) s from ta a join tb b on a.id = b.id group by b.g"
    for got in _run(sql, pa, pb):
        assert isinstance(got, PrecisionError), got
        assert "2^" in str(got)
