"""SQL MIN/MAX on narrow comparisons (pet.sql.execute._narrow_extremes): the width and the
common frac chosen from the range analysis, and results against DuckDB at the class limits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pet.mpc as mpc
import pet.sql as psql
from pet.sql import numbers as N
from pet.sql.execute import EXTREMES_LANE, _narrow_extremes
from tests.sql.helpers import oracle, run_both


def test_extremes_width_and_frac():
    # the benchmark's MAX(s.amount - u.w): class 8 at 2^-26 (sentinel 2^9) -> values below
    # 2^10 need 38 bits at 2^-26; at 2^-20 they fit 32 and one ulp (1e-6) is far inside
    # the precision criterion (1e-6 * 2^8)
    d, _ = N.rule("sub", N.leaf(7, "float", "a"), N.leaf(4, "float", "w"), "d")
    f, kbig = N.extremes_rep([d])
    assert (d.k, f, kbig) == (8, 26, 9)
    assert _narrow_extremes([d], f, kbig) == (20, EXTREMES_LANE)
    # small integers: narrow at their own (integer) lattice
    i = N.leaf(20, "int", "i")
    assert _narrow_extremes([i], *N.extremes_rep([i])) == (0, 24)
    # large integers: nothing to coarsen, 64 bits
    big = N.leaf(40, "int", "i")
    assert _narrow_extremes([big], *N.extremes_rep([big])) == (0, 64)
    # an approximate value (a secret division): 64 bits at the planned frac
    q = N.Num(8, 26, 1e-5, approx=True)
    assert _narrow_extremes([q], 26, 9) == (26, 64)


def _tables(a, b):
    n = len(a)
    t0 = {"s": pd.DataFrame({"id": np.arange(n), "a": a})}
    t1 = {"u": pd.DataFrame({"id": np.arange(n), "b": b, "g": np.arange(n) % 3})}
    return t0, t1


@pytest.mark.parametrize("source", ["dealer", "ot"])
def test_max_min_of_a_cross_party_float_expression_at_the_class_limits(source):
    # a in (-128, 128), b in (-16, 16): a - b of class 8, compared on 32 bits at 2^-20;
    # the extremes at both ends of the class, near-ties a few ulps of 2^-26 apart
    rng = np.random.default_rng(5)
    a = rng.uniform(-127.99, 127.99, 90)
    b = rng.uniform(-15.99, 15.99, 90)
    a[:6] = [127.99, -127.99, 127.99, -127.99, 100.0, 100.0 + 2.0 ** -24]
    b[:6] = [-15.99, 15.99, -15.99 + 2.0 ** -22, 15.99 - 2.0 ** -22, 0.0, 0.0]
    t0, t1 = _tables(a, b)
    sql = ("SELECT u.g, MAX(s.a - u.b) AS hi, MIN(s.a - u.b) AS lo, MAX(s.a * 0 + u.b) AS hb "
           "FROM s JOIN u ON s.id = u.id GROUP BY u.g")

    def prog(session):
        return psql.query(session, sql, t0 if session.party == 0 else t1)

    r0, r1 = mpc.run_local(prog, correlations=source, timeout=300)
    want = oracle(sql + " ORDER BY u.g", t0, t1)
    got = r0.sort_values("g").reset_index(drop=True)
    for col in ("hi", "lo", "hb"):
        # the comparisons are exact on values truncated to 2^-20: within 2 ulps of the truth
        np.testing.assert_allclose(got[col], want[col], rtol=0, atol=2.0 ** -19)


def test_max_of_integers_at_the_narrow_limit():
    # integers of class 20 (|v| < 2^20): compared on 24 bits at their own lattice, exactly
    a = np.array([(1 << 20) - 1, -(1 << 20) + 1, 0, 5, -5, (1 << 20) - 2, 7, -(1 << 20) + 2, 1], dtype=np.int64)
    b = np.zeros(len(a), dtype=np.int64)
    t0, t1 = _tables(a, b)
    sql = "SELECT u.g, MAX(s.a + u.b) AS hi, MIN(s.a + u.b) AS lo FROM s JOIN u ON s.id = u.id GROUP BY u.g"
    got = run_both(sql, t0, t1)[0].sort_values("g").reset_index(drop=True)
    want = oracle(sql + " ORDER BY u.g", t0, t1)
    np.testing.assert_array_equal(got["hi"].to_numpy(dtype=np.int64), want["hi"].to_numpy(dtype=np.int64))
    np.testing.assert_array_equal(got["lo"].to_numpy(dtype=np.int64), want["lo"].to_numpy(dtype=np.int64))
