"""Job files: a small DAG of two-party tasks, and conversion of the reference platform's
missions.

A pet job file (YAML)::

    job: breast-demo                 # job id: names the state file's rows
    network:
      address: 127.0.0.1:9300        # party 0 listens here, party 1 connects here
      tls_dir: certs/                # optional: ca.pem and party<N>.pem/.key (mutual TLS)
      dealer: 127.0.0.1:9301         # `pet dealer` address, for MPC tasks (sql, xgb, leiden)
      # correlations: ot             # instead of a dealer: dealer-free MPC (the two parties make
                                     # the correlated randomness by oblivious transfer)
    tasks:
      - name: align                  # unique task name
        type: psi                    # a registered task type (pet.jobs.tasks.TASK_TYPES)
        params: {column: id}         # common parameters
        party0: {input: a.csv, output: a_aligned.csv}   # per-party parameters
        party1: {input: b.csv, output: b_aligned.csv}
      - name: report
        type: ...
        depends: [align]

Both parties run the same file (``pet run job.yaml --party 0`` / ``--party 1``); a task runs
on both, and its parameters are the common ``params`` updated by the party's own section.

The reference platform (PrivacyGo PETPlatform) describes a job as a mission YAML (``meta``,
``operators`` with ``class``/``party``/``depends``) plus a request JSON
(``mission_params`` with ``party_a``/``party_b`` sections); :func:`from_reference` converts
that pair into this format (party names sorted: ``party_a`` -> 0, ``party_b`` -> 1).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field

import yaml

from pet.errors import InputError

__all__ = ["TaskSpec", "JobSpec", "load_job", "parse_job", "from_reference", "REFERENCE_CLASSES"]

#: Domain separation of :meth:`JobSpec.digest` (bump when the canonical form changes).
_DIGEST_DOMAIN = b"pet.jobs.spec/v1\n"

#: Reference operator classes -> pet task types, and how their parameters translate.
REFERENCE_CLASSES = {
    "PSITransform": "psi",
    "PETSQL": "sql",
    "LeidenTransform": "leiden",
    "XGBoostClassifierFit": "xgb_classifier_fit",
    "XGBoostClassifierPredict": "xgb_classifier_predict",
    "XGBoostRegressorFit": "xgb_regressor_fit",
    "XGBoostRegressorPredict": "xgb_regressor_predict",
}


@dataclass(frozen=True)
class TaskSpec:
    name: str
    type: str
    params: dict = field(default_factory=dict)
    party_params: tuple = ({}, {})
    depends: tuple = ()

    def params_for(self, party: int) -> dict:
        merged = dict(self.params)
        merged.update(self.party_params[party])
        return merged


@dataclass(frozen=True)
class JobSpec:
    job: str
    tasks: tuple
    address: str = "127.0.0.1:9300"
    tls_dir: str | None = None
    dealer: str | None = None
    correlations: str | None = None  # "ot": dealer-free MPC tasks (no network.dealer)
    scale_out: dict = field(default_factory=dict)  # job-level bucketed PSI settings (pet.jobs.tasks)

    def scale_out_for(self, party: int) -> dict:
        """The ``scale_out`` settings of ``party``: the common ones updated by its section."""
        merged = {k: v for k, v in self.scale_out.items() if k not in ("party0", "party1")}
        merged.update(self.scale_out.get(f"party{party}") or {})
        return merged

    def canonical(self) -> dict:
        """The whole job as parsed -- id, network settings (defaults filled in) and every task
        with its common and per-party parameters and dependencies, in file order -- as plain
        JSON values."""
        network = {"address": self.address, "tls_dir": self.tls_dir, "dealer": self.dealer}
        if self.correlations is not None:  # absent by default: digests of older job files are unchanged
            network["correlations"] = self.correlations
        out = {
            "job": self.job,
            "network": network,
            "tasks": [{"name": t.name, "type": t.type, "params": _canonical_value(t.params, t.name),
                       "party0": _canonical_value(t.party_params[0], t.name),
                       "party1": _canonical_value(t.party_params[1], t.name),
                       "depends": list(t.depends)} for t in self.tasks],
        }
        if self.scale_out:  # only when given: the digests of existing job files do not change
            out["scale_out"] = _canonical_value(self.scale_out, "scale_out")
        return out

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`canonical` (sorted keys, no spaces,
        UTF-8). Two job files get the same digest exactly when they parse to the same job,
        whatever their formatting, key order or comments."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=True)
        return hashlib.sha256(_DIGEST_DOMAIN + text.encode("utf-8")).hexdigest()

    def order(self) -> list[TaskSpec]:
        """Tasks in dependency order; ties keep file order (identical on both parties)."""
        done: set[str] = set()
        ordered: list[TaskSpec] = []
        pending = list(self.tasks)
        while pending:
            ready = [t for t in pending if set(t.depends) <= done]
            if not ready:
                cycle = ", ".join(t.name for t in pending)
                raise InputError(f"job {self.job!r}: dependency cycle among tasks {cycle}")
            first = ready[0]
            ordered.append(first)
            done.add(first.name)
            pending.remove(first)
        return ordered


def _canonical_value(value, task: str):
    """``value`` (as YAML loaded it) as plain JSON values, for :meth:`JobSpec.digest`."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            text = key if isinstance(key, str) else json.dumps(_canonical_value(key, task))
            if text in out:
                raise InputError(f"task {task!r}: parameter key {text!r} appears twice (as text and as a number)")
            out[text] = _canonical_value(item, task)
        return out
    if isinstance(value, (list, tuple)):
        return [_canonical_value(v, task) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return {"$date": value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (set, frozenset)):
        return {"$set": sorted(json.dumps(_canonical_value(v, task), sort_keys=True) for v in value)}
    raise InputError(f"task {task!r}: parameters may hold only YAML scalars, lists and mappings, "
                     f"got {type(value).__name__}")


def _mapping(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a mapping, got {type(value).__name__}")
    return dict(value)


def parse_job(data: dict, *, source: str = "job") -> JobSpec:
    """Validate a job dictionary (as loaded from YAML) into a :class:`JobSpec`."""
    data = _mapping(data, source)
    unknown = set(data) - {"job", "network", "tasks", "scale_out"}
    if unknown:
        raise InputError(f"{source}: unknown top-level keys {sorted(unknown)}")
    job = data.get("job")
    if not isinstance(job, str) or not job:
        raise InputError(f"{source}: 'job' must be a non-empty string (the job id)")
    network = _mapping(data.get("network"), f"{source}: network")
    tasks_raw = data.get("tasks")
    if not isinstance(tasks_raw, list) or not tasks_raw:
        raise InputError(f"{source}: 'tasks' must be a non-empty list")
    tasks = []
    names = set()
    for i, raw in enumerate(tasks_raw):
        raw = _mapping(raw, f"{source}: tasks[{i}]")
        bad = set(raw) - {"name", "type", "params", "party0", "party1", "depends"}
        if bad:
            raise InputError(f"{source}: tasks[{i}] has unknown keys {sorted(bad)}")
        name, kind = raw.get("name"), raw.get("type")
        if not isinstance(name, str) or not name:
            raise InputError(f"{source}: tasks[{i}] needs a 'name'")
        if name in names:
            raise InputError(f"{source}: task name {name!r} is used twice")
        if not isinstance(kind, str) or not kind:
            raise InputError(f"{source}: task {name!r} needs a 'type'")
        depends = raw.get("depends") or []
        if isinstance(depends, str):
            depends = [depends]
        names.add(name)
        tasks.append(TaskSpec(
            name=name, type=kind,
            params=_mapping(raw.get("params"), f"task {name!r} params"),
            party_params=(_mapping(raw.get("party0"), f"task {name!r} party0"),
                          _mapping(raw.get("party1"), f"task {name!r} party1")),
            depends=tuple(depends),
        ))
    for task in tasks:
        for dep in task.depends:
            if dep not in names:
                raise InputError(f"{source}: task {task.name!r} depends on unknown task {dep!r}")
    bad = set(network) - {"address", "tls_dir", "dealer", "correlations"}
    if bad:
        raise InputError(f"{source}: unknown network keys {sorted(bad)}")
    dealer, correlations = _correlation_source(network.get("dealer"), network.get("correlations"), source)
    spec = JobSpec(job=job, tasks=tuple(tasks), address=str(network.get("address", "127.0.0.1:9300")),
                   tls_dir=network.get("tls_dir"), dealer=dealer, correlations=correlations,
                   scale_out=_scale_out(data.get("scale_out"), source))
    spec.order()  # reject cycles now
    spec.digest()  # and parameters that have no canonical JSON form
    return spec


#: Values of ``network.correlations`` (``dealer`` is the default and needs ``network.dealer``).
JOB_CORRELATIONS = ("ot", "dealer")


def _correlation_source(dealer, correlations, source: str):
    """``(dealer, correlations)`` of a job's network section: ``correlations: ot`` (dealer-free;
    ``dealer: none`` is accepted as a synonym) or a ``dealer`` address, not both."""
    if isinstance(dealer, str) and dealer.strip().lower() == "none" or dealer is False:
        if correlations not in (None, "ot"):
            raise InputError(f"{source}: network.dealer: none means correlations: ot, got correlations: "
                             f"{str(correlations)[:20]!r}")
        dealer, correlations = None, "ot"
    if correlations is None:
        return dealer, None
    if correlations not in JOB_CORRELATIONS:
        raise InputError(f"{source}: network.correlations must be one of {', '.join(JOB_CORRELATIONS)}, "
                         f"got {str(correlations)[:20]!r}")
    if correlations == "ot" and dealer is not None:
        raise InputError(f"{source}: network.correlations: ot is dealer-free; remove network.dealer "
                         f"(or drop correlations: ot to use the dealer)")
    if correlations == "dealer":
        if dealer is None:
            raise InputError(f"{source}: network.correlations: dealer needs network.dealer HOST:PORT")
        return dealer, None  # the default, spelled out: the same digest as without the key
    return None, "ot"


#: Keys of a job's ``scale_out`` section (and of its ``party0``/``party1`` sub-sections).
SCALE_OUT_KEYS = ("buckets", "cluster", "state_dir", "max_retries", "listen_ports")


def _scale_out(value, source: str) -> dict:
    """The job-level ``scale_out`` section: bucketed PSI for the ``psi`` and ``sql`` tasks."""
    out = _mapping(value, f"{source}: scale_out")
    bad = set(out) - {*SCALE_OUT_KEYS, "party0", "party1"}
    if bad:
        raise InputError(f"{source}: unknown scale_out keys {sorted(bad)} (allowed: {list(SCALE_OUT_KEYS)}, "
                         "party0, party1)")
    for party in ("party0", "party1"):
        if party in out:
            out[party] = _mapping(out[party], f"{source}: scale_out.{party}")
            bad = set(out[party]) - set(SCALE_OUT_KEYS)
            if bad:
                raise InputError(f"{source}: unknown scale_out.{party} keys {sorted(bad)}")
    return out


def load_job(path: str | os.PathLike) -> JobSpec:
    """Read and validate a job YAML file. Relative paths in it stay relative to the cwd."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise InputError(f"cannot read job file {str(path)!r}: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"job file {str(path)!r} is not valid YAML: {exc}") from None
    return parse_job(data, source=str(path))


def from_reference(mission_path, request_path, *, address: str = "127.0.0.1:9300",
                   dealer: str | None = None, correlations: str | None = None) -> JobSpec:
    """Convert a reference platform mission YAML and job-request JSON into a :class:`JobSpec`.

    Each operator pair (one per party) of the same class becomes one two-party task; the
    request's common parameters become ``params`` and its ``party_a``/``party_b`` sections
    the per-party parameters (nested ``inputs``/``outputs`` kept as they are). ``dealer`` and
    ``correlations`` (``"ot"``: dealer-free) become the job's network settings.
    """
    try:
        with open(mission_path, encoding="utf-8") as fh:
            mission = yaml.safe_load(fh)
        with open(request_path, encoding="utf-8") as fh:
            request = json.load(fh)
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read reference mission/request: {exc}") from None
    mission = _mapping(mission, str(mission_path))
    meta = _mapping(mission.get("meta"), "mission meta")
    operators = mission.get("operators")
    if not isinstance(operators, list) or not operators:
        raise InputError(f"{mission_path}: 'operators' must be a non-empty list")
    params = _mapping(_mapping(request, str(request_path)).get("mission_params"), "mission_params")
    party_names = sorted(k for k in params if k.startswith("party_"))
    if len(party_names) != 2:
        raise InputError(f"{request_path}: expected sections for two parties, found {party_names}")
    common = {k: v for k, v in params.items() if k not in party_names}

    by_class: dict[str, list] = {}
    for op in operators:
        op = _mapping(op, "operator")
        by_class.setdefault(op.get("class"), []).append(op)
    tasks = []
    for cls, ops in by_class.items():
        kind = REFERENCE_CLASSES.get(cls)
        if kind is None:
            raise InputError(f"{mission_path}: operator class {cls!r} has no pet task type")
        parties = sorted(op.get("party") for op in ops)
        if parties != party_names:
            raise InputError(f"{mission_path}: operator {cls!r} must run at {party_names}, found {parties}")
        depends = sorted({d for op in ops for d in (op.get("depends") or [])})
        name_of = {op.get("name"): cls for op in operators}
        tasks.append({
            "name": meta.get("name", "task") if len(by_class) == 1 else cls,
            "type": kind,
            "params": common,
            "party0": params[party_names[0]],
            "party1": params[party_names[1]],
            "depends": sorted({name_of[d] for d in depends if d in name_of}),
        })
    job_id = f"{meta.get('name', 'mission')}@{meta.get('version', 1)}"
    network = {"address": address} if dealer is None else {"address": address, "dealer": dealer}
    if correlations is not None:
        network["correlations"] = correlations
    return parse_job({"job": job_id, "network": network, "tasks": tasks}, source=str(mission_path))
