"""More SQL constructs end to end vs DuckDB on the union: IF, CAST, ABS, BETWEEN, NOT,
GROUP BY position/alias, HAVING on a key, one-party ON conditions, division by one-party
and by cross-party values, COUNT of a NULL-able column, global HAVING, ORDER BY/LIMIT/OFFSET."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.sql.helpers import assert_same, oracle, run_both

I = np.arange(20)
A = pd.DataFrame({"id": I, "x": (I * 7 % 11) - 5, "u": ((I * 13 % 17) - 8) / 4.0,
                  "k": np.where(I % 3 == 0, "p", "q"), "nx": np.where(I % 4 == 0, np.nan, I * 1.0)})
B = pd.DataFrame({"id": I + 5, "y": ((I * 5 % 13) - 6) / 2.0, "c": I % 3, "s": np.where(I % 2 == 0, "lo", "hi")})

QUERIES = [
    "select b.c, count(*) n, sum(if(a.x > b.y, 1, 0)) w from ta a join tb b on a.id = b.id group by 1",
    "select b.c as cc, sum(cast(a.x as double) * b.y) s from ta a join tb b on a.id = b.id group by cc",
    "select b.c, sum(abs(a.u - b.y)) s, count(a.nx) cn from ta a join tb b on a.id = b.id "
    "where not (a.u between b.y - 1 and b.y + 1) group by b.c having b.c > 0",
    "select b.c, a.k, max(a.u) - min(b.y) r, sum(a.x) / count(*) q from ta a join tb b "
    "on a.id = b.id and a.x > 0 group by b.c, a.k having avg(b.y) < 2",
    "select a.k, sum(a.u / (b.y + 10)) s, sum(a.u / (a.x + b.y + 20)) t, sum(b.y / 4) w "
    "from ta a join tb b on a.id = b.id group by a.k",
    "select count(*) n from ta a join tb b on a.id = b.id where a.u > b.y having count(*) > 0",
    "select a.x * b.y as p from ta a join tb b on a.id = b.id order by p limit 4 offset 1",
    "select b.s, a.k, count(*) n from (select * from ta where x > -4) a "
    "join (select id, s from tb where c <> 2) b using (id) group by all order by n desc, 1, 2",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_construct_matches_duckdb(sql):
    want = oracle(sql, {"ta": A}, {"tb": B})
    r0, r1 = run_both(sql, {"ta": A}, {"tb": B})
    for r in (r0, r1):
        assert_same(r, want, ordered="order by" in sql)


@pytest.mark.parametrize("sql", [
    "select count(*) n from ta a join tb b on a.id = b.id having count(*) = 0",
    "select count(*) n, sum(a.x) s from ta a join tb b on a.id = b.id having sum(a.x) > 0",
    "select count(*) + 1 n, max(b.y) m, avg(a.u) av from ta a join tb b on a.id = b.id",
    "select b.c, count(*) n from ta a join tb b on a.id = b.id group by b.c",
])
def test_empty_join_matches_duckdb(sql):
    a = A[A["id"] < 5]  # B's ids start at 5: nothing joins
    want = oracle(sql, {"ta": a}, {"tb": B})
    for r in run_both(sql, {"ta": a}, {"tb": B}):
        assert_same(r, want)


@pytest.mark.parametrize("reveal_to", [None, 0, 1])
def test_query_over_one_partys_tables_runs_at_its_owner(reveal_to):
    sql = ("select s, count(*) n, avg(y) m from (select * from tb where c > 0) t "
           "group by s order by s")
    want = oracle(sql, {"ta": A}, {"tb": B})
    r = run_both(sql, {"ta": A}, {"tb": B}, reveal_to=reveal_to)
    for p in (0, 1):
        if reveal_to in (None, p):
            assert_same(r[p], want, ordered=True)
            assert r[p].attrs["pet_sql"]["plan"] == "local"
        else:
            assert r[p] is None
