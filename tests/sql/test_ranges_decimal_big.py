"""DECIMAL(18, 2) values near the type's limit (issue 21 item 4): the owner's pushed-down
query scaled them by 10^2 inside DECIMAL(18, 2), where DuckDB raised "Overflow in
multiplication of DECIMAL(18)" for values near 1e15 (an SqlError at one party, a bare
peer failure at the other). They are now scaled in DECIMAL(38, 2) (the scaled integer of
any DECIMAL(p <= 18) fits BIGINT) and computed exactly: sums in the wide ring, equal to
DuckDB's exact DECIMAL sums; a product of two such columns no ring holds is refused with
PrecisionError at both parties, naming the expression and its bound."""

from __future__ import annotations

from decimal import Decimal

import duckdb

import pet.mpc as mpc
import pet.sql as psql
from pet.errors import PrecisionError


def _tables(tmp_path, money, other):
    n = len(money)
    con = duckdb.connect()
    con.execute("create table a as select unnest(?::BIGINT[]) id, unnest(?::VARCHAR[])::DECIMAL(18,2) money",
                [list(range(n)), money])
    con.execute("create table b as select unnest(?::BIGINT[]) id, unnest(?::VARCHAR[])::DECIMAL(18,2) v, "
                "unnest(?::BIGINT[]) g", [list(range(n)), other, [k % 3 for k in range(n)]])
    pa, pb = str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")
    con.execute(f"copy a to '{pa}' (format parquet)")
    con.execute(f"copy b to '{pb}' (format parquet)")
    return con, pa, pb


def _run(sql, pa, pb):
    def prog(session):
        try:
            return psql.query(session, sql, {"ta": pa} if session.party == 0 else {"tb": pb})
        except Exception as exc:  # noqa: BLE001 - the outcome is the point
            return exc
    return mpc.run_local(prog, timeout=600)


def _exact(con, sql):
    return con.execute(sql.replace(" ta ", " a ").replace(" tb ", " b ")).fetchall()


def test_decimal_18_2_near_its_limit_is_summed_exactly(tmp_path):
    n = 40
    money = [f"{'-' if k % 4 == 1 else ''}{999_999_999_999_999 - k * 1_000_003}.{(k * 37) % 100:02d}"
             for k in range(n)]
    other = [f"{(k * 7919) % 100000}.{(k * 31) % 100:02d}" for k in range(n)]
    con, pa, pb = _tables(tmp_path, money, other)
    sql = ("select b.g, sum(a.money) s, sum(a.money + b.v) sv, max(a.money) mx, count(*) c from ta a join tb b "
           "on a.id = b.id group by b.g order by b.g")
    want = _exact(con, sql)
    py = {}
    for k in range(n):
        py[k % 3] = py.get(k % 3, Decimal(0)) + Decimal(money[k])
    assert [w[1] for w in want] == [py[g] for g in range(3)]
    for got in _run(sql, pa, pb):
        assert not isinstance(got, Exception), got
        assert list(got["g"]) == [w[0] for w in want] and list(got["c"]) == [w[4] for w in want]
        for s, sv, mx, w in zip(got["s"], got["sv"], got["mx"], want):
            assert float(s) == float(w[1]), (s, w[1])      # exact: the nearest float64 of the decimal
            assert float(sv) == float(w[2]), (sv, w[2])
            assert float(mx) == float(w[3]), (mx, w[3])


def test_product_of_two_decimal_18_2_near_the_limit_is_refused_at_both(tmp_path):
    n = 12
    money = [f"{999_999_999_999_999 - k}.25" for k in range(n)]
    other = [f"{888_888_888_888_888 - k}.50" for k in range(n)]
    _, pa, pb = _tables(tmp_path, money, other)
    sql = "select b.g, sum(a.money * b.v) s from ta a join tb b on a.id = b.id group by b.g"
    for got in _run(sql, pa, pb):
        assert isinstance(got, PrecisionError), got
        assert '"a"."money"' in str(got) and "2^" in str(got)


def test_decimal_38_values_beyond_bigint_at_their_scale_are_refused_at_both(tmp_path):
    # DECIMAL(38, 2) money near 1e20: DuckDB sums it exactly, but its scaled integer (1e22)
    # is beyond the BIGINT the owner loads exact decimals as: PrecisionError at both parties
    # (it was an SqlError at the owner and a bare "the peer failed" at the other)
    n = 30
    con = duckdb.connect()
    con.execute("create table a as select i id, (100000000000000000000 + i * 7)::DECIMAL(38,2) money "
                "from range(?) t(i)", [n])
    con.execute("create table b as select i id, i % 3 g from range(?) t(i)", [n])
    pa, pb = str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")
    con.execute(f"copy a to '{pa}' (format parquet)")
    con.execute(f"copy b to '{pb}' (format parquet)")
    sql = "select b.g, sum(a.money) s from ta a join tb b on a.id = b.id group by b.g"
    assert con.execute(sql.replace(" ta ", " a ").replace(" tb ", " b ")).fetchall()  # DuckDB holds it
    owner, peer = _run(sql, pa, pb)
    assert isinstance(owner, PrecisionError), owner
    assert "DECIMAL" in str(owner) and "2^63" in str(owner)
    assert isinstance(peer, PrecisionError), peer
    assert "1000000000000000000" not in str(peer)  # no value of the owner's data reaches the peer
