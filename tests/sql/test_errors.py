"""Error cases at query level: both parties get a clear error, never a wrong answer."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import pet.mpc as mpc
import pet.sql as psql
from pet.errors import InputError, PetError, ProtocolError
from pet.sql import SqlError, SqlMismatch, SqlNotSupported
from tests.sql.helpers import assert_same, oracle, run_both

A = pd.DataFrame({"id": [1, 2, 3, 4], "x": [1.0, 2.0, 3.0, 4.0], "k": ["u", "v", "u", "v"]})
B = pd.DataFrame({"id": [2, 3, 4, 5], "y": [10.0, 20.0, 30.0, 40.0], "c": [1, 1, 2, 2]})
Q = "select b.c, sum(a.x * b.y) s from ta a join tb b on a.id = b.id group by b.c"


def both_outcomes(sql0, sql1, t0, t1, kw0=None, kw1=None):
    """Each party's result or exception (run in one process)."""
    def prog(session):
        try:
            if session.party == 0:
                return psql.query(session, sql0, t0, **(kw0 or {}))
            return psql.query(session, sql1, t1, **(kw1 or {}))
        except PetError as exc:
            return exc
    return mpc.run_local(prog, timeout=120)


def test_different_sql_is_a_mismatch_on_both_sides():
    # issue 22 item 1: formatting does not count (this test used Q + " " before), content does
    r = both_outcomes(Q, Q.replace("sum(", "min("), {"ta": A}, {"tb": B})
    assert all(isinstance(x, SqlMismatch) and "different SQL" in str(x) and "first differ" in str(x) for x in r)


def test_same_table_at_both_parties_is_a_mismatch():
    r = both_outcomes(Q, Q, {"ta": A, "tb": B}, {"tb": B})
    assert all(isinstance(x, SqlMismatch) and "tb" in str(x) for x in r)


def test_different_options_are_a_mismatch():
    r = both_outcomes(Q, Q, {"ta": A}, {"tb": B}, {"reveal_to": 0}, {"reveal_to": 1})
    assert all(isinstance(x, SqlMismatch) and "reveal_to" in str(x) for x in r)
    r = both_outcomes(Q, Q, {"ta": A}, {"tb": B}, {"min_group_size": 2}, {})
    assert all(isinstance(x, SqlMismatch) for x in r)


@pytest.mark.parametrize("sql, exc", [
    ("select count(*) from ta a left join tb b on a.id = b.id", SqlNotSupported),
    ("select count(*) from ta a join tb b on a.id = b.id join tb c on c.id = a.id", SqlNotSupported),
    ("select sum(a.x) over () from ta a join tb b on a.id = b.id", SqlNotSupported),
    ("select a.zz from ta a join tb b on a.id = b.id", SqlError),
    ("select count(*) from ta a join tb b on a.k = b.id", SqlError),
])
def test_unsupported_or_invalid_queries_fail_on_both_sides(sql, exc):
    r = both_outcomes(sql, sql, {"ta": A}, {"tb": B})
    assert all(isinstance(x, exc) for x in r), r


def test_bad_arguments():
    fake = SimpleNamespace(party=0, exchange=None)
    with pytest.raises(InputError, match="reveal_to"):
        psql.query(fake, Q, {"ta": A}, reveal_to=2)
    with pytest.raises(InputError, match="min_group_size"):
        psql.query(fake, Q, {"ta": A}, min_group_size=0)
    with pytest.raises(InputError, match="duplicate_keys"):
        psql.query(fake, Q, {"ta": A}, duplicate_keys="yes")
    r = both_outcomes(Q, Q, {"ta": 5}, {"tb": B})
    assert isinstance(r[0], InputError) and isinstance(r[1], ProtocolError)
    r = both_outcomes(Q, Q, {"ta": A}, {"tb": "/nonexistent.csv"})
    assert isinstance(r[1], SqlError) and "no such file" in str(r[1])
    assert isinstance(r[0], ProtocolError) and "nonexistent" not in str(r[0])


def test_one_to_many_join_is_rejected_by_default_and_runs_with_reveal_counts():
    b2 = pd.DataFrame({"id": [2, 2, 3, 4, 4, 4, 9], "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
                       "c": [1, 2, 1, 2, 1, 1, 1]})
    r = both_outcomes(Q, Q, {"ta": A}, {"tb": b2})
    assert all(isinstance(x, SqlNotSupported) and "one-to-many" in str(x) for x in r)
    sql = "select b.c, a.k, count(*) n, sum(a.x * b.y) s, max(a.x - b.y) m from ta a join tb b on a.id = b.id " \
          "group by b.c, a.k"
    want = oracle(sql, {"ta": A}, {"tb": b2})
    for t0, t1 in (({"ta": A}, {"tb": b2}), ({"tb": b2}, {"ta": A})):
        res = run_both(sql, t0, t1, duplicate_keys="reveal_counts")
        for x in res:
            assert_same(x, want)


def test_many_to_many_join_is_rejected():
    a2 = pd.DataFrame({"id": [2, 2], "x": [1.0, 2.0], "k": ["u", "v"]})
    b2 = pd.DataFrame({"id": [2, 2], "y": [1.0, 2.0], "c": [1, 2]})
    r = both_outcomes(Q, Q, {"ta": a2}, {"tb": b2}, {"duplicate_keys": "reveal_counts"},
                      {"duplicate_keys": "reveal_counts"})
    assert all(isinstance(x, SqlNotSupported) and "many-to-many" in str(x) for x in r)


def test_null_values_in_cross_party_columns_stop_both_parties():
    a2 = A.copy()
    a2.loc[1, "x"] = np.nan
    r = both_outcomes(Q, Q, {"ta": a2}, {"tb": B})
    assert isinstance(r[0], InputError) and "NULL" in str(r[0])
    assert isinstance(r[1], ProtocolError) and "peer failed while running its local part" in str(r[1])
    assert "invalid input or values" in str(r[1]) and "NULL values in" not in str(r[1])


def test_division_by_zero_in_pushed_down_reciprocal_is_an_error():
    b2 = B.copy()
    b2.loc[0, "y"] = 0.0
    sql = "select sum(a.x / b.y) s from ta a join tb b on a.id = b.id"
    r = both_outcomes(sql, sql, {"ta": A}, {"tb": b2})
    assert isinstance(r[1], InputError) and "division by zero" in str(r[1])
    assert isinstance(r[0], ProtocolError)


def test_declared_schemas_are_checked_on_both_sides():
    good = {"ta": {"id": "BIGINT", "x": "DOUBLE", "k": "VARCHAR"}, "tb": {"id": "BIGINT", "y": "DOUBLE", "c": "BIGINT"}}
    res = both_outcomes(Q, Q, {"ta": A}, {"tb": B}, {"schemas": good}, {"schemas": {"ta": good["ta"]}})
    assert all(not isinstance(x, Exception) for x in res)
    bad = {"tb": {"id": "BIGINT", "y": "INTEGER", "c": "BIGINT"}}
    res = both_outcomes(Q, Q, {"ta": A}, {"tb": B}, {"schemas": bad}, {})
    assert all(isinstance(x, SqlMismatch) and "party 0 declared" in str(x) for x in res)
    res = both_outcomes(Q, Q, {"ta": A}, {"tb": B}, {}, {"schemas": {"tc": {"id": "BIGINT"}}})
    assert all(isinstance(x, SqlMismatch) and "'tc'" in str(x) for x in res)
