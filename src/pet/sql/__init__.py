"""Secure SQL across two parties' tables.

``query(session, sql, tables, *, reveal_to=None, min_group_size=None,
duplicate_keys="reject", schemas=None, psi_options=None) -> pandas.DataFrame | None``

Each party passes the same SELECT text and only its own tables. Everything that touches
one party's columns runs in that party's DuckDB in plaintext; the two parties' tables are
joined by ECDH-PSI (:mod:`pet.psi`); cross-party expressions, WHERE masks, GROUP BY
aggregates (SUM, COUNT, AVG, MIN, MAX), HAVING and ``min_group_size`` run in MPC
(:mod:`pet.mpc`); ORDER BY / LIMIT apply after the reveal.

Module map::

    errors   SqlError, SqlNotSupported, SqlMismatch
    tables   this party's tables in DuckDB, schemas
    plan     parse (sqlglot), bind (DuckDB on empty tables), ownership, pushdown split
    local    the plaintext DuckDB step
    values   public / owned / shared values and IR evaluation
    execute  PSI join, groups, aggregates, HAVING, min_group_size
    reveal   opening only the kept groups to the receiver(s)
    dp       differentially private release: clamping, both parties' noise, budget
    query    the entry point

Leakage per query shape: docs/sql.md and :mod:`pet.sql.execute`.
"""

from pet.sql.dp import DP
from pet.sql.errors import SqlError, SqlMismatch, SqlNotSupported
from pet.sql.query import query

__all__ = ["query", "DP", "SqlError", "SqlNotSupported", "SqlMismatch"]
