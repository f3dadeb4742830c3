"""Fixed-point precision where it is easy to lose: averages over large groups, division by
large public or owned numbers, small constants (relative error <= 1e-4 vs DuckDB)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.sql.helpers import assert_same, oracle, run_both


def test_averages_and_divisions_keep_relative_precision():
    n = 3000
    i = np.arange(n)
    a = pd.DataFrame({"id": i, "x": (i * 37 % 1000) / 10.0 + 1.0, "k": i % 2})
    b = pd.DataFrame({"id": i, "big": 5000.0 + (i * 13 % 5000), "c": i % 3})
    sql = ("select b.c, avg(a.x * b.big) m1, avg(a.x) m2, sum(a.x / b.big) s1, sum(a.x / 1000) s2, "
           "sum(a.x * 0.001) s3, avg(a.x + b.big) m3 from ta a join tb b on a.id = b.id "
           "where a.x > b.big / 1000 group by b.c")
    want = oracle(sql, {"ta": a}, {"tb": b})
    r = run_both(sql, {"ta": a}, {"tb": b}, reveal_to=0)
    assert_same(r[0], want, rtol=1e-4, atol=1e-4)
    glob = "select avg(a.x) m, avg(b.big) mb, count(*) n from ta a join tb b on a.id = b.id"
    r = run_both(glob, {"ta": a}, {"tb": b}, reveal_to=1)
    assert_same(r[1], oracle(glob, {"ta": a}, {"tb": b}), rtol=1e-4, atol=1e-4)
