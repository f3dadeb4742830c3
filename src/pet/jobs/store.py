"""Task states of jobs, kept in a SQLite file so a failed or interrupted job can resume.

States follow the reference platform: ``INIT -> RUNNING -> SUCCESS | FAILED``, and
``CANCELED`` for a task interrupted by the user. A job's status is derived, first match
wins: any FAILED -> FAILED; any CANCELED -> CANCELED; all SUCCESS -> SUCCESS; otherwise
RUNNING (or INIT when nothing started). A task left RUNNING by a killed process counts as not
done and runs again. Every change is one transaction.

The file also records, per job id and party, the digest of the job file the states belong to
(:meth:`pet.jobs.JobSpec.digest`): finished states of one job file never count as finished
for an edited one (:meth:`StateStore.register` refuses, or resets them when asked to).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

from pet.errors import InputError

__all__ = ["StateStore", "STATES", "job_status"]

STATES = ("INIT", "RUNNING", "SUCCESS", "FAILED", "CANCELED")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS task_state (
    job TEXT NOT NULL,
    party INTEGER NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL,
    ended REAL,
    error TEXT,
    result TEXT,
    PRIMARY KEY (job, party, task)
);
CREATE TABLE IF NOT EXISTS job_digest (
    job TEXT NOT NULL,
    party INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (job, party)
);
"""


def job_status(statuses) -> str:
    statuses = list(statuses)
    if any(s == "FAILED" for s in statuses):
        return "FAILED"
    if any(s == "CANCELED" for s in statuses):
        return "CANCELED"
    if statuses and all(s == "SUCCESS" for s in statuses):
        return "SUCCESS"
    if all(s == "INIT" for s in statuses):
        return "INIT"
    return "RUNNING"


class StateStore:
    """Task states of one party's jobs in the SQLite file at ``path``."""

    def __init__(self, path):
        self.path = str(path)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def register(self, job: str, party: int, tasks, digest: str | None = None, *,
                 reset: bool = False) -> None:
        """Make sure every task has a row (new ones start in INIT).

        With ``digest`` (the job file's :meth:`~pet.jobs.JobSpec.digest`): if this file holds
        states of ``job`` recorded for a different job file (or by a pet that recorded no
        digest), raise :class:`~pet.errors.InputError` -- or, with ``reset=True``, set every
        state of the job back to INIT (results dropped) and record the new digest.
        """
        with closing(self._connect()) as db, db:
            if digest is not None:
                row = db.execute("SELECT digest FROM job_digest WHERE job=? AND party=?", (job, party)).fetchone()
                has_states = db.execute("SELECT 1 FROM task_state WHERE job=? AND party=? LIMIT 1",
                                        (job, party)).fetchone() is not None
                if (row is None and has_states) or (row is not None and row[0] != digest):
                    if not reset:
                        raise InputError(
                            f"state file {self.path!r} holds task states of job {job!r} from a different "
                            f"job file (or from an older pet that recorded none): give the edited job a new "
                            f"'job' id, or pass --rerun (rerun=True) to run every task again")
                    db.execute("UPDATE task_state SET status='INIT', started=NULL, ended=NULL, error=NULL, "
                               "result=NULL WHERE job=? AND party=?", (job, party))
                db.execute("INSERT OR REPLACE INTO job_digest (job, party, digest) VALUES (?, ?, ?)",
                           (job, party, digest))
            db.executemany(
                "INSERT OR IGNORE INTO task_state (job, party, task, status) VALUES (?, ?, ?, 'INIT')",
                [(job, party, t) for t in tasks],
            )

    def set(self, job: str, party: int, task: str, status: str, *, error: str | None = None,
            result: str | None = None) -> None:
        if status not in STATES:
            raise InputError(f"status must be one of {', '.join(STATES)}, got {status!r}")
        now = time.time()
        with closing(self._connect()) as db, db:
            if status == "RUNNING":
                db.execute("UPDATE task_state SET status=?, started=?, ended=NULL, error=NULL "
                           "WHERE job=? AND party=? AND task=?", (status, now, job, party, task))
            elif status == "INIT":
                db.execute("UPDATE task_state SET status=?, started=NULL, ended=NULL, error=NULL "
                           "WHERE job=? AND party=? AND task=?", (status, job, party, task))
            else:
                db.execute("UPDATE task_state SET status=?, ended=?, error=?, result=COALESCE(?, result) "
                           "WHERE job=? AND party=? AND task=?", (status, now, error, result, job, party, task))

    def states(self, job: str, party: int) -> dict[str, dict]:
        """``{task: {"status", "started", "ended", "error", "result"}}`` (times: Unix seconds,
        ``result``: the task's JSON summary, e.g. its output paths)."""
        with closing(self._connect_ro()) as db:
            rows = db.execute("SELECT task, status, started, ended, error, result FROM task_state "
                              "WHERE job=? AND party=?", (job, party)).fetchall()
        return {r[0]: {"status": r[1], "started": r[2], "ended": r[3], "error": r[4], "result": r[5]}
                for r in rows}

    def status(self, job: str, party: int) -> str:
        return job_status(s["status"] for s in self.states(job, party).values())

    @classmethod
    def open_existing(cls, path) -> StateStore:
        """The store in an existing file, for reading (``pet run --status``): nothing is
        created; :class:`~pet.errors.InputError` if ``path`` is not a state file."""
        import os

        if not os.path.isfile(path):
            raise InputError(f"--state {str(path)!r}: no such state file (the job has not run here with this "
                             "--state; the default is pet-jobs.sqlite in the directory `pet run` ran in)")
        store = cls.__new__(cls)
        store.path = str(path)
        try:
            with closing(sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, timeout=30)) as db:
                db.execute("SELECT 1 FROM task_state LIMIT 1").fetchall()
        except sqlite3.DatabaseError:
            raise InputError(f"--state {str(path)!r}: not a pet job state file") from None
        return store

    def parties(self, job: str) -> list[int]:
        """The parties that have states of ``job`` in this file."""
        with closing(self._connect_ro()) as db:
            return [r[0] for r in db.execute("SELECT DISTINCT party FROM task_state WHERE job=? ORDER BY party",
                                             (job,))]

    def digest(self, job: str, party: int) -> str | None:
        """The job-file digest the states of ``job`` / ``party`` were recorded for (None: none)."""
        with closing(self._connect_ro()) as db:
            row = db.execute("SELECT digest FROM job_digest WHERE job=? AND party=?", (job, party)).fetchone()
        return None if row is None else row[0]

    def _connect_ro(self) -> sqlite3.Connection:
        """A connection for reading: no schema, no journal-mode change (the file exists)."""
        return sqlite3.connect(self.path, timeout=30)
