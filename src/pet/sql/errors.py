"""Errors of :mod:`pet.sql` (all subclass :class:`pet.errors.PetError`).

::

    SqlError (InputError, ValueError)     bad query for the given tables: unknown table or
    │                                     column, ambiguous name, type mismatch, bad option
    ├── SqlNotSupported                   valid SQL outside the supported subset; names the
    │                                     construct and its position (line, column)
    └── SqlMismatch (also ProtocolError)  the two parties disagree at the start: different
                                          SQL text or options, or the same table at both
"""

from __future__ import annotations

from pet.errors import InputError, PrecisionError, ProtocolError

__all__ = ["SqlError", "SqlNotSupported", "SqlMismatch", "position_of", "failure_status",
           "peer_failure"]


class SqlError(InputError):
    """The query cannot run on these tables (unknown/ambiguous name, type error, ...)."""


class SqlNotSupported(SqlError):
    """The query uses SQL that pet.sql does not support across two parties.

    ``construct`` names the construct, ``line``/``column`` locate it (1-based; None if
    unknown).
    """

    def __init__(self, construct: str, *, line: int | None = None, column: int | None = None,
                 hint: str = ""):
        self.construct = construct
        self.line = line
        self.column = column
        where = f" at line {line}, column {column}" if line is not None else ""
        msg = f"not supported: {construct}{where}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class SqlMismatch(SqlError, ProtocolError):
    """The two parties called :func:`pet.sql.query` with different SQL, options or tables."""


def position_of(node, sql: str) -> tuple[int | None, int | None]:
    """1-based (line, column) of the first token of sqlglot ``node`` in ``sql``.

    sqlglot records offsets on identifiers and literals; the node's position is the
    smallest offset among its descendants (None, None when it has none).
    """
    starts = []
    for sub in node.walk():
        meta = getattr(sub, "_meta", None) or {}
        if "start" in meta:
            starts.append(int(meta["start"]))
    if not starts:
        return None, None
    return line_col(sql, min(starts))


def line_col(sql: str, offset: int) -> tuple[int, int]:
    before = sql[:offset]
    line = before.count("\n") + 1
    col = offset - (before.rfind("\n") + 1) + 1
    return line, col


def keyword_position(sql: str, keyword: str, after: int = 0) -> tuple[int | None, int | None]:
    """1-based position of the first case-insensitive ``keyword`` in ``sql`` at or after
    offset ``after`` (None, None if absent)."""
    i = sql.lower().find(keyword.lower(), after)
    if i < 0:
        return None, None
    return line_col(sql, i)


# -- what a party tells its peer when it fails ---------------------------------------------
#
# A local failure stops both parties, but the peer must not learn *why* in words: DuckDB's
# messages quote data ("Could not convert string 'alice@example.com' to INT32"). The peer
# gets a status from these two fixed vocabularies only -- the step that failed and a
# coarse kind -- and the failing party raises its full error locally.

#: step -> how the peer's error message describes it
STEPS = {
    "tables": "loading its tables",
    "plan": "planning the query",
    "local": "running its local part of the query",
}

#: kind -> how the peer's error message describes it
KINDS = {
    "sql": "an SQL error",
    "unsupported": "SQL outside the supported subset",
    "input": "invalid input or values",
    "precision": "a value no representation holds",
    "internal": "an unexpected error",
}


def failure_status(step: str, exc: BaseException) -> list:
    """``[step, kind]``: all a party sends its peer about its own failure ``exc`` (never the
    exception text)."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    if isinstance(exc, SqlNotSupported):
        kind = "unsupported"
    elif isinstance(exc, SqlError):
        kind = "sql"
    elif isinstance(exc, PrecisionError):
        kind = "precision"
    elif isinstance(exc, InputError):
        kind = "input"
    else:
        kind = "internal"
    return [step, kind]


def peer_failure(status) -> ProtocolError | PrecisionError:
    """The error this party raises when the peer reports failure ``status``: a fixed
    sentence, or 'malformed' if ``status`` is outside the vocabulary. A peer's
    ``precision`` failure is a :class:`~pet.errors.PrecisionError` here too, so a value no
    representation holds is refused with the same error class at both parties."""
    if not (isinstance(status, list) and len(status) == 2 and status[0] in STEPS and status[1] in KINDS):
        return ProtocolError("malformed failure status from the peer")
    step, kind = status
    if kind == "precision":
        return PrecisionError(f"the peer refused while {STEPS[step]}: {KINDS[kind]} (its message stays with "
                              "the peer; docs/sql.md, 'Precision and ranges')")
    return ProtocolError(f"the peer failed while {STEPS[step]} ({KINDS[kind]}); its error message stays "
                         "with the peer (see its log)")
