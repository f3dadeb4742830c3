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
docs/sql.md. ``--buckets B [--cluster local:N | tcp://HOST:PORT]`` runs the join's PSI
bucketed on this party's Dask cluster (docs/scale-out.md). ``--psi-protocol ecdh`` joins
by ECDH instead of KKRT PSI (both parties alike; with --buckets, the protocol of every bucket).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pet._io import write_table
from pet.cli._checks import check_input_file, check_output_path
from pet.cli._net import add_tls_arguments, check_addresses, open_peer, tls_from_args
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
    p.add_argument("--psi-protocol", default=None, choices=("ecdh", "kkrt"),
                   help="PSI of the join, or of every bucket with --buckets (default kkrt, an OT-extension "
                        "OPRF; ecdh gives the same result); both parties must pass the same")
    d = p.add_argument_group("differential privacy (docs/sql.md, 'Differential privacy')")
    d.add_argument("--epsilon", type=float, default=None, metavar="E",
                   help="release noisy COUNT/SUM/AVG under (E, D)-DP (the same at both parties)")
    d.add_argument("--delta", type=float, default=0.0, metavar="D", help="delta (default 0: pure epsilon-DP)")
    d.add_argument("--bound", action="append", default=[], metavar="COLUMN=LO:HI",
                   help="clamp of each row's contribution to the SUM/AVG output COLUMN; repeat per column")
    d.add_argument("--public-groups", action="append", default=[], metavar="COLUMN=V1,V2,...",
                   help="the groups to release for GROUP BY key COLUMN (values as text); repeat per key. "
                        "Without it (and --delta > 0) the groups found in the data are released by a "
                        "noisy threshold")
    d.add_argument("--ledger", metavar="PATH", help="this party's budget ledger (pet.dp.BudgetLedger file)")
    d.add_argument("--block", metavar="NAME", help="the ledger block the query is charged to")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                   help="how long to wait for the peer and the dealer (default 120)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="receive timeout once connected (default 600)")
    add_tls_arguments(p)
    _add_scale_out_arguments(p)
    p.set_defaults(func=run)


def _add_scale_out_arguments(p) -> None:
    """``--buckets``/``--cluster``...: the join's PSI step bucketed on Dask (docs/scale-out.md)."""
    s = p.add_argument_group("scale-out on Dask (the join's PSI in buckets; both parties give the same --buckets)")
    s.add_argument("--buckets", type=int, metavar="B",
                   help="run the join's PSI in B buckets on this party's Dask cluster (pet.psi.bucketed)")
    s.add_argument("--cluster", metavar="SPEC", default=None,
                   help="this party's Dask cluster: local:N (default local:2) or tcp://HOST:PORT")
    s.add_argument("--state-dir", metavar="DIR",
                   help="the bucketed run's state (visible to the workers; kept on failure: rerunning the query "
                        "resumes finished buckets); default: a temporary directory")
    s.add_argument("--max-retries", type=int, default=None, metavar="N",
                   help="failed attempts allowed per bucket (default 3)")
    s.add_argument("--listen-ports", metavar="LO-HI", help="party 0's bucket tasks listen on ports in this range")


def _scale_out(args, tls) -> dict | None:
    """The join's ``psi_options``: the bucketed join with ``--buckets``, else ``--psi-protocol``."""
    from pet.psi.bucketed_join import port_range

    if args.buckets is None:
        given = [f"--{f.replace('_', '-')}" for f in ("cluster", "state_dir", "max_retries", "listen_ports")
                 if getattr(args, f) is not None]
        if given:
            raise InputError(f"{', '.join(given)} need(s) --buckets")
        return {"protocol": args.psi_protocol or "kkrt"}
    options = {"buckets": args.buckets, "protocol": args.psi_protocol or "kkrt", "cluster": args.cluster,
               "state_dir": args.state_dir,
               "max_retries": args.max_retries, "listen_ports": port_range(args.listen_ports), "tls": tls,
               "timeout": args.timeout}
    return {k: v for k, v in options.items() if v is not None}


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






def _dp(args):
    """``pet.sql.DP`` from the DP options (None without --epsilon)."""
    from pet.sql import DP

    if args.epsilon is None:
        if args.bound or args.public_groups or args.ledger or args.block or args.delta:
            raise InputError("--bound, --public-groups, --ledger, --block and --delta need --epsilon")
        return None
    bounds = {}
    for spec in args.bound:
        name, sep, rng = spec.rpartition("=")
        lo, sep2, hi = rng.partition(":")
        try:
            if not sep or not sep2 or not name:
                raise ValueError
            bounds[name] = (float(lo), float(hi))
        except ValueError:
            raise InputError(f"--bound: expected COLUMN=LO:HI, got {spec!r}") from None
    groups = {}
    for spec in args.public_groups:
        name, sep, vals = spec.partition("=")
        if not sep or not name or not vals:
            raise InputError(f"--public-groups: expected COLUMN=V1,V2,..., got {spec!r}")
        groups[name] = vals.split(",")
    if (args.ledger is None) != (args.block is None):
        raise InputError("--ledger and --block go together")
    return DP(args.epsilon, args.delta, bounds=bounds or None, ledger=args.ledger, block=args.block,
              public_groups=groups or None)


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
    dp = _dp(args)
    reveal_to = None if args.reveal_to == "both" else int(args.reveal_to)
    receives = reveal_to in (None, args.party)
    if receives and not args.output:
        raise InputError("--output is required at a party that receives the result")
    tls = tls_from_args(args, f"party{args.party}")  # peer pinned to party<1-P>, dealer to "dealer"
    check_addresses(args, tls, "sql")
    if receives:
        check_output_path(args.output)
    for name, path in tables.items():
        check_input_file(path, f"--table {name}=")
    psi_options = _scale_out(args, tls)
    channel = open_peer(args, tls, "sql")
    start = time.perf_counter()
    with channel, open_source(args, tls) as source:
        with Session(args.party, channel, **source) as session:
            result = query(session, sql, tables, reveal_to=reveal_to, min_group_size=args.min_group_size,
                           duplicate_keys=args.duplicate_keys, dp=dp, psi_options=psi_options)
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
    if dp is not None:
        stds = ", ".join(f"{k} {v:.4g}" for k, v in result.attrs["dp"]["noise_std"].items() if v is not None)
        extra += f"; DP {result.attrs['dp']['mechanism']} epsilon={dp.epsilon} delta={dp.delta}, noise std: {stds}"
    print(f"pet sql: {len(result)} row(s) written to {args.output}{extra} ({traffic})")
    return 0
