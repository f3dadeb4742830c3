"""Run one party's side of a job: its tasks in dependency order, states in SQLite.

Protocol between the two parties (over one channel for the whole job):

1. Both send a description of the job (id, and each task's name, type and dependencies); they
   must be identical, or both stop with :class:`~pet.errors.ProtocolError`.
2. Both send the names of the tasks they have not finished. A task runs if *either* party
   has not finished it (a two-party task needs both), and so does every task depending on
   one that runs. Both derive the same list.
3. For each task to run, in order: both exchange the task's name (a barrier), run the
   task's function, then exchange ``done``. A task that raises closes the channel, so the
   peer's task fails promptly with :class:`~pet.errors.PeerDisconnected`; both record
   FAILED and stop. Ctrl-C records CANCELED.

What the parties learn from the runner itself: the job description (identical anyway) and
which tasks the other has finished.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from typing import Callable

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

    def session(self):
        """The job's :class:`pet.mpc.Session` with the peer and the dealer (opened on first use)."""
        if self.session_provider is None:
            raise InputError(f"task {self.task!r} needs MPC: give the job a dealer (network.dealer)")
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


def _describe(spec: JobSpec) -> list:
    return [spec.job, [[t.name, t.type, list(t.depends)] for t in spec.order()]]


def run_job(spec: JobSpec, party: int, channel, *, state_path, task_types: dict | None = None,
            rerun: bool = False, dealer=None, log: Callable[[str], None] = print) -> JobResult:
    """Run ``party``'s side of ``spec`` over ``channel``; return a :class:`JobResult`.

    ``task_types`` maps a task type to a function ``fn(ctx: TaskContext) -> result`` (a
    JSON-serialisable summary); default :data:`pet.jobs.tasks.TASK_TYPES`. ``rerun=True``
    runs every task again, finished or not. ``dealer`` is a channel to the dealer, or a
    function returning one, used by MPC tasks (one :class:`pet.mpc.Session` per run, opened on
    first use). Raises nothing for a task failure (the result's ``status`` says FAILED, with
    the error); raises for a protocol mismatch.
    """
    if party not in (0, 1):
        raise InputError(f"party must be 0 or 1, got {party!r}")
    if task_types is None:
        from pet.jobs.tasks import TASK_TYPES as task_types
    order = spec.order()
    for task in order:
        if task.type not in task_types:
            raise InputError(f"task {task.name!r}: unknown type {task.type!r} "
                             f"(known: {', '.join(sorted(task_types))})")
    store = StateStore(state_path)
    store.register(spec.job, party, [t.name for t in order])

    peer = channel.exchange(_describe(spec))
    if peer != _describe(spec):
        channel.close()
        raise ProtocolError(f"job {spec.job!r}: the two parties' job files differ")

    states = store.states(spec.job, party)
    mine = sorted(t.name for t in order if rerun or states[t.name]["status"] != "SUCCESS")
    theirs = channel.exchange(mine)
    if not isinstance(theirs, list):
        raise ProtocolError("peer sent a malformed list of unfinished tasks")
    to_run: set[str] = set(mine) | set(theirs)
    for task in order:  # dependents of re-run tasks run again too
        if set(task.depends) & to_run:
            to_run.add(task.name)

    sessions: list = []

    def session_provider():
        if not sessions:
            from pet.mpc import Session

            dealer_channel = dealer() if callable(dealer) else dealer
            sessions.append(Session(party, channel, dealer=dealer_channel))
        return sessions[0]

    try:
        return _run_tasks(spec, party, channel, store, order, states, to_run, task_types, log,
                          session_provider if dealer is not None else None)
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
                              channel=channel, results=results, log=log, session_provider=session_provider)
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
