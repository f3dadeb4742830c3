"""Task states of jobs, kept in a SQLite file so a failed or interrupted job can resume.

States follow the reference platform: ``INIT -> RUNNING -> SUCCESS | FAILED``, and
``CANCELED`` for a task interrupted by the user. A job's status is derived, first match
wins: any FAILED -> FAILED; any CANCELED -> CANCELED; all SUCCESS -> SUCCESS; otherwise
RUNNING (or INIT when nothing started). A task left RUNNING by a killed process counts as not
done and runs again. Every change is one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

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
)
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
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def register(self, job: str, party: int, tasks) -> None:
        """Make sure every task has a row (new ones start in INIT)."""
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT OR IGNORE INTO task_state (job, party, task, status) VALUES (?, ?, ?, 'INIT')",
                [(job, party, t) for t in tasks],
            )

    def set(self, job: str, party: int, task: str, status: str, *, error: str | None = None,
            result: str | None = None) -> None:
        if status not in STATES:
            raise ValueError(f"unknown task state {status!r}")
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
        with closing(self._connect()) as db:
            rows = db.execute("SELECT task, status, started, ended, error, result FROM task_state "
                              "WHERE job=? AND party=?", (job, party)).fetchall()
        return {r[0]: {"status": r[1], "started": r[2], "ended": r[3], "error": r[4], "result": r[5]}
                for r in rows}

    def status(self, job: str, party: int) -> str:
        return job_status(s["status"] for s in self.states(job, party).values())
