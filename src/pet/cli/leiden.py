"""``pet leiden``: two-party privacy-preserving Leiden community detection over TCP.

    pet dealer --listen 127.0.0.1:9100
    pet leiden --party 0 --listen 127.0.0.1:9300 --dealer 127.0.0.1:9100 \\
        --edges edges0.csv --nodes nodes0.csv --output communities0.csv
    pet leiden --party 1 --connect 127.0.0.1:9300 --dealer 127.0.0.1:9100 \\
        --edges edges1.csv --nodes nodes1.csv --output communities1.csv

Inputs: ``--nodes`` a one-column CSV of this party's node ids (header ``node`` optional),
``--edges`` a CSV ``source,target,weight`` with every edge touching an own node (a
cross-party edge with this party's additive share of its weight); or the reference
system's JSON fixtures with ``--json-weights user_weight.json --json-nodes local_nodes.json``.
Output: ``node,community`` for this party's nodes, written atomically; labels are global.
Both parties must pass the same ``--resolution``, ``--seed`` and ``--n-iterations``.
With ``--tls-dir DIR`` (files of ``pet.transport.tls.make_test_pki``: ``ca.pem``,
``party<N>.pem``/``.key``) both the peer channel and the dealer connection use mutual TLS
(start the dealer with the same ``--tls-dir``).
"""

from __future__ import annotations

import argparse
import sys
import time

from pet.cli._checks import check_output_path
from pet.cli._net import add_tls_arguments, check_addresses, open_peer, tls_from_args
from pet.cli._source import add_source_arguments, open_source
from pet.errors import InputError

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser("leiden", help="two-party private Leiden community detection",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--party", type=int, choices=(0, 1), required=True, help="this party's number")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen", metavar="HOST:PORT", help="wait for the peer on this address")
    where.add_argument("--connect", metavar="HOST:PORT", help="connect to the peer at this address")
    add_source_arguments(p)
    p.add_argument("--edges", help="CSV source,target,weight")
    p.add_argument("--nodes", help="CSV with one column of this party's node ids")
    p.add_argument("--json-weights", metavar="FILE", help="PETML user_weights JSON (instead of --edges)")
    p.add_argument("--json-nodes", metavar="FILE", help="PETML local_nodes JSON (instead of --nodes)")
    p.add_argument("--output", required=True, help="where to write node,community (CSV)")
    p.add_argument("--resolution", type=float, default=1.0, help="modularity resolution (default 1)")
    p.add_argument("--seed", type=int, default=0, help="public seed, the same at both parties (default 0)")
    p.add_argument("--n-iterations", type=int, default=2,
                   help="Leiden passes, -1 = until stable (default 2)")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS", help="wait for the peer (default 120)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS", help="receive timeout (default 600)")
    add_tls_arguments(p)
    p.set_defaults(func=run)


def _inputs(args):
    from pet.graph.io import read_csv_input, read_petml_json

    if args.json_weights or args.json_nodes:
        if not (args.json_weights and args.json_nodes) or args.edges or args.nodes:
            raise InputError("give either --edges and --nodes, or --json-weights and --json-nodes")
        return read_petml_json(args.json_weights, args.json_nodes)
    if not (args.edges and args.nodes):
        raise InputError("--edges and --nodes are required (or --json-weights and --json-nodes)")
    return read_csv_input(args.edges, args.nodes)


def run(args) -> int:
    from pet.graph import leiden
    from pet.graph.io import write_communities
    from pet.mpc import Session

    tls = tls_from_args(args, f"party{args.party}")  # peer pinned to party<1-P>, dealer to "dealer"
    check_addresses(args, tls, "leiden")
    nodes, edges = _inputs(args)
    from pet.graph.inputs import prepare_input

    prepare_input(nodes, edges)  # checked alone, before waiting for the peer (rows named 1-based)
    check_output_path(args.output)
    channel = open_peer(args, tls, "leiden")
    start = time.perf_counter()
    with channel, open_source(args, tls) as source:
        with Session(args.party, channel, **source) as session:
            result = leiden(session, nodes, edges, resolution=args.resolution, seed=args.seed,
                            n_iterations=args.n_iterations)
        stats = channel.stats
        sent, received = stats.bytes_sent, stats.bytes_received
    write_communities(result, args.output)
    info = result.attrs.get("pet_graph", {})
    print(f"pet leiden: party {args.party}: {len(result)} nodes, {result.nunique()} communities among them, "
          f"{time.perf_counter() - start:.1f} s, {sent + received} bytes with the peer, "
          f"{info.get('levels', 0)} levels; wrote {args.output}", file=sys.stderr)
    return 0
