"""Security hardening of pet.sql (issue 13, items 1, 2, 7, 8a): a curious peer who writes
the SQL must not get more than the documented result and leakage.

1. ``min_group_size`` on a row-level join is refused at both parties.
2. A local failure reaches the peer as a fixed category only, never as text quoting the
   failing party's data; ``error()`` and other side-channel functions are refused.
7. A row-level query with a cross-party WHERE (which would open a positional mask) is
   refused at both parties.
8a. The peer's schema is validated (type grammar, names) before any ``CREATE TABLE``; the
   planning and the local DuckDB connections have no external access.
"""

from __future__ import annotations

import pandas as pd
import pytest

import pet.mpc as mpc
import pet.sql as psql
from pet.errors import PetError, PrecisionError, ProtocolError
from pet.sql import SqlError, SqlNotSupported
from pet.sql.errors import KINDS, STEPS, failure_status, peer_failure
from pet.sql.plan import build_plan
from pet.sql.tables import check_schema, connect_own, empty_catalog, valid_type
from tests.sql.helpers import assert_same, oracle

EMAILS = ["alice@example.com", "bob@example.org", "carol@example.net", "dave@example.com"]
SALES = pd.DataFrame({"id": [1, 2, 3, 4, 5], "amount": [10.0, 20.0, 30.0, 40.0, 50.0]})
USERS = pd.DataFrame({"id": [1, 2, 3, 4], "email": EMAILS, "salary": [100.0, 200.0, 300.0, 400.0],
                      "name": ["  Alice ", "Bob", "Carol", "Dave"],
                      "joined": pd.to_datetime(["2020-01-15", "2021-06-30", "2022-03-01", "2023-12-24"])})
T0, T1 = {"sales": SALES}, {"users": USERS}


def outcomes(sql, t0=T0, t1=T1, **kw):
    """Each party's result or PetError (the test fails if either hangs: run_local timeout)."""
    def prog(session):
        try:
            return psql.query(session, sql, t0 if session.party == 0 else t1, **kw)
        except PetError as exc:
            return exc
    return mpc.run_local(prog, timeout=60)


def assert_no_user_data(exc):
    text = str(exc) + repr(getattr(exc, "args", ()))
    for e in EMAILS:
        assert e not in text, text
        assert e.split("@")[0] not in text, text
    assert "@" not in text, text


# -- item 1: min_group_size on row-level output --------------------------------------------

@pytest.mark.parametrize("reveal_to", [0, None])
def test_min_group_size_on_row_level_join_is_refused_at_both_parties(reveal_to):
    sql = "SELECT u.salary, s.amount FROM sales s JOIN users u ON s.id = u.id"
    r = outcomes(sql, min_group_size=100, reveal_to=reveal_to)
    for x in r:
        assert isinstance(x, SqlNotSupported), r
        assert "min_group_size" in str(x)


def test_min_group_size_still_works_with_groups():
    sql = "SELECT count(*) n, sum(u.salary) s FROM sales s JOIN users u ON s.id = u.id"
    r = outcomes(sql, min_group_size=100, reveal_to=0)
    assert len(r[0]) == 0 and r[0].attrs["suppressed_groups"] == 1 and r[1] is None


# -- item 2: errors carry no peer data; side-channel functions refused ---------------------

def test_failed_cast_of_peer_column_does_not_send_its_values():
    sql = "SELECT sum(s.amount) t FROM sales s JOIN users u ON s.id = u.id WHERE CAST(u.email AS INTEGER) > 0"
    r = outcomes(sql, reveal_to=0)
    assert isinstance(r[1], SqlError) and "local query failed" in str(r[1])  # full text, locally
    assert isinstance(r[0], ProtocolError), r
    assert "the peer failed while running its local part of the query" in str(r[0])
    assert_no_user_data(r[0])


def test_error_function_over_a_peer_column_is_refused_at_both_parties():
    sql = ("SELECT count(*) n FROM sales s JOIN (SELECT id, error((SELECT string_agg(email, ',') FROM users)) e "
           "FROM users) u ON s.id = u.id")
    r = outcomes(sql, reveal_to=0)
    for x in r:
        assert isinstance(x, SqlNotSupported), r
        assert "ERROR" in str(x)
        assert_no_user_data(x)


def test_error_function_in_a_query_over_the_peers_table_is_refused():
    sql = "SELECT error((SELECT string_agg(email, ',') FROM users)) FROM users"
    r = outcomes(sql, reveal_to=0)
    for x in r:
        assert isinstance(x, SqlNotSupported) and "ERROR" in str(x), r
        assert_no_user_data(x)


def test_whole_column_in_a_failed_cast_does_not_reach_the_peer():
    sql = ("SELECT count(*) n, sum(u.e) t FROM sales s JOIN (SELECT id, CAST((SELECT string_agg(email, ',') "
           "FROM users) AS INTEGER) e FROM users) u ON s.id = u.id")
    r = outcomes(sql, reveal_to=0)
    assert isinstance(r[1], SqlError)
    assert isinstance(r[0], ProtocolError) and "running its local part" in str(r[0])
    assert_no_user_data(r[0])
    # a query over party 1's tables only: the same for the local plan
    r = outcomes("SELECT e FROM (SELECT CAST(string_agg(email, ',') AS INTEGER) e FROM users) t", reveal_to=0)
    assert isinstance(r[1], SqlError) and isinstance(r[0], ProtocolError)
    assert_no_user_data(r[0])


@pytest.mark.parametrize("call", [
    "getenv('HOME')", "current_setting('threads')", "version()", "error('x')",
    "nextval('s')", "setseed(0.5)", "current_database()",
])
def test_side_channel_scalar_functions_are_refused(call):
    name = call.split("(")[0].upper()
    for sql in (f"SELECT {call} AS v FROM users",
                f"SELECT count(*) FROM sales s JOIN (SELECT id, {call} AS v FROM users) u ON s.id = u.id",
                f"SELECT count(*) FROM sales s JOIN users u ON s.id = u.id WHERE {call} IS NOT NULL"):
        with pytest.raises(SqlNotSupported, match=f"function {name}"):
            build_plan(sql, [{"sales": [["id", "BIGINT"], ["amount", "DOUBLE"]]},
                             {"users": [["id", "BIGINT"], ["email", "VARCHAR"]]}])


@pytest.mark.parametrize("src", ["read_csv('/etc/hostname')", "read_parquet('x.parquet')", "glob('*')",
                                 "query_table('users')", "read_text('/etc/hostname')"])
def test_table_functions_are_refused(src):
    for sql in (f"SELECT * FROM {src}",
                f"SELECT count(*) FROM sales s JOIN (SELECT * FROM users, {src} f) u ON s.id = u.id"):
        with pytest.raises(SqlNotSupported):
            build_plan(sql, [{"sales": [["id", "BIGINT"], ["amount", "DOUBLE"]]},
                             {"users": [["id", "BIGINT"], ["email", "VARCHAR"]]}])


def test_common_functions_stay_allowed():
    sql = ("SELECT lower(email) lo, upper(email) up, substr(email, 1, 3) sb, length(email) ln, trim(name) tr, "
           "concat(name, '!') cc, coalesce(salary, 0) + abs(-1) co, round(salary / 3, 2) rd, "
           "CASE WHEN salary > 150 THEN 'hi' ELSE 'lo' END cs, CAST(salary AS INTEGER) ci, "
           "year(joined) yr, CAST(date_trunc('month', joined) AS VARCHAR) dt, strftime(joined, '%Y-%m') sf, "
           "replace(email, '@', ' at ') rp, split_part(email, '@', 2) dom, email LIKE '%.com' lk, "
           "greatest(salary, 150) gr, nullif(id, 2) nf, id % 2 md FROM users ORDER BY id")
    want = oracle(sql, T0, T1)
    r = outcomes(sql, reveal_to=0)
    assert r[1] is None
    assert_same(r[0], want, ordered=True)
    sql = ("SELECT split_part(u.email, '@', 2) dom, count(*) n, sum(s.amount * u.salary) t, "
           "max(length(trim(u.name))) m FROM sales s JOIN users u ON s.id = u.id "
           "WHERE lower(u.email) LIKE '%example%' GROUP BY dom")
    want = oracle(sql, T0, T1)
    r = outcomes(sql)
    for x in r:
        assert_same(x, want)


def test_failure_status_vocabulary():
    assert failure_status("local", SqlError("Could not convert 'alice@example.com'")) == ["local", "sql"]
    assert failure_status("plan", SqlNotSupported("x")) == ["plan", "unsupported"]
    assert failure_status("tables", RuntimeError("secret")) == ["tables", "internal"]
    assert failure_status("local", PrecisionError("2^70 exceeds")) == ["local", "precision"]
    for step in STEPS:
        for kind in KINDS:
            want = PrecisionError if kind == "precision" else ProtocolError
            assert isinstance(peer_failure([step, kind]), want)
    for bad in ("SqlError: Could not convert string 'alice@example.com'", ["local", "alice@example.com"],
                ["x", "sql"], None, {"step": "local"}):
        e = peer_failure(bad)
        assert "malformed" in str(e) and "alice" not in str(e)


# -- item 7: row-level cross-party WHERE ---------------------------------------------------

@pytest.mark.parametrize("reveal_to", [0, 1, None])
def test_row_level_cross_party_where_is_refused_at_both_parties(reveal_to):
    sql = "SELECT u.salary FROM sales s JOIN users u ON s.id = u.id WHERE s.amount * 10 > u.salary"
    r = outcomes(sql, reveal_to=reveal_to)
    for x in r:
        assert isinstance(x, SqlNotSupported), r
        assert "row-level" in str(x) and "aggregate" in str(x)


def test_cross_party_where_with_aggregates_and_one_party_where_row_level_still_run():
    sql = "SELECT count(*) n FROM sales s JOIN users u ON s.id = u.id WHERE s.amount * 10 > u.salary"
    want = oracle(sql, T0, T1)
    r = outcomes(sql)
    for x in r:
        assert_same(x, want)
    sql = "SELECT u.salary, s.amount FROM sales s JOIN users u ON s.id = u.id WHERE u.salary > 150 AND s.amount < 40"
    want = oracle(sql, T0, T1)
    r = outcomes(sql, reveal_to=1)
    assert r[0] is None
    assert_same(r[1], want)


# -- item 8a: the peer's schema ------------------------------------------------------------

def _fake_peer_hello(schema):
    """Party 1 plays a hostile peer: a well-formed hello carrying ``schema``."""
    import importlib

    q = importlib.import_module("pet.sql.query")

    sql = "SELECT count(*) n FROM sales s JOIN users u ON s.id = u.id"

    def prog(session):
        if session.party == 0:
            try:
                return psql.query(session, sql, T0)
            except PetError as exc:
                return exc
        session.exchange("sql.hello", {"proto": q._PROTO, "v": q._VERSION, "party": 1, "sql": sql,
                                       "reveal_to": None, "min_group_size": None, "duplicate_keys": "reject",
                                       "schema": schema, "expect": None, "error": None})
        return None
    return mpc.run_local(prog, timeout=60)[0]


@pytest.mark.parametrize("col", [
    ["id", "BIGINT DEFAULT (" + "9" * 90 + ")"],
    ["id", "BIGINT, evil VARCHAR"],
    ["id", "BIGINT CHECK (1 < 2)"],
    ["id", "VARCHAR GENERATED ALWAYS AS (1)"],
    ["id\x00x", "BIGINT"],
    ["x" * 300, "BIGINT"],
    ["id", "NOSUCHTYPE"],
])
def test_hostile_peer_schema_is_a_protocol_error(col):
    got = _fake_peer_hello({"users": [col]})
    assert isinstance(got, ProtocolError), got
    assert "9" * 30 not in str(got) and "x" * 30 not in str(got)


def test_check_schema_accepts_duckdb_types_and_rejects_injection():
    for t in ("INTEGER", "BIGINT", "DOUBLE", "DECIMAL(18,3)", "VARCHAR", "BOOLEAN", "DATE",
              "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "INTEGER[]", "VARCHAR[3]", "BLOB",
              "STRUCT(a INTEGER, b VARCHAR[])", "MAP(VARCHAR, DOUBLE)", "INTERVAL", "UUID"):
        assert valid_type(t), t
        check_schema({"t": [["c", t]]}, "peer", peer=True)
        empty_catalog({"t": [["c", t]]}).close()
    for t in ("INTEGER DEFAULT 1", "INTEGER)", "INTEGER, y INTEGER", "ENUM('a')", "INTEGER; SELECT 1",
              "INTEGER -- x", "DECIMAL(1,2,3)", "", "X" * 300):
        assert not valid_type(t), t
        with pytest.raises(ProtocolError):
            check_schema({"t": [["c", t]]}, "peer", peer=True)
        with pytest.raises(SqlError):
            check_schema({"t": [["c", t]]}, "tables")
    with pytest.raises(ProtocolError):
        check_schema({"t": [["c", "INTEGER"], ["C", "INTEGER"]]}, "peer", peer=True)
    with pytest.raises(ProtocolError):
        check_schema({"bad name": [["c", "INTEGER"]]}, "peer", peer=True)


def test_duckdb_connections_have_no_external_access(tmp_path):
    csv = tmp_path / "u.csv"
    USERS[["id", "email"]].to_csv(csv, index=False)
    for con in (empty_catalog({"t": [["c", "INTEGER"]]}), connect_own({"users": str(csv), "sales": SALES})):
        with pytest.raises(Exception, match="(?i)external|disabled|permission"):
            con.execute(f"SELECT * FROM read_csv('{csv}')").fetchall()
        with pytest.raises(Exception, match="(?i)locked"):
            con.execute("SET enable_external_access = true")
    con = connect_own({"users": str(csv), "sales": SALES})
    assert con.execute("SELECT count(*) FROM users JOIN sales USING (id)").fetchone()[0] == 4


# -- the peer's error category is accurate, and a one-sided failure never hangs ------------

def test_peer_that_cannot_load_its_tables_is_reported_as_such(tmp_path):
    missing = str(tmp_path / "secret-users.csv")
    r = outcomes("SELECT count(*) n FROM sales s JOIN users u ON s.id = u.id", T0, {"users": missing})
    assert isinstance(r[1], SqlError) and "no such file" in str(r[1])
    assert isinstance(r[0], ProtocolError) and "the peer failed while loading its tables" in str(r[0])
    assert "secret-users" not in str(r[0])


def test_planning_failure_at_one_party_stops_the_other(monkeypatch):
    import importlib
    import threading

    q = importlib.import_module("pet.sql.query")
    real, lock, calls = q.build_plan, threading.Lock(), []

    def flaky(sql, schemas):
        with lock:
            calls.append(1)
            first = len(calls) == 1
        if first:
            raise SqlError("this DuckDB cannot plan it: 'alice@example.com'")
        return real(sql, schemas)

    monkeypatch.setattr(q, "build_plan", flaky)
    for sql in ("SELECT count(*) n FROM sales s JOIN users u ON s.id = u.id", "SELECT count(*) n FROM users"):
        calls.clear()
        r = outcomes(sql)
        failed = [x for x in r if isinstance(x, SqlError) and "cannot plan" in str(x)]
        told = [x for x in r if isinstance(x, ProtocolError) and "the peer failed while planning the query" in str(x)]
        assert len(failed) == 1 and len(told) == 1, r
        assert_no_user_data(told[0])
