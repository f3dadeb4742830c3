"""``pet sql``: secure SQL over this party's tables and the peer's, over TCP (optionally TLS).

Start a dealer, then both parties with the same query (either may start first)::

    pet dealer --listen 127.0.0.1:9100
    pet sql --party 0 --listen 127.0.0.1:9000 --dealer 127.0.0.1:9100 \\
        --table sales=sales.csv --query "SELECT ..." --output result.csv
    pet sql --party 1 --connect 127.0.0.1:9000 --dealer 127.0.0.1:9100 \\
        --table users=users.parquet --query "SELECT ..." --output result.csv

Each ``--table NAME=PATH`` (CSV or Parquet) is a table of this party. The receiver(s)
(``--reveal-to``, default both) write the result atomically (temporary file + rename, CSV
or Parquet by extension); the other party writes nothing. What each party learns:
docs/sql.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pet._io import write_table
from pet.cli._net import add_tls_arguments, open_peer, tls_from_args
from pet.cli._source import add_source_arguments, open_source
from pet.errors import InputError

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sql",
        help="secure SQL across the two parties' tables (PSI join, aggregates in MPC)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--party", type=int, choices=(0, 1), required=True, help="this party's number")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen", metavar="HOST:PORT", help="wait for the peer on this address")
    where.add_argument("--connect", metavar="HOST:PORT", help="connect to the peer at this address")
    add_source_arguments(p)
    p.add_argument("--table", action="append", default=[], metavar="NAME=PATH",
                   help="a table of this party (CSV or Parquet); repeat for several")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", help="the SELECT (the same text at both parties)")
    q.add_argument("--query-file", help="file holding the SELECT")
    p.add_argument("--output", help="result file (CSV or Parquet by extension); needed at a receiver")
    p.add_argument("--reveal-to", default="both", choices=("both", "0", "1"),
                   help="who gets the result (default both)")
    p.add_argument("--min-group-size", type=int, default=None, metavar="K",
                   help="suppress groups with fewer than K joined rows (inside MPC)")
    p.add_argument("--duplicate-keys", default="reject", choices=("reject", "reveal_counts"),
                   help="one-to-many joins: reject (default) or reveal per-key row counts to the unique side")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                   help="how long to wait for the peer and the dealer (default 120)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="receive timeout once connected (default 600)")
    add_tls_arguments(p)
    p.set_defaults(func=run)


def _tables(specs) -> dict:
    tables = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--table: expected NAME=PATH, got {spec!r}")
        if name in tables:
            raise InputError(f"--table: {name!r} given twice")
        tables[name] = path
    return tables






def run(args) -> int:
    from pet.mpc import Session
    from pet.sql import query

    tables = _tables(args.table)
    if not tables:
        raise InputError("give at least one --table NAME=PATH")
    sql = args.query
    if args.query_file:
        if not Path(args.query_file).is_file():
            raise InputError(f"--query-file: no such file {args.query_file!r}")
        sql = Path(args.query_file).read_text()
    reveal_to = None if args.reveal_to == "both" else int(args.reveal_to)
    receives = reveal_to in (None, args.party)
    if receives and not args.output:
        raise InputError("--output is required at a party that receives the result")
    tls = tls_from_args(args, f"party{args.party}")
    channel = open_peer(args, tls, "sql")
    start = time.perf_counter()
    with channel, open_source(args, tls) as source:
        with Session(args.party, channel, **source) as session:
            result = query(session, sql, tables, reveal_to=reveal_to, min_group_size=args.min_group_size,
                           duplicate_keys=args.duplicate_keys)
        stats = channel.stats
    seconds = time.perf_counter() - start
    traffic = f"{seconds:.2f} s, sent {stats.bytes_sent:,} B, received {stats.bytes_received:,} B"
    if result is None:
        print(f"pet sql: party {args.party} does not receive the result (reveal-to {args.reveal_to}); "
              f"no output written ({traffic})")
        return 0
    write_table(result, args.output)
    supp = result.attrs.get("suppressed_groups", 0)
    extra = f"; {supp} group(s) suppressed by --min-group-size" if supp else ""
    print(f"pet sql: {len(result)} row(s) written to {args.output}{extra} ({traffic})")
    return 0
