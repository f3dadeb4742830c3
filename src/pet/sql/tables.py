"""This party's tables: loading, schemas, and the plaintext DuckDB connection over them.

A table is a pandas DataFrame, or a path to a ``.csv`` or ``.parquet`` file (read by
DuckDB with type inference). Table names are SQL identifiers, compared case-insensitively
like DuckDB does. A schema is ``{table: [(column, duckdb_type), ...]}`` -- names and types
only, which is what the parties exchange at the start of a query.
"""

from __future__ import annotations

import os
import re

from pet.errors import PetTypeError
from pet.sql.errors import SqlError

__all__ = ["connect_own", "schema_of", "empty_catalog", "quote", "check_schema"]

_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ,()\[\]]{0,120}$")
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
    con.execute("SET enable_external_access = false")
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


def check_schema(schema, who: str) -> dict:
    """Validate a schema (ours or the peer's) before it reaches any DDL."""
    if not isinstance(schema, dict):
        raise SqlError(f"{who}: malformed schema")
    for name, cols in schema.items():
        _check_name(name)
        if not isinstance(cols, list) or not cols:
            raise SqlError(f"{who}: table {name!r} has no columns")
        for col in cols:
            if not (isinstance(col, list) and len(col) == 2 and isinstance(col[0], str)
                    and isinstance(col[1], str) and _TYPE_RE.match(col[1])):
                raise SqlError(f"{who}: malformed column {str(col)[:80]} in table {name!r}")
    return schema


def empty_catalog(schemas: dict):
    """A DuckDB connection with empty tables of the given schemas (both parties'): used to
    bind and type-check the query identically on both sides, without any data."""
    import duckdb

    con = duckdb.connect(":memory:")
    for name, cols in schemas.items():
        body = ", ".join(f"{quote(c)} {t}" for c, t in cols)
        try:
            con.execute(f"CREATE TABLE {quote(name)} ({body})")
        except Exception as exc:  # a type DuckDB does not know
            raise SqlError(f"table {name!r}: cannot declare its schema ({exc})") from None
    return con
