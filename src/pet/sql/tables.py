"""This party's tables: loading, schemas, and the plaintext DuckDB connection over them.

A table is a pandas DataFrame, or a path to a ``.csv`` or ``.parquet`` file (read by
DuckDB with type inference). Table names are SQL identifiers, compared case-insensitively
like DuckDB does. A schema is ``{table: [(column, duckdb_type), ...]}`` -- names and types
only, which is what the parties exchange at the start of a query.
"""

from __future__ import annotations

import os
import re

from pet.errors import PetTypeError, ProtocolError
from pet.sql.errors import SqlError

__all__ = ["connect_own", "schema_of", "empty_catalog", "quote", "check_schema", "valid_type"]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def quote(name: str) -> str:
    """A DuckDB-quoted identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _check_name(name) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SqlError(f"tables: table name {name!r} must be an identifier (letters, digits, _; "
                       "not starting with a digit)")
    return name


def connect_own(tables: dict):
    """A DuckDB connection holding this party's ``tables`` (DataFrames registered as
    views, files loaded with ``read_csv_auto`` / ``read_parquet``). File system access is
    then disabled, so a query can read nothing but these tables."""
    import duckdb
    import pandas as pd

    if not isinstance(tables, dict):
        raise PetTypeError(f"tables must be a dict {{name: DataFrame or path}}, got {type(tables).__name__}")
    seen = {}
    con = duckdb.connect(":memory:")
    for name, table in tables.items():
        _check_name(name)
        low = name.lower()
        if low in seen:
            raise SqlError(f"tables: names {seen[low]!r} and {name!r} differ only in case")
        seen[low] = name
        if isinstance(table, pd.DataFrame):
            if len(set(map(str, table.columns))) != len(table.columns):
                raise SqlError(f"tables[{name!r}]: duplicate column names")
            con.register(f"__pet_df_{low}", table)
            con.execute(f"CREATE VIEW {quote(low)} AS SELECT * FROM {quote('__pet_df_' + low)}")
        elif isinstance(table, (str, os.PathLike)):
            path = os.fspath(table)
            if not os.path.isfile(path):
                raise SqlError(f"tables[{name!r}]: no such file {path!r}")
            lit = "'" + path.replace("'", "''") + "'"
            if path.lower().endswith(".csv"):
                src = f"read_csv_auto({lit}, header=true)"
            elif path.lower().endswith((".parquet", ".pq")):
                src = f"read_parquet({lit})"
            else:
                raise SqlError(f"tables[{name!r}]: expected a .csv or .parquet file, got {path!r}")
            con.execute(f"CREATE TABLE {quote(low)} AS SELECT * FROM {src}")
        else:
            raise PetTypeError(f"tables[{name!r}] must be a pandas DataFrame or a .csv/.parquet path, "
                               f"got {type(table).__name__}")
    # the tables are loaded: from now on no file, network or extension access, and user
    # SQL cannot turn it back on
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def schema_of(con, names) -> dict:
    """``{table: [[column, type], ...]}`` of the views ``names`` in ``con``."""
    out = {}
    for name in names:
        rows = con.execute(f"DESCRIBE {quote(name.lower())}").fetchall()
        # an empty object column has DuckDB type "NULL": declare it VARCHAR
        out[name.lower()] = [[str(r[0]), "VARCHAR" if str(r[1]).strip('"') == "NULL" else str(r[1])]
                             for r in rows]
    return out


#: DuckDB type names a column may have (what DESCRIBE prints, and common aliases)
_BASE_TYPES = frozenset("""
BOOLEAN BOOL LOGICAL TINYINT INT1 SMALLINT INT2 SHORT INTEGER INT INT4 SIGNED BIGINT INT8 LONG
HUGEINT INT128 UTINYINT USMALLINT UINTEGER UBIGINT UHUGEINT VARINT BIGNUM
FLOAT FLOAT4 REAL DOUBLE FLOAT8 DECIMAL NUMERIC
VARCHAR TEXT STRING CHAR BPCHAR NVARCHAR BLOB BYTEA BINARY VARBINARY BIT BITSTRING UUID JSON
DATE TIME TIMETZ TIME_NS TIMESTAMP DATETIME TIMESTAMPTZ TIMESTAMP_S TIMESTAMP_MS TIMESTAMP_US
TIMESTAMP_NS INTERVAL
""".split())
_TZ_TYPES = ("TIME", "TIMESTAMP")
_TYPE_TOKEN = re.compile(r'\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\d{1,4})|("(?:[^"\x00-\x1f]|""){1,64}")|([(),\[\]]))')
_MAX_TYPE_LEN = 256
_MAX_DEPTH = 8
_MAX_TABLES = 1000
_MAX_COLUMNS = 10000
_MAX_NAME_LEN = 255


class _BadType(Exception):
    pass


def _type_tokens(text: str) -> list:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TYPE_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _BadType()
        out.append(m.group(m.lastindex))
        pos = m.end()
    return out


def _parse_type(tok: list, i: int, depth: int) -> int:
    """Index after the type starting at ``tok[i]`` (grammar: a base type with optional
    ``(p[, s])`` and ``WITH TIME ZONE``, or ``STRUCT``/``UNION(name type, ...)``,
    ``MAP(type, type)``; then any ``[]`` / ``[n]`` suffixes)."""
    if depth > _MAX_DEPTH or i >= len(tok):
        raise _BadType()
    word = tok[i].upper()

    def expect(j, what):
        if j >= len(tok) or tok[j] != what:
            raise _BadType()
        return j + 1

    if word in ("STRUCT", "UNION"):
        i = expect(i + 1, "(")
        while True:
            name = tok[i] if i < len(tok) else ""
            if not (name[:1] == '"' or re.match(r"^[A-Za-z_]", name)):
                raise _BadType()
            i = _parse_type(tok, i + 1, depth + 1)
            if i < len(tok) and tok[i] == ",":
                i += 1
                continue
            i = expect(i, ")")
            break
    elif word == "MAP":
        i = expect(i + 1, "(")
        i = _parse_type(tok, i, depth + 1)
        i = expect(i, ",")
        i = _parse_type(tok, i, depth + 1)
        i = expect(i, ")")
    elif word in _BASE_TYPES:
        i += 1
        if i < len(tok) and tok[i] == "(":
            i += 1
            if i >= len(tok) or not tok[i].isdigit():
                raise _BadType()
            i += 1
            if i < len(tok) and tok[i] == ",":
                i += 1
                if i >= len(tok) or not tok[i].isdigit():
                    raise _BadType()
                i += 1
            i = expect(i, ")")
        if word in _TZ_TYPES and i < len(tok) and tok[i].upper() == "WITH":
            if [t.upper() for t in tok[i:i + 3]] != ["WITH", "TIME", "ZONE"]:
                raise _BadType()
            i += 3
    else:
        raise _BadType()
    while i < len(tok) and tok[i] == "[":
        i += 1
        if i < len(tok) and tok[i].isdigit():
            i += 1
        i = expect(i, "]")
    return i


def valid_type(text) -> bool:
    """Whether ``text`` is a DuckDB column type of the allowed grammar (nothing else can
    reach ``CREATE TABLE``)."""
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_TYPE_LEN:
        return False
    try:
        tok = _type_tokens(text)
        return bool(tok) and _parse_type(tok, 0, 0) == len(tok)
    except _BadType:
        return False


def valid_column_name(name) -> bool:
    """A column name: 1..255 characters, no control characters (quoted in all SQL)."""
    return (isinstance(name, str) and 0 < len(name) <= _MAX_NAME_LEN
            and not any(ord(ch) < 32 or ord(ch) == 127 for ch in name))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "...'"


def check_schema(schema, who: str, *, peer: bool = False) -> dict:
    """Validate a schema (ours, or the peer's with ``peer=True``) before it reaches any
    DDL: table names are identifiers, column names printable and distinct (ignoring
    case), types of the DuckDB type grammar above (:func:`valid_type`), within size
    bounds. A bad peer schema is a ProtocolError quoting at most a few characters."""
    def bad(msg):
        return ProtocolError(f"{who}: {msg}") if peer else SqlError(f"{who}: {msg}")

    if not isinstance(schema, dict):
        raise bad("malformed schema")
    if len(schema) > _MAX_TABLES:
        raise bad(f"more than {_MAX_TABLES} tables")
    for name, cols in schema.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise bad(f"table name {_short(name)} is not an identifier")
        if not isinstance(cols, list) or not cols or len(cols) > _MAX_COLUMNS:
            raise bad(f"table {name!r} has no columns or more than {_MAX_COLUMNS}")
        seen = set()
        for col in cols:
            if not (isinstance(col, list) and len(col) == 2 and valid_column_name(col[0])):
                raise bad(f"malformed column {_short(col)[:40]} in table {name!r}")
            if not valid_type(col[1]):
                raise bad(f"column {_short(col[0])} of table {name!r} has an unsupported type "
                          f"{_short(col[1])}")
            low = col[0].lower()
            if low in seen:
                raise bad(f"table {name!r} has the column {_short(col[0])} twice (names ignore case)")
            seen.add(low)
    return schema


def _connect_no_external():
    """An in-memory DuckDB connection without file, network or extension access, its
    configuration locked."""
    import duckdb

    return duckdb.connect(":memory:", config={"enable_external_access": False,
                                              "lock_configuration": True})


def empty_catalog(schemas: dict):
    """A DuckDB connection with empty tables of the given schemas (both parties'): used to
    bind and type-check the query identically on both sides, without any data. The schemas
    must have passed :func:`check_schema`; the connection has no external access."""
    con = _connect_no_external()
    for name, cols in schemas.items():
        body = ", ".join(f"{quote(c)} {t}" for c, t in cols)
        try:
            con.execute(f"CREATE TABLE {quote(name)} ({body})")
        except Exception:  # a type this DuckDB does not know
            raise SqlError(f"table {name!r}: this DuckDB cannot declare its schema") from None
    return con
