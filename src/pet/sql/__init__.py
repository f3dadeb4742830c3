"""Secure SQL across two parties' tables.

Will hold ``query(session, sql, tables, *, reveal_to=None)``: the join by PSI, local work in
DuckDB, cross-party expressions and aggregates in MPC.
"""
