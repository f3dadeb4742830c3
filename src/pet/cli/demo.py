"""``pet demo``: a two-party end-to-end run on embedded data, as separate OS processes.

With no arguments it creates throwaway TLS certificates, starts party 0, party 1 (and the
dealer when a step needs MPC) as separate processes talking over loopback TCP with mutual
TLS, runs every step, and ends with a summary table: what ran, the result, seconds, bytes
exchanged and what each party learned. It exits non-zero if anything failed.

With --no-dealer there are two processes only: the MPC steps run dealer-free, the two parties
making the correlated randomness by oblivious transfer over their own link (its bytes count
as peer bytes). The xgb step is left out unless named in --steps (dealer-free, its matrix
products by OT take minutes on the demo data).

Run one side only, for two terminals or two hosts (give both the same --tls-dir, made with
``python -c "import pet.transport as t; t.make_test_pki('certs')"``; roles are pinned: the
peer must present party<1-P>, the dealer ``dealer``). Without --tls-dir only loopback
addresses are allowed, unless --insecure.

The MPC steps (mpc, xgb, sql, leiden) need the dealer: start ``pet dealer`` first and give
both parties its address with --dealer. Each party connects to it before the first step, so
an unreachable dealer stops both at once; without --dealer (at either party) those steps are
skipped, with a line saying so, and the others run. With --no-dealer at both parties
the MPC steps run dealer-free (correlated randomness by oblivious transfer), two processes only::

    pet dealer --listen 0.0.0.0:9401 --tls-dir certs
    pet demo --party 0 --listen 0.0.0.0:9400 --dealer HOSTD:9401 --tls-dir certs
    pet demo --party 1 --connect HOST0:9400 --dealer HOSTD:9401 --tls-dir certs
    pet demo --party 0 --listen 0.0.0.0:9400 --no-dealer --tls-dir certs   # and party 1 likewise
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

from pet.errors import InputError


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="two-party end-to-end demo on embedded data (TLS, separate processes)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--party", type=int, choices=(0, 1), help="run one party only")
    side = p.add_mutually_exclusive_group()
    side.add_argument("--listen", metavar="HOST:PORT", help="party 0: address to listen on for party 1")
    side.add_argument("--connect", metavar="HOST:PORT", help="party 1: address of party 0")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--dealer", metavar="HOST:PORT",
                        help="with --party: address of a running `pet dealer`, needed by the MPC steps (mpc, xgb, "
                             "sql, leiden; skipped without it, unless --no-dealer)")
    source.add_argument("--no-dealer", action="store_true",
                        help="dealer-free MPC steps: two processes only, the correlated randomness made by "
                             "oblivious transfer between the parties (with --party: both parties pass it)")
    p.add_argument("--tls-dir", metavar="DIR", help="mutual TLS with ca.pem and party<N>.pem/.key from DIR")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain TCP (no --tls-dir) on a non-loopback address: trusted networks only")
    p.add_argument("--steps", help="comma-separated subset of steps to run (default: all)")
    p.add_argument("--report", metavar="FILE", help="write this party's outcomes as JSON")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a peer (default 180)")
    p.set_defaults(func=run)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Steps left out of a dealer-free demo unless named in --steps: vertical XGBoost's private
#: matrix products by OT are O(rows x bins x features) bytes, minutes on the demo data, until
#: the HE matrix products make them fast.
SLOW_WITHOUT_DEALER = ("xgb",)


def _steps(args) -> list[str]:
    from pet.demo.steps import STEPS

    if not args.steps:
        if getattr(args, "no_dealer", False):
            return [s for s in STEPS if s not in SLOW_WITHOUT_DEALER]
        return list(STEPS)
    names = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in names if s not in STEPS]
    if unknown:
        raise InputError(f"--steps: unknown step(s) {unknown}; known: {', '.join(STEPS)}")
    return names


def _run_one(args) -> int:
    from pet.demo.party import run_party

    if args.party == 0 and not args.listen:
        print("pet demo: --party 0 needs --listen HOST:PORT", file=sys.stderr)
        return 2
    if args.party == 1 and not args.connect:
        print("pet demo: --party 1 needs --connect HOST:PORT", file=sys.stderr)
        return 2
    from pet.cli._net import check_addresses

    check_addresses(args, args.tls_dir, "demo")
    outcome = run_party(args.party, args.listen or args.connect, dealer=args.dealer, tls_dir=args.tls_dir,
                        report=args.report, steps=_steps(args), timeout=args.timeout,
                        log=lambda line: print(line, flush=True), insecure=args.insecure,
                        correlations="ot" if args.no_dealer else None)
    if args.report is None:
        _print_table([outcome] if args.party == 0 else [None, outcome])
    return 0 if outcome["ok"] else 1


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _karate_modularity(labels0: dict, labels1: dict) -> float | None:
    """Modularity of the union of the two parties' Leiden outputs on the whole karate graph
    (the demo's data is public, so the summary can check it in the clear)."""
    import igraph

    from pet.demo.data import karate_split

    labels = {**{int(k): v for k, v in labels0.items()}, **{int(k): v for k, v in labels1.items()}}
    if len(labels) != 34:
        return None
    edges = set()
    for party in (0, 1):
        _, e = karate_split(party)
        edges |= {tuple(sorted((int(a), int(b)))) for a, b in zip(e["source"], e["target"])}
    graph = igraph.Graph(n=34, edges=sorted(edges))
    return graph.modularity([labels[v] for v in range(34)])


def _print_table(reports) -> None:
    r0 = reports[0] if reports else None
    r1 = reports[1] if len(reports) > 1 else None
    steps0 = {s["step"]: s for s in (r0 or {}).get("steps", [])}
    steps1 = {s["step"]: s for s in (r1 or {}).get("steps", [])}
    names = list(dict.fromkeys([*steps0, *steps1]))
    def wrap(text, indent):
        return textwrap.fill(text, 100, initial_indent=indent, subsequent_indent=" " * len(indent))
    print("\nSummary")
    print(f"{'step':<8} {'ok':<4} {'seconds':>8} {'peer bytes':>12} {'dealer bytes':>13}")
    print("=" * 100)
    for name in names:
        a, b = steps0.get(name, {}), steps1.get(name, {})
        ok = a.get("ok", True) and b.get("ok", True) and bool(a or b)
        seconds = max(a.get("seconds", 0), b.get("seconds", 0))
        peer = a.get("peer_bytes", b.get("peer_bytes", 0))
        dealer = a.get("dealer_bytes", 0) + b.get("dealer_bytes", 0)
        flag = "skip" if ok and (a.get("skipped") or b.get("skipped")) else "yes" if ok else "NO"
        print(f"{name:<8} {flag:<4} {seconds:>8.2f} {_human(peer):>12} {_human(dealer):>13}")
        result = a.get("result") if a.get("result") and not a["result"].startswith("(") else b.get("result")
        if a.get("skipped") or b.get("skipped"):
            result = f"skipped: {a.get('skipped') or b.get('skipped')}"
        if result:
            print(wrap(result, "  result: "))
        if name == "leiden" and a.get("ok") and b.get("ok"):
            q = _karate_modularity(a["extra"]["labels"], b["extra"]["labels"])
            if q is not None:
                print(f"  modularity of the union partition (checked in the clear on the public graph): {q:.4f}")
        for party, rep in ((0, a), (1, b)):
            if rep.get("learned"):
                print(wrap(rep["learned"], f"  party {party} learned: "))
            if rep.get("error"):
                print(wrap(rep["error"], f"  party {party} ERROR: "))
        print("-" * 100)


#: Child processes of ``pet demo`` write into a pipe (stdout and stderr merged) that the
#: parent relays line by line (:func:`_relay`), so the parties' lines never mix on one line.
_PIPED = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def _relay(procs) -> list:
    """One thread per ``(label, process)`` copying its output to this stdout whole lines at a
    time under one lock; a line without a ``[party N]`` tag gets ``[label]`` in front."""
    import threading

    lock = threading.Lock()

    def copy(label, stream):
        for line in stream:
            text = line.rstrip("\n")
            if not text.startswith("["):
                text = f"[{label}] {text}"
            with lock:
                print(text, flush=True)
        stream.close()

    threads = [threading.Thread(target=copy, args=(label, proc.stdout), daemon=True) for label, proc in procs]
    for t in threads:
        t.start()
    return threads


def _run_all(args) -> int:
    from pet.demo.steps import STEPS
    from pet.transport import make_test_pki

    names = _steps(args)
    needs_mpc = any(STEPS[n][1] for n in names)
    needs_dealer = needs_mpc and not args.no_dealer
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pet-demo-") as tmp:
        print(f"pet demo: steps {', '.join(names)}; parties{' and dealer' if needs_dealer else ''} "
              "as separate processes over loopback TCP with mutual TLS (throwaway certificates)"
              + ("; MPC dealer-free (oblivious transfer between the two parties)" if needs_mpc and args.no_dealer
                 else ""), flush=True)
        make_test_pki(tmp, names=("party0", "party1", "dealer"))
        peer, dealer = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
        base = [sys.executable, "-m", "pet"]
        common = ["--tls-dir", tmp, "--steps", ",".join(names), "--timeout", str(args.timeout)]
        if needs_dealer:
            common += ["--dealer", dealer]
        elif needs_mpc:
            common += ["--no-dealer"]
        procs = []
        if needs_dealer:
            procs.append(("dealer", subprocess.Popen(base + ["dealer", "--listen", dealer, "--tls-dir", tmp],
                                                     **_PIPED)))
        procs.append(("party 1", subprocess.Popen(base + ["demo", "--party", "1", "--connect", peer,
                                                          "--report", f"{tmp}/party1.json", *common], **_PIPED)))
        procs.append(("party 0", subprocess.Popen(base + ["demo", "--party", "0", "--listen", peer,
                                                          "--report", f"{tmp}/party0.json", *common], **_PIPED)))
        relays = _relay(procs)
        failed = []
        deadline = time.monotonic() + args.timeout + 300
        for label, proc in reversed(procs):
            try:
                code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = "killed after timeout"
            if code != 0:
                failed.append(f"{label} exited with {code}")
        for relay in relays:
            relay.join(timeout=10)
        reports = []
        for party in (0, 1):
            try:
                with open(f"{tmp}/party{party}.json", encoding="utf-8") as fh:
                    reports.append(json.load(fh))
            except OSError:
                reports.append(None)
                failed.append(f"party {party} wrote no report")
    _print_table(reports)
    total = time.perf_counter() - start
    if failed:
        print(f"\npet demo FAILED after {total:.1f} s: " + "; ".join(failed), file=sys.stderr)
        return 1
    print(f"\nAll {len(names)} steps succeeded in {total:.1f} s.")
    return 0


def run(args) -> int:
    from pet.demo import require_demo_extras

    require_demo_extras(_steps(args))  # plaintext comparisons: pip install 'pet[demo]'
    if args.party is not None:
        return _run_one(args)
    if args.listen or args.connect:
        print("pet demo: --listen/--connect go with --party", file=sys.stderr)
        return 2
    return _run_all(args)
