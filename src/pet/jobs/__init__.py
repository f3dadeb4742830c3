"""Two-party jobs: a small DAG of tasks run by each party, with durable task states.

The thinnest job platform over pet (the reference platform's job manager, minus the web
server): :func:`load_job` reads a job file, :func:`run_job` runs one party's side of it over
a channel, and :class:`StateStore` keeps each task's state (INIT, RUNNING, SUCCESS, FAILED,
CANCELED) in SQLite so a failed job can be resumed. :func:`from_reference` converts the
reference platform's mission YAML + job request JSON. The command line is ``pet run``.
"""

from pet.jobs.runner import JobResult, TaskContext, run_job
from pet.jobs.spec import JobSpec, TaskSpec, from_reference, load_job, parse_job
from pet.jobs.store import STATES, StateStore, job_status

__all__ = ["JobSpec", "TaskSpec", "TaskContext", "JobResult", "StateStore", "STATES", "job_status",
           "load_job", "parse_job", "from_reference", "run_job"]
