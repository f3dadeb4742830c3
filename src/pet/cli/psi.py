"""``pet psi``: align a CSV/Parquet table with the peer's by PSI over TCP (optionally TLS).

Party 0 listens, party 1 connects (either may start first)::

    pet psi --party 0 --listen 127.0.0.1:9000 --input a.csv --column id --output out.csv
    pet psi --party 1 --connect 127.0.0.1:9000 --input b.csv --column id --output out.csv

Each party writes its own rows whose key is in the intersection, in the joint order (row i
of both outputs has the same key), with all of its columns. Keys are compared as text
(``str()`` of the value as read), so the CSV ``123`` and a Parquet int ``123`` match.
Several ``--column`` options form a composite key (paired with the peer's by position).
The output is written atomically (temporary file + rename).

``--protocol kkrt`` (the default: OPRF from OT extension, :mod:`pet.psi.kkrt`, an order of
magnitude faster than ECDH on large inputs, more bytes on the wire) or ``ecdh`` (ECDH on
Curve25519, :mod:`pet.psi.ecdh`; the default with ``--cardinality``, which KKRT does not
offer). With ``--buckets`` it is the per-bucket protocol (default kkrt as well). Both
parties give the same protocol (checked: a mismatch fails both).

Scale-out: ``--buckets B [--cluster local:N | tcp://HOST:PORT]`` splits both inputs into B
buckets and runs one PSI per bucket pair as Dask tasks on this party's cluster
(:mod:`pet.psi.bucketed`); the output is then a Parquet file or a directory of parts.

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
    p.add_argument("--protocol", default=None, choices=("ecdh", "kkrt"),
                   help="PSI protocol, per bucket with --buckets (default kkrt, an OT-extension OPRF; ecdh with "
                   "--cardinality, which kkrt does not offer; both parties must give the same)")
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
    scale = p.add_argument_group("scale-out on Dask (pet.psi.bucketed; both parties give the same --buckets)")
    scale.add_argument("--buckets", type=int, metavar="B",
                       help="split both inputs into B buckets by a per-run keyed hash and align bucket by bucket")
    scale.add_argument("--cluster", metavar="SPEC", default=None,
                       help="this party's Dask cluster: local:N (N single-threaded workers; default local:2) "
                            "or tcp://HOST:PORT of a running dask scheduler")
    scale.add_argument("--state-dir", metavar="DIR",
                       help="run state for resuming (default: OUTPUT.pet-state next to the output)")
    scale.add_argument("--max-retries", type=int, default=3, metavar="N",
                       help="failed attempts allowed per bucket before the run fails at both parties (default 3)")
    scale.add_argument("--listen-ports", metavar="LO-HI",
                       help="party 0's bucket tasks listen on ports in this range (default: any free port)")
    p.set_defaults(func=run)


def _ports(text):
    if text is None:
        return None
    lo, sep, hi = text.partition("-")
    try:
        lo, hi = int(lo), int(hi)
    except ValueError:
        lo = hi = -1
    if not sep or not 1 <= lo <= hi <= 65535:
        raise InputError(f"--listen-ports {text!r}: expected LO-HI with 1 <= LO <= HI <= 65535")
    return lo, hi


def run_bucketed(args, tls) -> int:
    """``--buckets``: :func:`pet.psi.align_dataset` with the control channel to the peer."""
    from pet.psi.bucketed import align_dataset

    if args.cardinality:
        raise InputError("--cardinality is not available with --buckets")
    if args.output is None:
        raise InputError("--output is required")
    if args.workers is not None:
        raise InputError("--workers does not apply with --buckets (give the cluster's workers with --cluster)")
    ports = _ports(args.listen_ports)
    reveal = args.reveal if args.reveal == "both" else int(args.reveal)
    channel = open_peer(args, tls, "psi")
    with channel:
        res = align_dataset(channel, args.input, args.column, args.output, party=args.party, buckets=args.buckets,
                            cluster=args.cluster, reveal=reveal, dedupe=args.dedupe, header=not args.no_header,
                            tls=tls, state_dir=args.state_dir, max_retries=args.max_retries, timeout=args.timeout,
                            listen_ports=ports, progress=args.progress is not False, protocol=args.protocol)
    if res.written is None:
        print(f"pet psi: party {args.party} does not learn the intersection (reveal={args.reveal}); "
              "no output written")
        return 0
    print(f"pet psi: {res.written} of {res.rows} rows in the intersection; wrote {args.output} "
          f"({res.buckets} buckets by {args.protocol}, {res.resumed} resumed, {res.retries} retried; "
          f"{res.seconds:.2f} s, "
          f"sent {res.bytes_sent:,} B, received {res.bytes_received:,} B)")
    return 0



def _first_duplicate(store) -> str:
    """The first input row that repeats an earlier key, as "data row N" (1-based)."""
    import numpy as np

    from pet.psi.files import data_row

    kept = np.sort(store.deduplicated().positions)
    differ = np.flatnonzero(kept != np.arange(kept.size))
    return data_row(int(differ[0]) if differ.size else int(kept.size))


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
    if args.protocol is None:
        args.protocol = "ecdh" if args.cardinality else "kkrt"  # with --buckets: KKRT per bucket
    if args.protocol == "kkrt" and args.cardinality:
        raise InputError("--protocol kkrt does not support --cardinality (use --protocol ecdh)")
    if args.buckets is not None:
        return run_bucketed(args, tls)
    for flag in ("cluster", "state_dir", "listen_ports"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag.replace('_', '-')} needs --buckets")
    header = not args.no_header
    store = encode_file(args.input, args.column, header=header)  # missing keys fail here, before connecting
    n_rows = store.n_rows
    progress = _progress(args, n_rows)
    channel = open_peer(args, tls, "psi")
    start = time.perf_counter()
    with channel:  # a failure in here sends the peer a goodbye with its category (Channel.fail)
        if store.duplicates and not args.dedupe:
            # checked once connected, so the peer learns why this side stops ("duplicate keys")
            raise LocalFailure(f"--input {args.input}: {store.duplicates} row(s) repeat an earlier key (the first: "
                               f"{_first_duplicate(store)}); PSI needs distinct keys -- pass --dedupe to keep the "
                               "first row of each key", "duplicate-keys")
        if args.cardinality:
            store, _ = drop_duplicates(store, dedupe=args.dedupe, name=store.name)
            count = psi_cardinality(channel, store, party=args.party, workers=args.workers, progress=progress)
            print(f"pet psi: intersection size {count} ({n_rows} rows here)")
            return 0
        mode = check_reveal(args.reveal if args.reveal == "both" else int(args.reveal))
        if args.protocol == "kkrt":
            from pet.psi import kkrt

            written = kkrt.align_store(channel, store, args.input, args.output, party=args.party, mode=mode,
                                       arity=len(args.column), dedupe=args.dedupe, header=header)
        else:
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
