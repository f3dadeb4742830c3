"""``pet.sql.query``: the entry point both parties call.

1. **Hello.** The parties exchange the SQL text, the options and their table schemas
   (names and types only). A different SQL text or option, or the same table name at both
   parties, is a :class:`~pet.sql.errors.SqlMismatch` on both sides. The peer's schema
   must pass :func:`pet.sql.tables.check_schema` (type grammar, names) before any DDL,
   else ProtocolError. A party that cannot load its tables sends only the status
   ``["tables", kind]`` (:func:`pet.sql.errors.failure_status`).
2. **Plan** (:mod:`pet.sql.plan`), identical at both parties; option checks
   (``min_group_size`` needs groups). A party whose planning fails sends
   ``["plan", kind]`` in place of the local step's ok, so the peer never waits.
3. **Execute**: a query over one party's tables runs whole in that party's DuckDB and the
   result is sent to the receiver(s); a cross-party query runs
   :func:`pet.sql.execute.run_join`.
4. **Finish** at the receiver(s): typed DataFrame, then ORDER BY / LIMIT / OFFSET.

What each party learns: see :mod:`pet.sql.execute` (and docs/sql.md); in the hello, the
peer's table names, column names and types; if the peer fails, that it failed, at which
step and a coarse kind (fixed vocabularies, never the error text).
"""

from __future__ import annotations

import numpy as np

from pet._validate import check_receiver
from pet.errors import InputError, PetError, PetTypeError, ProtocolError
from pet.sql.errors import SqlError, SqlMismatch, SqlNotSupported, failure_status, peer_failure
from pet.sql.plan import build_plan, kind_of
from pet.sql.tables import check_schema, connect_own, quote, schema_of

__all__ = ["query"]

_PROTO = "pet.sql"
_VERSION = 1
_DUP_MODES = ("reject", "reveal_counts")


def _check_args(session, sql, reveal_to, min_group_size, duplicate_keys):
    if not hasattr(session, "party") or not hasattr(session, "exchange"):
        raise PetTypeError("session must be a pet.mpc.Session")
    if not isinstance(sql, str) or not sql.strip():
        raise SqlError("sql must be a non-empty string")
    check_receiver(reveal_to, "reveal_to")
    if min_group_size is not None and (isinstance(min_group_size, bool) or not isinstance(min_group_size, int)
                                       or min_group_size < 1):
        raise InputError(f"min_group_size must be None or an int >= 1, got {min_group_size!r}")
    if duplicate_keys not in _DUP_MODES:
        raise InputError(f"duplicate_keys must be one of {_DUP_MODES}, got {duplicate_keys!r}")


def _split_schema_bounds(schemas):
    """``schemas`` with ``{column: (type, (lo, hi))}`` entries split into plain schemas and
    declared bounds ``{"table.column": (lo, hi)}``."""
    if not isinstance(schemas, dict):
        return schemas, {}
    plain, bounds = {}, {}
    for table, cols in schemas.items():
        if isinstance(cols, dict):
            out = {}
            for c, t in cols.items():
                if isinstance(t, (tuple, list)) and len(t) == 2 and isinstance(t[0], str):
                    out[c] = t[0]
                    bounds[f"{table}.{c}"] = t[1]
                else:
                    out[c] = t
            plain[table] = out
        else:
            plain[table] = cols
    return plain, bounds


def _expected(schemas) -> dict | None:
    """``schemas`` option as ``{table: [[column, TYPE], ...]}`` (None if not given)."""
    if schemas is None:
        return None
    if not isinstance(schemas, dict):
        raise PetTypeError("schemas must be a dict {table: {column: type}}")
    out = {}
    for table, cols in schemas.items():
        if isinstance(cols, dict):
            cols = list(cols.items())
        if not isinstance(table, str) or not isinstance(cols, (list, tuple)):
            raise PetTypeError(f"schemas[{table!r}] must map column names to DuckDB type names")
        out[table.lower()] = [[str(c), str(t).upper()] for c, t in cols]
    return out


def _check_expected(expect, actual: dict, who: str) -> None:
    """Every table in ``expect`` exists in ``actual`` with exactly these columns and types."""
    if expect is None:
        return
    if not isinstance(expect, dict):
        raise ProtocolError("malformed schema expectation from the peer")
    for table, cols in expect.items():
        if table not in actual:
            raise SqlMismatch(f"{who} declared table {table!r}, which neither party passed")
        got = [[c, t.upper()] for c, t in actual[table]]
        want = [[str(c), str(t).upper()] for c, t in cols]
        if got != want:
            raise SqlMismatch(f"table {table!r} does not have the schema {who} declared: "
                              f"declared {want}, actual {got}")


def canonical_sql(sql: str) -> str:
    """The form of ``sql`` the parties compare: sqlglot's DuckDB rendering (whitespace,
    keyword case and a trailing newline or semicolon do not matter; identifiers and
    literals do). Text sqlglot cannot parse is compared with its whitespace collapsed."""
    import sqlglot

    try:
        return sqlglot.parse_one(sql, read="duckdb").sql(dialect="duckdb")
    except Exception:  # noqa: BLE001 - planning reports the parse error with its position
        return " ".join(sql.split())


def _check_same_sql(sql: str, peer_sql) -> None:
    """SqlMismatch unless both parties' SQL has the same canonical form; the message shows
    both forms' SHA-256 (first 12 hex digits) and where ours first differs."""
    import hashlib

    if not isinstance(peer_sql, str):
        raise SqlMismatch("the peer sent no SQL text in its hello")
    ours, theirs = canonical_sql(sql), canonical_sql(peer_sql)
    if ours == theirs:
        return
    digest = [hashlib.sha256(t.encode()).hexdigest()[:12] for t in (ours, theirs)]
    at = next((i for i, (x, y) in enumerate(zip(ours, theirs)) if x != y), min(len(ours), len(theirs)))
    raise SqlMismatch(f"the two parties passed different SQL (normalized SQL hash: ours {digest[0]}, peer "
                      f"{digest[1]}); they first differ at character {at + 1} of the normalized SQL, here: "
                      f"{ours[max(0, at - 20):at + 20]!r}")


def _hello(session, sql, schema, reveal_to, min_group_size, duplicate_keys, error=None, expect=None, bounds=None,
           dp=None):
    mine = {"proto": _PROTO, "v": _VERSION, "party": session.party, "sql": sql, "reveal_to": reveal_to,
            "min_group_size": min_group_size, "duplicate_keys": duplicate_keys, "schema": schema,
            "bounds": bounds or {}, "dp": None if dp is None else dp.wire(),
            "expect": expect, "error": None if error is None else failure_status("tables", error)}
    peer = session.exchange("sql.hello", mine)
    if error is not None:
        raise error
    if not isinstance(peer, dict) or peer.get("proto") != _PROTO:
        raise ProtocolError("the peer is not running pet.sql (its hello is not a pet.sql hello)")
    if peer.get("error") is not None:
        raise peer_failure(peer.get("error"))
    if peer.get("v") != _VERSION:
        raise SqlMismatch(f"pet.sql protocol version differs: ours {_VERSION}, peer {peer.get('v')!r}")
    _check_same_sql(sql, peer.get("sql"))
    for key in ("reveal_to", "min_group_size", "duplicate_keys", "bounds", "dp"):
        if peer.get(key) != mine[key]:
            raise SqlMismatch(f"the parties disagree on {key}: ours {mine[key]!r}, peer {str(peer.get(key))[:40]!r}")
    theirs = check_schema(peer.get("schema"), "the peer's tables", peer=True)
    both = sorted(set(schema) & set(theirs))
    if both:
        raise SqlMismatch(f"table(s) {both} passed by both parties; each table belongs to one party")
    union = {**schema, **theirs}
    first, second = (expect, peer.get("expect")) if session.party == 0 else (peer.get("expect"), expect)
    _check_expected(first, union, "party 0")
    _check_expected(second, union, "party 1")
    return theirs


def query(session, sql, tables, *, reveal_to=None, min_group_size=None, duplicate_keys="reject",
          schemas=None, psi_options=None, bounds=None, dp=None):
    """Run ``sql`` over this party's ``tables`` and the peer's; both parties call it.

    Parameters
    ----------
    session : :class:`pet.mpc.Session` (with a dealer) -- its channel also carries the PSI.
    sql : the same SELECT text at both parties (DuckDB dialect).
    tables : ``{name: DataFrame or .csv/.parquet path}`` -- only this party's tables; a
        table is owned by the party that passes it.
    reveal_to : None (both parties get the result), 0 or 1 (the other gets None).
    min_group_size : suppress, inside MPC, groups with fewer joined rows; the number of
        suppressed groups is in ``result.attrs["suppressed_groups"]``.
    duplicate_keys : ``"reject"`` (default) rejects a one-to-many join;
        ``"reveal_counts"`` runs it, telling the unique side how many rows each matching
        key has at the other side.
    schemas : optional ``{table: {column: duckdb_type}}`` this party expects (its own and
        the peer's tables, like PETSQL's config); both parties' expectations are checked
        against the actual schemas at the start, a difference is a SqlMismatch on both sides.
    psi_options : extra keyword arguments for :func:`pet.psi.align` (e.g. ``workers``).
    bounds : optional ``{"table.column": (lo, hi)}``, identical at both parties: declared
        ranges of columns that enter MPC; their magnitude class is not exchanged (the
        owner checks its rows lie within them). ``schemas`` entries may also declare
        them as ``{column: (type, (lo, hi))}``.
    dp : optional :class:`pet.sql.DP`: release noisy COUNT/SUM/AVG under differential
        privacy (the same epsilon, delta, bounds and public_groups at both parties; each
        its own ledger and block), charged to this party's ledger before the reveal;
        ``attrs["dp"]`` describes the noise (docs/sql.md, "Differential privacy").

    Returns
    -------
    pandas.DataFrame at the receiver(s), else None. ``attrs["pet_sql"]`` holds sizes
    (local rows, intersection, joined rows, groups) and ``attrs["suppressed_groups"]``.

    Raises
    ------
    SqlNotSupported, SqlError, SqlMismatch (see :mod:`pet.sql.errors`); PrecisionError (at
    both parties, before any MPC work) for a value no representation holds (docs/sql.md).
    """
    from pet.sql.ranges import normalize_bounds

    schemas, declared = _split_schema_bounds(schemas)
    bounds = normalize_bounds({**declared, **(bounds or {})})
    _check_args(session, sql, reveal_to, min_group_size, duplicate_keys)
    if dp is not None:
        from pet.sql.dp import DP

        if not isinstance(dp, DP):
            raise PetTypeError("dp must be a pet.sql.DP")
    me = session.party
    error = con = mine = None
    expect = _expected(schemas)
    try:
        try:
            con = connect_own(tables)
            mine = check_schema(schema_of(con, list(tables)), "tables")
        except PetError as exc:  # tell the peer before raising, so it does not wait for us
            error = exc
        theirs = _hello(session, sql, mine, reveal_to, min_group_size, duplicate_keys, error, expect, bounds, dp)
        schemas = [mine, theirs] if me == 0 else [theirs, mine]
        plan = _plan(session, sql, schemas, min_group_size, dp, duplicate_keys)
        if dp is not None:
            return _query_dp(session, plan, con, dp, reveal_to, min_group_size, duplicate_keys, psi_options, bounds)
        receivers = [0, 1] if reveal_to is None else [reveal_to]
        info = {"plan": plan.kind}
        if plan.kind == "local":
            cols = _run_local_plan(session, plan, con, receivers)
            if cols is None:
                return None
            return _finish(plan, cols, info, ordered=True)
        from pet.sql.execute import run_join

        cols = run_join(session, plan, con, receivers=receivers, min_group_size=min_group_size,
                        duplicate_keys=duplicate_keys, psi_options=dict(psi_options or {}), info=info,
                        bounds=bounds)
        if cols is None:
            return None
        return _finish(plan, cols, info, ordered=False)
    finally:  # a DuckDB database holds native threads until closed: close it now, not at GC
        if con is not None:
            con.close()


def _query_dp(session, plan, con, dp, reveal_to, min_group_size, duplicate_keys, psi_options, bounds):
    """A DP query (:mod:`pet.sql.dp`): budget on both ledgers first, then the join and the
    noisy release; a failure before the opening releases this party's claim."""
    from pet.sql.dp import start
    from pet.sql.execute import run_join

    run = start(session, plan, dp, min_group_size)
    receivers = [0, 1] if reveal_to is None else [reveal_to]
    info = {"plan": plan.kind}
    try:
        cols = run_join(session, plan, con, receivers=receivers, min_group_size=min_group_size,
                        duplicate_keys=duplicate_keys, psi_options=dict(psi_options or {}), info=info,
                        bounds=bounds, dp=run)
    except BaseException:
        run.budget.abort()
        raise
    if cols is None:
        return None
    df = _finish(plan, cols, info, ordered=False)
    df.attrs["dp"] = info["dp"]
    return df


def _plan(session, sql, schemas, min_group_size, dp=None, duplicate_keys="reject"):
    """:func:`build_plan` plus the option checks. Both parties plan on the same inputs, so
    they normally fail alike; should only one fail (e.g. a different DuckDB version), it
    sends the fixed status ``["plan", kind]`` in place of the ok of the next step (the
    local step's status exchange, which every plan starts with), so the peer stops too
    instead of waiting. No extra round."""
    from pet.sql.execute import tell_peer_failed

    try:
        plan = build_plan(sql, schemas) if dp is None else build_plan(sql, schemas, dp=True)
        _check_plan_options(plan, min_group_size)
        if dp is not None:
            from pet.sql.dp import check_duplicate_keys, plan_dp

            check_duplicate_keys(duplicate_keys)
            plan_dp(plan, dp, min_group_size)
    except Exception as exc:  # noqa: BLE001 - the peer must not wait for us
        tell_peer_failed(session, "local", failure_status("plan", exc))
        raise
    return plan


def _check_plan_options(plan, min_group_size) -> None:
    """``min_group_size`` needs groups: refuse it on a query over one party's tables and on
    a row-level join (no GROUP BY or aggregates), where every joined row would reach the
    receiver whatever the option says."""
    if min_group_size is None or min_group_size <= 1:
        return
    if plan.kind == "local":
        raise SqlNotSupported("min_group_size on a query over one party's tables",
                              hint="add HAVING COUNT(*) >= k to the query")
    if plan.row_level:
        raise SqlNotSupported(f"min_group_size={min_group_size} on a row-level query (no GROUP BY or "
                              "aggregates)", hint="every joined row would be revealed; aggregate with "
                              "GROUP BY, or leave out min_group_size")


def _run_local_plan(session, plan, con, receivers):
    from pet.sql.execute import run_checked
    from pet.sql.local import frame_from_wire, frame_to_wire, run_local_query

    me = session.party
    df = None
    if me == plan.owner:
        df = run_checked(session, "local", lambda: run_local_query(con, plan.local_sql[plan.owner]))
    else:
        run_checked(session, "local", lambda: None)
    other = 1 - plan.owner
    if other in receivers:
        if me == plan.owner:
            session.send_to_peer("sql.result", frame_to_wire(df))
        else:
            got = session.recv_from_peer("sql.result")
            if not isinstance(got, list) or len(got) != len(plan.out_names):
                raise ProtocolError("malformed result from the peer")
            return frame_from_wire(got)
    if me not in receivers:
        return None
    return [df.iloc[:, i].to_numpy() for i in range(df.shape[1])]


def _typed(values, duck_type):
    import pandas as pd

    kind = kind_of(duck_type)
    arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    isnull = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in arr.tolist()], dtype=bool) \
        if arr.dtype == object else (np.isnan(arr) if arr.dtype.kind == "f" else np.zeros(len(arr), bool))
    if kind == "int":
        if isnull.any():
            return pd.array([None if m else int(round(float(v))) for v, m in zip(arr.tolist(), isnull)], dtype="Int64")
        return np.rint(arr.astype(np.float64)).astype(np.int64) if arr.dtype.kind in "fO" else arr.astype(np.int64)
    if kind in ("int", "float"):
        return np.array([np.nan if m else float(v) for v, m in zip(arr.tolist(), isnull)], dtype=np.float64)
    if kind == "bool":
        if isnull.any():
            return pd.array([None if m else bool(v) for v, m in zip(arr.tolist(), isnull)], dtype="boolean")
        return arr.astype(bool)
    return arr


def _dedupe(names) -> list:
    """Output names as DuckDB's DataFrames have them: a repeated name gets ``_1``, ``_2``..."""
    seen, out = {}, []
    for n in names:
        if n in seen:
            seen[n] += 1
            cand = f"{n}_{seen[n]}"
            while cand in seen:
                seen[n] += 1
                cand = f"{n}_{seen[n]}"
            seen[cand] = 0
            out.append(cand)
        else:
            seen[n] = 0
            out.append(n)
    return out


def _finish(plan, cols, info, *, ordered):
    """The receiver's DataFrame: typed columns, then ORDER BY / LIMIT / OFFSET."""
    import duckdb
    import pandas as pd

    data = {f"c{i}": _typed(c, t) for i, (c, t) in enumerate(zip(cols, plan.out_types))}
    df = pd.DataFrame(data)
    if not ordered:
        terms = [f"{quote(f'c{i}')} {'DESC' if d else 'ASC'} NULLS {'FIRST' if nf else 'LAST'}"
                 for i, d, nf in plan.order]
        if not terms:
            terms = [f"{quote(f'c{i}')} ASC NULLS LAST" for i in range(df.shape[1])]
        text = "SELECT * FROM df ORDER BY " + ", ".join(terms)
        if plan.limit is not None:
            text += f" LIMIT {int(plan.limit)}"
        if plan.offset:
            text += f" OFFSET {int(plan.offset)}"
        con = duckdb.connect(":memory:")
        con.register("df", df)
        df = con.execute(text).df()
        con.close()
    df.columns = _dedupe(plan.out_names)
    info = {k: v for k, v in info.items()}
    df.attrs["pet_sql"] = info
    df.attrs["suppressed_groups"] = int(info.get("suppressed_groups", 0) or 0)
    return df
