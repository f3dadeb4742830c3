"""pet.sql.query between exactly two parties with no dealer (correlations="ot") against
DuckDB on the plaintext union, and the same results as with the dealer."""

from __future__ import annotations

import pandas as pd
import pytest

import pet.mpc as mpc
import pet.sql as psql
from tests.sql.helpers import assert_same, oracle
from tests.sql.test_equivalence import SHAPES

A = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6, 7, 9, 11], "x": [3, -7, 12, 0, 5, -2, 8, 1, -15],
                  "u": [0.25, -1.5, 2.75, 3.0, -0.5, 1.25, -2.0, 0.75, 4.5],
                  "k": ["p", "q", "rr", "p", "q", "p", "rr", "q", "p"]})
B = pd.DataFrame({"id": [2, 3, 4, 5, 6, 7, 8, 11, 12], "y": [1.5, -2.25, 0.5, 4.0, -3.5, 2.0, 1.0, -1.0, 0.0],
                  "c": [0, 1, 2, 0, 1, 1, 2, 0, 2], "s": ["lo", "hi", "lo", "hi", "lo", "lo", "hi", "hi", "lo"]})


def run(sql, correlations, **kw):
    def prog(session):
        return psql.query(session, sql, {"ta": A} if session.party == 0 else {"tb": B}, **kw)
    return mpc.run_local(prog, timeout=600, correlations=correlations)


@pytest.mark.parametrize("shape", ["global", "key-party1", "keys-both-parties", "mixed-where-having", "row-level",
                                   "order-limit"])
def test_dealer_free_query_matches_duckdb(shape):
    sql = SHAPES[shape]
    want = oracle(sql, {"ta": A}, {"tb": B})
    r0, r1 = run(sql, "ot")
    for got in (r0, r1):
        assert_same(got, want, ordered="order by" in sql)


def test_dealer_free_and_dealer_give_the_same_result():
    sql = SHAPES["two-keys-party1"]
    ot = run(sql, "ot", reveal_to=1)
    dealer = run(sql, "dealer", reveal_to=1)
    assert ot[0] is None and dealer[0] is None
    assert_same(ot[1], dealer[1])
    assert_same(ot[1], oracle(sql, {"ta": A}, {"tb": B}))
