"""Run one party's side of a job: its tasks in dependency order, states in SQLite.

Protocol between the two parties (over one channel for the whole job):

1. Both send ``["pet-job", 1, digest]``: the SHA-256 of the canonical JSON of the *whole* job
   as parsed (:meth:`~pet.jobs.JobSpec.digest`: id, network settings, every task with its
   common and per-party parameters and dependencies). Different digests: both stop with
   :class:`~pet.errors.ProtocolError` before anything runs.
2. Both send ``{"unfinished": [...], "rerun": [...]}``: the tasks this party has not finished
   (INIT, RUNNING, FAILED or CANCELED in its state file), and the finished tasks it *agrees*
   to run again -- none by default, every task with ``rerun=True`` (``pet run --rerun``),
   the named tasks and their dependents with ``rerun=[names]``. A party *wants* its
   unfinished tasks, the ones it agreed to re-run, and every task depending on one of those
   (its own resume); the tasks to run are what either party wants (both derive the same set).
3. If that set holds a task this party does not want (it finished it, and it depends on
   nothing this party must run, and this party did not agree to re-run it), both stop
   with :class:`~pet.errors.ProtocolError` before anything runs, each naming the tasks and who
   must pass ``--rerun``. Each party decides this from its own state file and its own flag, so
   a peer that claims every task is unfinished cannot make this party recompute (and reveal
   again) the output of a finished task.
4. For each task to run, in order: both exchange the task's name (a barrier), run the
   task's function, then exchange ``done``. A task that raises closes the channel, so the
   peer's task fails promptly with :class:`~pet.errors.PeerDisconnected`; both record
   FAILED and stop. Ctrl-C records CANCELED.

What the parties learn from the runner itself: the job digest (a peer with a different job
file learns the digest of this party's file, so it can confirm a guess of it -- the file is
meant to be shared by both anyway), which tasks the other has finished, and which it agreed
to re-run. A FAILED task runs again on resume without ``--rerun``: a peer that fails a task
on purpose after its output was revealed can have that task run once more on the same inputs.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from pet._validate import check_party
from pet.errors import InputError, PetError, ProtocolError
from pet.jobs.spec import JobSpec
from pet.jobs.store import StateStore

__all__ = ["TaskContext", "run_job", "JobResult"]


@dataclass
class TaskContext:
    """What a task function receives."""

    job: str
    task: str
    party: int
    params: dict
    channel: object
    results: dict = field(default_factory=dict)  # results of earlier tasks in this run
    log: Callable[[str], None] = print
    session_provider: Callable[[], object] | None = None
    scale_out: dict = field(default_factory=dict)  # the job's scale_out settings for this party
    tls_dir: str | None = None  # the job's network.tls_dir (bucket tasks' data connections)

    def session(self):
        """The job's :class:`pet.mpc.Session` with the peer -- and the dealer, or dealer-free with
        ``network.correlations: ot`` (opened on first use)."""
        if self.session_provider is None:
            raise InputError(f"task {self.task!r} needs MPC: give the job a dealer (network.dealer) or make it "
                             f"dealer-free (network.correlations: ot, or `pet run --no-dealer` at both parties)")
        return self.session_provider()


@dataclass
class JobResult:
    job: str
    party: int
    status: str
    ran: list
    skipped: list
    results: dict
    error: str | None = None


_HELLO = "pet-job"
_PROTOCOL = 1


def _with_dependents(order, names) -> set[str]:
    """``names`` and every task depending (directly or not) on one of them."""
    closed = set(names)
    for task in order:  # dependency order: one pass suffices
        if set(task.depends) & closed:
            closed.add(task.name)
    return closed


def _rerun_set(order, rerun) -> set[str]:
    """The finished tasks this party agrees to run again (``rerun``: bool or task names)."""
    names = [t.name for t in order]
    if rerun is True:
        return set(names)
    if rerun is False or rerun is None:
        return set()
    if isinstance(rerun, str):
        rerun = [rerun]
    try:
        asked = list(rerun)
    except TypeError:
        raise InputError(f"rerun must be True, False or a list of task names, got {type(rerun).__name__}") from None
    unknown = sorted(str(a) for a in asked if a not in names)
    if unknown:
        raise InputError(f"rerun names tasks that are not in the job: {unknown}")
    return _with_dependents(order, asked)


def _exchange_digest(spec: JobSpec, channel) -> None:
    """Step 1: both parties must run the identical job (whole file as parsed)."""
    digest = spec.digest()
    peer = channel.exchange([_HELLO, _PROTOCOL, digest])
    if not (isinstance(peer, list) and len(peer) == 3 and peer[:2] == [_HELLO, _PROTOCOL]
            and isinstance(peer[2], str)):
        channel.close()
        raise ProtocolError(f"job {spec.job!r}: the peer does not speak this version of the pet job "
                            f"protocol (run the same pet version at both parties)")
    if peer[2] != digest:
        channel.close()
        raise ProtocolError(f"job {spec.job!r}: the two parties' job files differ (job digest {digest[:16]} "
                            f"here, {peer[2][:16]} at the peer); both must run the identical job file -- "
                            f"the same tasks, params, per-party sections and network settings (`pet run "
                            f"--no-dealer` counts as a network setting: both parties pass it or neither)")


def _task_list(value, names: set[str], what: str) -> set[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v in names for v in value):
        raise ProtocolError(f"peer sent a malformed list of {what}")
    return set(value)


def _plan_tasks(spec: JobSpec, channel, order, states, rerun) -> set[str]:
    """Steps 2-3: agree on the tasks to run; refuse to run again what a party finished
    without its own consent."""
    names = [t.name for t in order]
    mine_unfinished = {n for n in names if states[n]["status"] != "SUCCESS"}
    mine_rerun = _rerun_set(order, rerun)
    peer = channel.exchange({"unfinished": sorted(mine_unfinished), "rerun": sorted(mine_rerun)})
    if not isinstance(peer, dict) or set(peer) != {"unfinished", "rerun"}:
        channel.close()
        raise ProtocolError("peer sent a malformed list of unfinished tasks")
    try:
        peer_unfinished = _task_list(peer["unfinished"], set(names), "unfinished tasks")
        peer_rerun = _task_list(peer["rerun"], set(names), "tasks to re-run")
    except ProtocolError:
        channel.close()
        raise
    mine_wanted = _with_dependents(order, mine_unfinished | mine_rerun)  # a party's own resume
    peer_wanted = _with_dependents(order, peer_unfinished | peer_rerun)
    to_run = mine_wanted | peer_wanted
    mine_refused = [n for n in names if n in to_run and n not in mine_wanted]
    peer_refused = [n for n in names if n in to_run and n not in peer_wanted]
    problems = []
    if mine_refused:
        problems.append(f"task(s) {mine_refused} would run again, but this party has already finished them "
                        f"(running them again recomputes and reveals their outputs again): pass --rerun "
                        f"(library: rerun=True or rerun=[task names]) at this party to allow it")
    if peer_refused:
        problems.append(f"task(s) {peer_refused} would run again, but the peer has already finished them and "
                        f"did not agree to run them again: the peer must pass --rerun to allow it")
    if problems:
        channel.close()
        raise ProtocolError(f"job {spec.job!r}: refused; " + "; ".join(problems))
    return to_run


def run_job(spec: JobSpec, party: int, channel, *, state_path, task_types: dict | None = None,
            rerun=False, dealer=None, log: Callable[[str], None] = print) -> JobResult:
    """Run ``party``'s side of ``spec`` over ``channel``; return a :class:`JobResult`.

    ``task_types`` maps a task type to a function ``fn(ctx: TaskContext) -> result`` (a
    JSON-serialisable summary); default :data:`pet.jobs.tasks.TASK_TYPES`. ``rerun`` is this
    party's consent to run tasks it has finished again: ``False`` (default) refuses (both
    parties stop with :class:`~pet.errors.ProtocolError` if the other needs one of them),
    ``True`` runs every task again (the peer must agree for the tasks *it* finished), a list
    of task names re-runs those and their dependents. ``rerun=True`` also resets the states
    of a job whose file changed since they were recorded. ``dealer`` is a channel to the dealer, or a
    function returning one, used by MPC tasks (one :class:`pet.mpc.Session` per run, opened on
    first use). A job with ``correlations="ot"`` (``network.correlations: ot``) runs its MPC
    tasks dealer-free: the session makes its correlated randomness with the peer by oblivious
    transfer over ``channel`` (base OTs when first opened) and ``dealer`` must be None.
    Raises nothing for a task failure (the result's ``status`` says FAILED, with the error);
    raises for a protocol mismatch.
    """
    party = check_party(party)
    if spec.correlations == "ot" and dealer is not None:
        raise InputError(f"job {spec.job!r} is dealer-free (network.correlations: ot): do not pass dealer=")
    if task_types is None:
        from pet.jobs.tasks import TASK_TYPES as task_types
    order = spec.order()
    for task in order:
        if task.type not in task_types:
            raise InputError(f"task {task.name!r}: unknown type {task.type!r} "
                             f"(known: {', '.join(sorted(task_types))})")
    _rerun_set(order, rerun)  # validate before touching the state file or the channel
    store = StateStore(state_path)
    store.register(spec.job, party, [t.name for t in order], spec.digest(), reset=rerun is True)

    _exchange_digest(spec, channel)
    states = store.states(spec.job, party)
    to_run = _plan_tasks(spec, channel, order, states, rerun)

    sessions: list = []

    def session_provider():
        if not sessions:
            from pet.mpc import Session

            if spec.correlations == "ot":
                sessions.append(Session(party, channel, correlations="ot"))
            else:
                dealer_channel = dealer() if callable(dealer) else dealer
                sessions.append(Session(party, channel, dealer=dealer_channel))
        return sessions[0]

    has_source = dealer is not None or spec.correlations == "ot"
    try:
        return _run_tasks(spec, party, channel, store, order, states, to_run, task_types, log,
                          session_provider if has_source else None)
    finally:
        for session in sessions:
            try:
                session.close()
            except PetError:  # the channel may already be closed after a failed task
                pass


def _run_tasks(spec, party, channel, store, order, states, to_run, task_types, log, session_provider):
    results: dict = {name: json.loads(s["result"]) for name, s in states.items()
                     if s["result"] and name not in to_run}
    ran, skipped = [], [t.name for t in order if t.name not in to_run]
    for i, task in enumerate(order, 1):
        if task.name not in to_run:
            continue
        store.set(spec.job, party, task.name, "RUNNING")
        log(f"[{i}/{len(order)}] {task.name} ({task.type}) ...")
        try:
            if channel.exchange(["task", task.name]) != ["task", task.name]:
                raise ProtocolError(f"peer is not at task {task.name!r}")
            ctx = TaskContext(job=spec.job, task=task.name, party=party, params=task.params_for(party),
                              channel=channel, results=results, log=log, session_provider=session_provider,
                              scale_out=spec.scale_out_for(party), tls_dir=spec.tls_dir)
            result = task_types[task.type](ctx)
            if channel.exchange(["done", task.name]) != ["done", task.name]:
                raise ProtocolError(f"peer did not finish task {task.name!r}")
        except KeyboardInterrupt:
            store.set(spec.job, party, task.name, "CANCELED", error="interrupted")
            channel.close()
            raise
        except Exception as exc:  # recorded in the state file and returned
            channel.close()
            message = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, PetError):
                message += "\n" + traceback.format_exc(limit=5)
            store.set(spec.job, party, task.name, "FAILED", error=message)
            log(f"    FAILED: {type(exc).__name__}: {exc}")
            return JobResult(spec.job, party, "FAILED", ran, skipped, results, error=message)
        encoded = json.dumps(result, default=str)
        store.set(spec.job, party, task.name, "SUCCESS", result=encoded)
        results[task.name] = json.loads(encoded)
        ran.append(task.name)
        log(f"    done: {encoded[:200]}")
    return JobResult(spec.job, party, store.status(spec.job, party), ran, skipped, results)
