"""DP clamps on the narrow comparison (pet.sql.dp._clamp_plan / _clamp_shared): the width
chosen from the range analysis, rows at the magnitude limits of that width, rows far
outside and exactly on the bounds, against a numpy oracle; and the coarser comparison
lattice a too-wide value is compared on."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import pet.mpc as mpc
import pet.sql as psql
from pet.sql import numbers as N
from pet.sql.dp import CLAMP_LANE, Measurement, _clamp_plan, _contributions
from pet.sql.values import Sh
from tests.sql.helpers import oracle, run_both


def _measurement(lo, hi, frac):
    lo_int, hi_int = math.ceil(Fraction(lo) * 2 ** frac), math.floor(Fraction(hi) * 2 ** frac)
    return Measurement("sum", 0, f"[{lo}, {hi}]", lo, hi, frac, lo_int, hi_int, max(abs(lo_int), abs(hi_int)),
                       "float")


def test_clamp_width_follows_the_range_analysis():
    # the benchmark's SUM(s.amount * u.w): class 11 at 2^-19, bounds [0, 1000] on 2^-20:
    # |x - hi| < 2^30 + 1000 * 2^19 < 2^31 -> exact on 32 bits at the value's own lattice
    amount, w = N.leaf(7, "float", "a"), N.leaf(4, "float", "w")
    prod, _ = N.rule("mul", amount, w, "p")
    assert (prod.k, prod.frac) == (11, 19)
    assert _clamp_plan(_measurement(0, 1000, 20), prod, prod.frac) == (19, 32)
    # AVG(s.amount + u.w): class 8 at 2^-26, bounds [0, 110] on 2^-23: 33 bits at 2^-23,
    # so compared one bit coarser (2^-22, still 29 bits below the bound 110)
    s, _ = N.rule("add", amount, w, "s")
    assert (s.k, s.frac) == (8, 26)
    assert _clamp_plan(_measurement(0, 110, 23), s, s.frac) == (22, 32)
    # small integers: lanes 8 and 16
    assert _clamp_plan(_measurement(-20, 30, 0), N.leaf(6, "int", "i"), 0) == (0, 8)
    assert _clamp_plan(_measurement(-1000, 2000, 0), N.leaf(14, "int", "i"), 0) == (0, 16)
    # too wide and nothing to coarsen (an integer lattice): the full 64-bit comparison
    assert _clamp_plan(_measurement(0, 1, 0), N.leaf(40, "int", "i"), 0) == (0, 42)
    # coarsening would lose resolution of the bounds: full width at the old lattice
    assert _clamp_plan(_measurement(0, 2.0 ** -10, 40), N.Num(30, 10, 0.0), 10)[1] > CLAMP_LANE
    # no range analysis (or an approximate value): 64 bits, as before
    assert _clamp_plan(_measurement(0, 1000, 20), None, 16) == (16, 64)
    assert _clamp_plan(_measurement(0, 1000, 20), N.Num(11, 19, 0.0, approx=True), 19) == (19, 64)


def _clamp_in_mpc(ms, nums, columns, fracs, source="dealer"):
    def prog(session):
        vals = []
        for num, col, f in zip(nums, columns, fracs):
            x = session.share(col if session.party == 0 else None, owner=0, frac_bits=f)
            vals.append(Sh(x, "float" if f else "int", num))
        before = session.channel.stats.snapshot()
        out = _contributions(session, None, ms, vals, len(columns[0]))
        st = session.channel.stats.snapshot() - before
        return [np.asarray(session.reveal(o.s)).astype(np.int64) for o in out], st.messages_sent, st.bytes_sent

    (got, msg, sent), (got1, msg1, sent1) = mpc.run_local(prog, correlations=source, timeout=300)
    for g, g1 in zip(got, got1):
        np.testing.assert_array_equal(g, g1)
    return got, msg, sent


def _limit_rows(k, lo, hi, n_random, seed):
    """Integer rows of class ``k`` (``|v| < 2^k``): both magnitude limits, the bounds and
    their neighbours, zero, then random values of the class."""
    top = (1 << k) - 1
    edge = [top, -top, lo, hi, lo - 1, hi + 1, lo + 1, hi - 1, 0, top - 1, -top + 1]
    rand = [int(v) for v in np.random.default_rng(seed).integers(-top, top + 1, n_random)]
    return np.array(edge + rand, dtype=np.int64)


@pytest.mark.parametrize("source", ["dealer", "ot"])
def test_integer_clamps_at_the_limits_of_lanes_8_and_16(source):
    # lane 8: class 6 with bounds [-20, 30] (|x - lo| <= 63 + 30 < 2^7); lane 16: class 14 with
    # [-1000, 2000]; 203 and 205 rows: not multiples of the 8 resp. 4 elements per word
    m8, m16 = _measurement(-20, 30, 0), _measurement(-1000, 2000, 0)
    n8, n16 = N.leaf(6, "int", "a"), N.leaf(14, "int", "b")
    assert _clamp_plan(m8, n8, 0)[1] <= 8 and _clamp_plan(m16, n16, 0)[1] <= 16
    x8 = _limit_rows(6, -20, 30, 192, 1)
    x16 = _limit_rows(14, -1000, 2000, 192, 2)
    n = len(x8)
    got, msg, sent = _clamp_in_mpc([m8, m16], [n8, n16], [x8, x16], [0, 0], source)
    np.testing.assert_array_equal(got[0], np.clip(x8, -20, 30))
    np.testing.assert_array_equal(got[1], np.clip(x16, -1000, 2000))
    if source == "dealer":  # (the OT source's bytes here include its offline OTs)
        # one comparison on the widest lane (16) and one product: about 8 bytes per compared
        # element (2 per row, 2 n rows) and 16 per row, where the 64-bit comparison took 33 and two
        # products per row: about 2.7 times as much
        assert sent < 4 * n * 10 + 16 * 2 * n + 4000, sent


@pytest.mark.parametrize("source", ["dealer", "ot"])
def test_float_clamp_on_a_coarser_lattice_never_leaves_the_bounds(source):
    # AVG-like value: class 8 held at 2^-26, bounds [0, 110] on 2^-23 -> compared on 32 bits at
    # 2^-22 after one truncation; rows at the class limit (+-(256 - 2^-26)), on the bounds,
    # one ulp outside them and random ones
    m = _measurement(0, 110, 23)
    num = N.Num(8, 26, 2.0 ** -27)
    assert _clamp_plan(m, num, 26) == (22, 32)
    u = 2.0 ** -26
    edge = [256 - u, -(256 - u), 0.0, 110.0, -u, 110 + u, u, 110 - u, 255.5, -255.5, 1e-3, 109.999]
    rand = list(np.random.default_rng(3).uniform(-256 + u, 256 - u, 120))
    x = np.array(edge + rand)
    (got,), msg, _ = _clamp_in_mpc([m], [num], [x], [26], source)
    assert np.all((got >= m.lo_int) & (got <= m.hi_int))
    want = np.clip(x, 0.0, 110.0)
    # a row inside moves by less than one unit of the comparison lattice 2^-22 (truncation
    # up by at most one ulp there; near a bound it may be moved onto the bound)
    np.testing.assert_allclose(got * 2.0 ** -23, want, rtol=0, atol=2.0 ** -22 + 2.0 ** -23)
    # rows outside the bounds contribute exactly the bound
    np.testing.assert_array_equal(got[x < 0], m.lo_int)
    np.testing.assert_array_equal(got[x > 110], m.hi_int)


def test_query_with_planted_outliers_at_the_class_limit():
    # integer columns of classes 5 and 5: s.a + u.b has class 6 and is clamped to [-20, 30]
    # on lane 8; rows at the class limit (+-62) and on the bounds, against the DuckDB clamp
    a = np.array([31, -31, 10, -20, 30, 0, 5, -7, 31, -31, 12, 1], dtype=np.int64)
    b = np.array([31, -31, -30, 0, 0, 30, -25, 31, -31, 31, 8, -1], dtype=np.int64)
    t0 = {"o": pd.DataFrame({"uid": np.arange(12), "a": a})}
    t1 = {"p": pd.DataFrame({"uid": np.arange(12), "b": b, "k": [0, 1] * 6})}
    sql = "SELECT u.k, SUM(s.a + u.b) AS t, COUNT(*) AS n FROM o s JOIN p u ON s.uid = u.uid GROUP BY u.k"
    dp = psql.DP(4000.0, bounds={"t": (-20, 30)}, public_groups={"k": [0, 1]})
    got = run_both(sql, t0, t1, dp=dp)[0].sort_values("k").reset_index(drop=True)
    want = oracle("SELECT u.k, SUM(GREATEST(LEAST(s.a + u.b, 30), -20)) AS t FROM o s JOIN p u ON s.uid = u.uid "
                  "GROUP BY u.k ORDER BY u.k", t0, t1)
    raw = oracle(sql + " ORDER BY u.k", t0, t1)
    std = got.attrs["dp"]["noise_std"]["t"]
    assert std < 0.05
    np.testing.assert_allclose(got["t"], want["t"], atol=10 * std + 1e-9)
    assert np.all(np.abs(got["t"] - raw["t"]) > 30)  # the planted rows did not get through


def test_clamp_plan_is_exact_for_every_value_of_the_class():
    # for many classes, fracs and bounds: every encoding the range analysis allows (|v| < 2^k
    # within err, on the comparison lattice, one truncation unit up) keeps both compared
    # differences inside the chosen signed width; a coarser lattice keeps >= 24 bits of the bound
    from pet.sql.dp import CLAMP_RESOLUTION

    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(400):
        k = int(rng.integers(-10, 45))
        fv = int(rng.integers(0, max(1, 61 - max(k, 0))))
        num = N.Num(k, fv, float(rng.choice([0.0, 2.0 ** -(fv + 1)])))
        span = 2.0 ** float(rng.uniform(-12, 40))
        lo = float(rng.uniform(-span, span))
        hi = lo + float(rng.uniform(0, 2 * span))
        mf = max(0, min(40, 30 - math.frexp(max(abs(lo), abs(hi)))[1]))
        m = _measurement(lo, hi, mf)
        if m.lo_int > m.hi_int:
            continue
        fc, bits = _clamp_plan(m, num, fv)
        f0 = min(fv, mf)
        assert fc <= f0 and 1 <= bits <= 64
        if fc < f0:
            assert bits <= CLAMP_LANE
            assert fc + math.frexp(max(abs(lo), abs(hi)))[1] >= CLAMP_RESOLUTION
        if bits == 64:
            continue
        top = math.floor((Fraction(2) ** k + Fraction(num.err)) * Fraction(2) ** fc) + 1  # |x| <= top
        lo_c, hi_c = math.ceil(Fraction(lo) * 2 ** fc), math.floor(Fraction(hi) * 2 ** fc)
        for x in (top, -top):
            for d in (x - lo_c, hi_c - x):
                assert -(1 << (bits - 1)) <= d < (1 << (bits - 1)), (k, fv, lo, hi, fc, bits)
        checked += 1
    assert checked > 100
