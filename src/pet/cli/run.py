"""``pet run``: run one party's side of a two-party job file.

    pet run job.yaml --party 0            # listens on the job's network.address
    pet run job.yaml --party 1            # connects to it
    pet run --mission psi.yml --request psi@1.json --party party_a   # reference platform format

Task states live in a SQLite file (``--state``, default ``pet-jobs.sqlite``); running the same
job again resumes it: finished tasks are skipped. A party runs a task it has finished again
only with its own ``--rerun`` (every task) or ``--rerun-task NAME`` (that task and its
dependents); if the peer needs a task this party finished, both refuse and say who must pass
``--rerun``. Both parties must run the identical job file (compared by digest at the start).

``pet run job.yaml --status [--party P] [--state FILE]`` connects to nobody: it prints each
task's state, start and end times, duration and outputs (or error) from the state file.

With the job's ``network.tls_dir``, both links use mutual TLS with pinned roles: party P
requires ``party<1-P>`` in the peer's certificate and ``dealer`` in the dealer's. Without it,
only loopback addresses are allowed unless ``--insecure``.

MPC tasks (sql, xgb, leiden) need a source of correlated randomness: the job's
``network.dealer`` (a running ``pet dealer``), or dealer-free with ``network.correlations: ot``
in the job file or ``--no-dealer`` here (both parties must pass it; it overrides
``network.dealer``): the two parties make the correlated randomness by oblivious transfer and
no third process exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from pet.errors import InputError


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run one party's side of a two-party job (DAG of tasks)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("job", nargs="?", help="job YAML file")
    p.add_argument("--mission", help="reference platform mission YAML (with --request)")
    p.add_argument("--request", help="reference platform job request JSON (with --mission)")
    p.add_argument("--party", help="0 or 1 (or party_a / party_b); required unless --status")
    p.add_argument("--address", help="override the job's network address HOST:PORT")
    p.add_argument("--state", default="pet-jobs.sqlite", help="SQLite file with task states (default pet-jobs.sqlite)")
    p.add_argument("--status", action="store_true",
                   help="print each task's state, timings and outputs from --state and exit (connects to nobody; "
                        "without --party: every party found in the file)")
    p.add_argument("--rerun", action="store_true",
                   help="run every task again (this party agrees to recompute and reveal again what it finished)")
    p.add_argument("--rerun-task", action="append", default=[], metavar="NAME",
                   help="agree to run this finished task and its dependents again (repeatable)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the peer")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain TCP (no network.tls_dir) to a non-loopback address: trusted networks only")
    p.add_argument("--no-dealer", action="store_true",
                   help="dealer-free MPC tasks (as network.correlations: ot; overrides network.dealer): the two "
                        "parties make the correlated randomness by oblivious transfer; both parties must pass it")
    p.set_defaults(func=run)


def _party(text: str) -> int:
    mapping = {"0": 0, "1": 1, "party_a": 0, "party_b": 1}
    if text not in mapping:
        raise InputError(f"--party must be 0, 1, party_a or party_b, got {text!r}")
    return mapping[text]


def _rerun(args):
    if args.rerun and args.rerun_task:
        raise InputError("give either --rerun (every task) or --rerun-task NAME, not both")
    return True if args.rerun else list(args.rerun_task)


def _job_words(text: str) -> str:
    """A task's error with library keyword arguments replaced by job-file parameters."""
    return text.replace("pass dedupe=True to keep the first occurrence of each",
                        "set `dedupe: true` in the task's params to keep the first row of each key")


def _spec(args):
    from pet.jobs import from_reference, load_job

    if args.mission or args.request:
        if not (args.mission and args.request) or args.job:
            raise InputError("give either a job file, or both --mission and --request")
        return from_reference(args.mission, args.request)
    if args.job:
        return load_job(args.job)
    raise InputError("give a job file, or --mission and --request")


def _when(t) -> str:
    import datetime

    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _summary(result_json) -> str:
    """A task's stored JSON summary as ``key: value`` pairs (its output paths among them)."""
    import json

    if not result_json:
        return ""
    try:
        value = json.loads(result_json)
    except ValueError:
        return str(result_json)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def status_lines(spec, store, party: int) -> list[str]:
    """``pet run --status``: the job's tasks in run order with state, times and outputs."""
    states = store.states(spec.job, party)
    digest = store.digest(spec.job, party)
    status = store.status(spec.job, party) if states else "not started"
    lines = [f"job {spec.job}, party {party}: {status} (state file {store.path})"]
    if digest is not None and digest != spec.digest():
        lines.append("  note: these states were recorded for a different version of this job file; the next "
                     "`pet run` refuses them (new job id, or --rerun)")
    order = spec.order()
    width = max(len(t.name) for t in order)
    for i, task in enumerate(order, 1):
        st = states.get(task.name)
        if st is None:
            lines.append(f"  {i}. {task.name:<{width}} ({task.type}): not started")
            continue
        took = ""
        if st["started"] is not None and st["ended"] is not None:
            took = f", took {st['ended'] - st['started']:.2f} s"
        times = ""
        if st["started"] is not None:
            times = f", started {_when(st['started'])}"
            if st["ended"] is not None:
                times += f", ended {_when(st['ended'])}"
        lines.append(f"  {i}. {task.name:<{width}} ({task.type}): {st['status']}{times}{took}")
        summary = _summary(st["result"])
        if summary:
            label = "outputs" if st["status"] == "SUCCESS" else "last outputs"
            lines.append(f"       {label}: {summary}")
        if st["error"] and st["status"] != "SUCCESS":
            first = st["error"].splitlines()[0]
            lines.append(f"       error: {first}")
    return lines


def show_status(args) -> int:
    """``--status``: print what the state file says about the job; connects to nobody."""
    from pet.jobs import StateStore

    spec = _spec(args)
    store = StateStore.open_existing(args.state)
    parties = [_party(args.party)] if args.party is not None else store.parties(spec.job)
    if not parties:
        print(f"job {spec.job}: no task states in {args.state} (not run here yet)")
        return 0
    for party in parties:
        print("\n".join(status_lines(spec, store, party)))
    return 0


def run(args) -> int:
    from pet.cli._net import refuse_plaintext
    from pet.jobs import run_job
    from pet.transport import tcp
    from pet.transport.tls import TLSConfig

    if args.status:
        return show_status(args)
    if args.party is None:
        raise InputError("--party is required (0 or 1; party_a or party_b) unless --status")
    party = _party(args.party)
    spec = _spec(args)
    if getattr(args, "no_dealer", False):
        spec = dataclasses.replace(spec, dealer=None, correlations="ot")  # part of the digest both compare
    address = args.address or spec.address
    host, port = tcp.parse_address(address)
    tls = None
    if spec.tls_dir:
        tls = TLSConfig.from_dir(spec.tls_dir, f"party{party}")  # the peer must be party<1-P>
    use_tls = "use mutual TLS (network.tls_dir in the job file)"
    refuse_plaintext(args, tls, host, "run", "listen on" if party == 0 else "connect to", use_tls=use_tls)
    if spec.dealer:
        refuse_plaintext(args, tls, tcp.parse_address(spec.dealer)[0], "run", "connect to the dealer at",
                         use_tls=use_tls)
    if party == 0:
        channel = tcp.listen(host, port, tls=tls, timeout=args.timeout, accept_timeout=args.timeout,
                             insecure=args.insecure)
    else:
        channel = tcp.connect(host, port, tls=tls, timeout=args.timeout, retry_for=args.timeout,
                              insecure=args.insecure)
    dealer = None
    if spec.dealer:
        d_host, d_port = tcp.parse_address(spec.dealer)
        dealer_channels = []

        def dealer():
            dealer_channels.append(tcp.connect(d_host, d_port, tls=tls.for_dealer() if tls else None,
                                               timeout=args.timeout, retry_for=args.timeout,
                                               insecure=args.insecure))
            return dealer_channels[-1]
    with channel:
        try:
            result = run_job(spec, party, channel, state_path=args.state, rerun=_rerun(args), dealer=dealer)
        finally:
            for d in dealer_channels if spec.dealer else ():
                d.close()
    print(f"job {result.job}: {result.status} (ran {len(result.ran)}, skipped {len(result.skipped)})")
    if result.status != "SUCCESS":
        print(_job_words(result.error or ""), file=sys.stderr)
        return 1
    return 0
