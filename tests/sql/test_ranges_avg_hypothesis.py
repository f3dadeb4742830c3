"""Hypothesis (issue 21 item 6): AVG and SUM of cross-party sums and products over groups
of varying sizes -- one large group and many small ones, up to 10^5 joined rows -- with a
count known to the key owner only, or secret (a cross-party mask), against DuckDB. Every
result is within 1e-6 of its bound, or PrecisionError at both parties; never a wrong value.

Bounds as in test_ranges_wide.py, from the plaintext: a group's SUM of ``a.x * b.y`` is
bounded by ``count * max|x| * max|y|``, its AVG by ``max|x| * max|y|``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import pet.mpc as mpc
import pet.sql as psql
from pet.errors import PrecisionError
from tests.sql.helpers import oracle


def _run(sql, t0, t1):
    def prog(session):
        try:
            return psql.query(session, sql, t0 if session.party == 0 else t1)
        except Exception as exc:  # noqa: BLE001 - the outcome is the point
            return exc
    return mpc.run_local(prog, timeout=900)


MAGS = st.sampled_from([1e-3, 0.37, 12.5, 4.3e3, 1e5, 2.5e6])
ROWS = st.one_of(st.integers(1, 2000), st.sampled_from([20_000, 100_000]))


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(ma=MAGS, mb=MAGS, n=ROWS, share_big=st.floats(0.0, 0.99), small=st.integers(1, 40),
       masked=st.booleans(), mixed=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
@example(ma=12.5, mb=4.3e3, n=100_000, share_big=0.6, small=7, masked=False, mixed=False, seed=1)
@example(ma=0.37, mb=1e-3, n=100_000, share_big=0.3, small=3, masked=True, mixed=True, seed=2)
def test_avg_and_sum_over_uneven_groups_right_or_refused(ma, mb, n, share_big, small, masked, mixed, seed):
    rng = np.random.default_rng(seed)
    sign = (lambda k: rng.choice([-1.0, 1.0], k)) if mixed else (lambda k: np.ones(k))
    big = int(n * share_big)
    g = np.concatenate([np.zeros(big, dtype=np.int64), 1 + rng.integers(0, small, n - big)])
    rng.shuffle(g)
    a = pd.DataFrame({"id": np.arange(n), "x": ma * rng.uniform(0.1, 1, n) * sign(n)})
    b = pd.DataFrame({"id": np.arange(n), "y": mb * rng.uniform(0.1, 1, n) * sign(n), "g": g})
    # a cross-party mask (true for every row): the count is secret
    where = "where a.x * 0.5 < abs(b.y) + abs(a.x) " if masked else ""
    sql = ("select b.g, avg(a.x + b.y) av, avg(a.x * b.y) ap, sum(a.x * b.y) sp, sum(a.x + b.y) ss, "
           f"count(*) c from ta a join tb b on a.id = b.id {where}group by b.g")
    r = _run(sql, {"ta": a}, {"tb": b})
    event(f"rows {n if n > 2000 else '<= 2000'}, {'secret' if masked else 'owned'} count")
    if isinstance(r[0], Exception) or isinstance(r[1], Exception):
        event("refused")
        assert isinstance(r[0], PrecisionError) and isinstance(r[1], PrecisionError), r
        return
    want = oracle(sql, {"ta": a}, {"tb": b}).sort_values("g").reset_index(drop=True)
    A, B = a["x"].abs().max(), b["y"].abs().max()
    for got in r:
        got = got.sort_values("g").reset_index(drop=True)
        assert list(got["g"]) == list(want["g"]) and list(got["c"]) == list(want["c"])
        for gw, gg in zip(want.itertuples(), got.itertuples()):
            assert abs(gg.av - gw.av) <= 1e-6 * max(abs(gw.av), A + B), ("av", gg.av, gw.av)
            assert abs(gg.ap - gw.ap) <= 1e-6 * max(abs(gw.ap), A * B), ("ap", gg.ap, gw.ap)
            assert abs(gg.sp - gw.sp) <= 1e-6 * max(abs(gw.sp), gw.c * A * B), ("sp", gg.sp, gw.sp)
            assert abs(gg.ss - gw.ss) <= 1e-6 * max(abs(gw.ss), gw.c * (A + B)), ("ss", gg.ss, gw.ss)
