"""``pet dp``: differential-privacy tools.

    pet dp simulate --workload single-block --policies fcfs,rr-n,dpf-n \\
        [--sweep 1,50,100,175,225] [--budget basic|renyi] [--mice 75] [--seed 3345] \\
        [--out results.csv] [--plot grants.png]

``simulate`` reproduces PrivateKube's scheduling microbenchmarks (pet.dp.simulate): for every
policy and N it prints the number of granted claims, writes the table as CSV and, with
``--plot``, a PNG of grants vs N (matplotlib: ``pip install 'pet[plot]'``). Time-based
policies (``dpf-t``, ``rr-t``) use T = N x the mean arrival interval. Outputs are written
atomically.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register", "run"]


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError("every N must be an integer >= 1")
    return vals


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dp",
        help="differential privacy: privacy-budget scheduling simulator",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(title="dp commands", metavar="DPCOMMAND")
    s = sub.add_parser("simulate", help="PrivateKube microbenchmarks: grants vs N for FCFS, RR and DPF",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--workload", choices=("single-block", "multi-block"), default="single-block")
    s.add_argument("--policies", default="fcfs,rr-n,dpf-n",
                   help="comma-separated from fcfs, dpf-n, dpf-t, rr-n, rr-t (default fcfs,rr-n,dpf-n)")
    s.add_argument("--sweep", type=_int_list, default=None, metavar="N1,N2,...",
                   help="values of N (default: the paper's grid for the workload and budget)")
    s.add_argument("--budget", choices=("basic", "renyi"), default="basic")
    s.add_argument("--mice", type=float, default=75.0, metavar="PERCENT", help="share of eps=0.01 claims (default 75)")
    s.add_argument("--seed", type=int, default=0, help="seed of the synthetic workload (default 0)")
    s.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="override the workload duration")
    s.add_argument("--out", default=None, metavar="CSV", help="write the results table here")
    s.add_argument("--plot", default=None, metavar="PNG", help="write a plot of grants vs N here")
    s.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run(args) -> int:
    from pet.dp.simulate import POLICIES, plot_sweep, sweep, write_csv
    from pet.errors import InputError

    policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    bad = [x for x in policies if x not in POLICIES]
    if bad or not policies:
        raise InputError(f"--policies must be chosen from {', '.join(POLICIES)}; got {args.policies!r}")
    results = sweep(
        args.workload,
        policies,
        args.sweep,
        budget=args.budget,
        seed=args.seed,
        mice_percentage=args.mice,
        duration=args.duration,
    )
    print(f"{'policy':8} {'N':>7} {'T':>10} {'granted':>8} {'arrivals':>8} {'wall_s':>7}")
    for r in results:
        t = "" if r.t is None else f"{r.t:.3f}"
        print(f"{r.policy:8} {r.n:>7} {t:>10} {r.granted:>8} {r.arrivals:>8} {r.wall_time:>7.2f}")
    if args.out:
        write_csv(results, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.plot:
        plot_sweep(results, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
