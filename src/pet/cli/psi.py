"""``pet psi``: align a CSV/Parquet table with the peer's by ECDH-PSI over TCP (optionally TLS).

Party 0 listens, party 1 connects (either may start first)::

    pet psi --party 0 --listen 127.0.0.1:9000 --input a.csv --column id --output out.csv
    pet psi --party 1 --connect 127.0.0.1:9000 --input b.csv --column id --output out.csv

Each party writes its own rows whose key is in the intersection, in the joint order (row i
of both outputs has the same key), with all of its columns. Keys are compared as text
(``str()`` of the value as read), so the CSV ``123`` and a Parquet int ``123`` match.
Several ``--column`` options form a composite key (paired with the peer's by position).
The output is written atomically (temporary file + rename).

The input is streamed (:mod:`pet.psi.files`): the keys are read and encoded a batch of
rows at a time into a compact store, and after the PSI a second pass over the input writes
the selected rows in the joint order; the table itself is never held in memory.
"""

from __future__ import annotations

import argparse
import time

from pet.cli._checks import LocalFailure, check_input_file, check_output_path
from pet.cli._net import add_tls_arguments, check_addresses, open_peer, tls_from_args
from pet.errors import InputError

__all__ = ["register", "run"]

#: Inputs larger than this show a progress bar (unless --no-progress).
PROGRESS_THRESHOLD = 100_000


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "psi",
        help="private set intersection / row alignment with the other party",
        description=__doc__.split("\n\n")[0] + " Party 0 usually listens, party 1 connects.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--party", type=int, choices=(0, 1), required=True, help="this party's number")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen", metavar="HOST:PORT", help="wait for the peer on this address")
    where.add_argument("--connect", metavar="HOST:PORT", help="connect to the peer at this address")
    p.add_argument("--input", required=True, help="CSV or Parquet file (by extension: .parquet/.pq)")
    p.add_argument("--column", action="append", required=True,
                   help="key column (repeat for a composite key); with --no-header a 0-based position")
    p.add_argument("--output", help="where to write the aligned rows (CSV or Parquet, by extension); needed "
                   "only at a party that learns the intersection (see --reveal)")
    p.add_argument("--reveal", default="both", choices=("both", "0", "1"),
                   help="who learns the intersection (default both); the other learns only sizes")
    p.add_argument("--cardinality", action="store_true",
                   help="only compute the intersection size (both parties learn just the count)")
    p.add_argument("--no-header", action="store_true", help="the CSV has no header row")
    p.add_argument("--dedupe", action="store_true", help="keep the first row of each duplicated key")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                   help="how long to wait for the peer to come (default 120)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="receive timeout once connected (default 600)")
    p.add_argument("--workers", type=int, default=None, help="worker threads (default: all cores)")
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None,
                      help="always show a progress bar")
    prog.add_argument("--no-progress", dest="progress", action="store_false",
                      help=f"never show one (default: shown above {PROGRESS_THRESHOLD:,} rows when stderr is a "
                      "terminal)")
    add_tls_arguments(p, dealer_name=False)
    p.set_defaults(func=run)



def _progress(args, n_rows: int) -> bool:
    """--progress / --no-progress, else a bar only above the threshold and only when
    stderr is a terminal (no carriage returns in a log file)."""
    import sys

    if args.progress is not None:
        return args.progress
    return n_rows > PROGRESS_THRESHOLD and sys.stderr.isatty()


def run(args) -> int:
    from pet.psi import psi_cardinality
    from pet.psi.ecdh import check_reveal, drop_duplicates
    from pet.psi.files import align_store, encode_file

    learns = args.cardinality or args.reveal in ("both", str(args.party))
    if args.output is None and learns and not args.cardinality:
        raise InputError(f"--output is required at party {args.party} (it learns the intersection with "
                         f"--reveal {args.reveal}); only --cardinality or a --reveal naming the other party "
                         "needs none")
    tls = tls_from_args(args, f"party{args.party}")
    check_addresses(args, tls, "psi")
    if learns and not args.cardinality:
        check_output_path(args.output)
    check_input_file(args.input)
    header = not args.no_header
    store = encode_file(args.input, args.column, header=header)  # missing keys fail here, before connecting
    n_rows = store.n_rows
    progress = _progress(args, n_rows)
    channel = open_peer(args, tls, "psi")
    start = time.perf_counter()
    with channel:  # a failure in here sends the peer a goodbye with its category (Channel.fail)
        if store.duplicates and not args.dedupe:
            # checked once connected, so the peer learns why this side stops ("duplicate keys")
            raise LocalFailure(f"--input {args.input}: {store.duplicates} row(s) repeat an earlier key; PSI needs "
                               "distinct keys -- pass --dedupe to keep the first row of each key",
                               "duplicate-keys")
        if args.cardinality:
            store, _ = drop_duplicates(store, dedupe=args.dedupe, name=store.name)
            count = psi_cardinality(channel, store, party=args.party, workers=args.workers, progress=progress)
            print(f"pet psi: intersection size {count} ({n_rows} rows here)")
            return 0
        mode = check_reveal(args.reveal if args.reveal == "both" else int(args.reveal))
        written = align_store(channel, store, args.input, args.output, party=args.party, mode=mode,
                              arity=len(args.column), dedupe=args.dedupe, header=header, workers=args.workers,
                              progress=progress)
        stats = channel.stats
    seconds = time.perf_counter() - start
    if written is None:
        print(f"pet psi: party {args.party} does not learn the intersection (reveal={args.reveal}); "
              "no output written")
        return 0
    print(f"pet psi: {written} of {n_rows} rows in the intersection; wrote {args.output} "
          f"({seconds:.2f} s, sent {stats.bytes_sent:,} B, received {stats.bytes_received:,} B)")
    return 0
