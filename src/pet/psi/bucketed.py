"""Bucketed PSI alignment on each party's own Dask cluster, resumable bucket by bucket.

:func:`align_dataset` aligns a CSV/Parquet file with the peer's like
:func:`~pet.psi.align_file`, but splits both inputs into ``B`` buckets by a keyed hash of the
key, runs one PSI per bucket pair as a Dask task on each party's own cluster, and writes
the aligned rows bucket by bucket (the joint order: bucket 0's rows in its PSI's joint
order, then bucket 1's, ...). A process holds at most one bucket (about ``n / B`` rows), so
the largest process does not grow with the input when ``B`` grows with it.

Steps (each party; the two *drivers* -- the processes calling :func:`align_dataset` --
talk over ``channel``, the control channel):

1. Local checks: the input is readable and has the key columns. A failure is told to the
   peer in the header (no detail about the input), so both parties fail at once.
2. Header exchange (one round): protocol, version, party, bucket count ``B``, number of key
   columns, per-bucket protocol, reveal mode, hash suite, a resumable run id and
   ``SHA-256(nonce)`` (commitment). Any disagreement is a :class:`~pet.errors.ProtocolError`
   at both. Only then does each party start (or connect to) its cluster, and the parties
   exchange their worker slot counts (one round).
3. Bucket key (one round): each reveals its 32-byte CSPRNG nonce (checked against its
   commitment, so neither chooses its nonce after seeing the other's);
   ``key = SHA-256("pet-psi-bucket-key-v1" || nonce0 || nonce1)``, fresh every run. If
   both parties offer the same unfinished run (same run id, same inputs), they resume it
   with its stored key and exchange their done markers instead (a third round).
4. Spill (:mod:`pet.psi.spill`, Dask tasks on the party's cluster, in parallel): a plan
   task cuts the input into parts (Parquet: row ranges; CSV: byte ranges at line ends, one
   part if the file holds a ``"``), one task per part reads its rows a batch at a time;
   each row's canonical key encoding ``e`` (:mod:`pet.psi.encoding`, keys as text as
   ``pet psi``) goes to bucket ``BLAKE2b-64(e) mod B`` keyed by ``key`` (its salt and
   personalisation, :func:`~pet.psi.spill.bucket_of`); rows are buffered up to
   ``spill_bytes`` and flushed as one Parquet file holding a row group per bucket.
5. Buckets: party 0 submits a task per bucket (at most ``min(slots0, slots1)`` at once);
   it listens on a port of its worker and reports the address to its driver (through a
   Dask queue), which sends it to party 1's driver over the control channel; party 1's
   driver submits the matching task, which connects. The two tasks check they belong to
   the same run, bucket and attempt, run the per-bucket protocol (ECDH-PSI:
   :func:`~pet.psi.ecdh.run_protocol`, or KKRT: :func:`~pet.psi.kkrt.run_protocol`) on
   the bucket's rows and write the bucket's aligned rows as a Parquet part. Data
   connections use :func:`data_tls` (mutual TLS when ``tls`` is given).
6. Commit: a bucket is done when *both* tasks of the same attempt succeeded; each party
   then writes an atomic marker file. Any failure of either task (an error, a lost worker,
   a task that Dask re-ran after its worker died) fails that attempt at both parties
   (control message), both abort their task of that attempt (a Dask event the task polls
   while pairing) and retry the bucket with a fresh pairing and fresh PSI keys, up to
   ``max_retries`` times; then the run fails at both with the last error, and no output
   is written. An input error (duplicate keys, a missing key value) fails the run at once.
7. Output: when every bucket is done at both, each party writes its parts, in bucket order,
   to one Parquet file or a directory of ``part-NNNNNN.parquet`` files (read them in name
   order), atomically, and deletes the run state.

The control channel carries one small message per tick (0.1 s) each way: lists of events
``("addr", b, k, host, port)``, ``("ok", b, k)``, ``("fail", b, k)``, ``("spilled",)``,
``("fatal", kind)``, ``("complete",)``.

What each party learns, beyond :func:`~pet.psi.align` on the whole table (the intersection
and the peer's row count for a party that learns it):

- the peer's row count **per bucket** (from the bucket PSI headers), and which of its own
  rows fall in which bucket (it knows the key). The ``B`` counts are a function of the
  peer's key set under a key both parties know, so they allow testing hypotheses about the
  peer's set: if a party knew all of the peer's keys but one, the counts would tell it
  which bucket (``log2 B`` bits) the unknown key hashes to. The key is fresh per run, so
  counts of two runs on the same data cannot be linked bucket by bucket. A party that
  does not learn the intersection (``reveal`` to the other) learns these counts too.
- the per-bucket PSI leaks nothing more than the PSI on each bucket (see
  :mod:`pet.psi.ecdh` / :mod:`pet.psi.kkrt`); which bucket pairs failed and were retried.

Resume: the run state lives in ``state_dir`` (default: ``<output>.pet-state`` next to the
output; it must be visible to all of the party's workers: a local disk for ``local:N``, a
shared file system for a multi-host cluster): ``run.json`` (run id, key, inputs), the
spill files, the parts and the ``done/`` markers. Running the same command again resumes
the buckets done at both parties (same attempt label at both); the others are redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import secrets
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pet._io import atomic_output, atomic_write_bytes, is_parquet
from pet.errors import InputError, PetError, PetTypeError, ProtocolError, TransportError
from pet.psi.spill import PET_BUCKET as _PET_BUCKET
from pet.psi.spill import PET_KEY as _PET_KEY
from pet.psi.spill import bucket_of, finish_spill, plan_spill, read_bucket, spill_part

__all__ = ["BucketedResult", "BucketedRunFailed", "DEFAULT_CHUNK", "DEFAULT_PROTOCOL", "PROTOCOLS", "align_dataset",
           "bucket_of", "data_tls", "default_buckets", "open_cluster"]

_PROTO = "pet.psi.bucketed"
_VERSION = 2  # 2: bucket_of keys BLAKE2b through salt/person (numba kernel)
_KEY_DST = b"pet-psi-bucket-key-v1"
_TICK = 0.1


class BucketedRunFailed(PetError):
    """The bucketed run stopped at both parties (an input error, or a bucket whose retries
    are exhausted); no output was written."""


@dataclass
class BucketedResult:
    """What :func:`align_dataset` did: ``rows`` own input rows, ``written`` rows in the
    output (None for a party that does not learn), ``buckets``, ``retries`` (failed bucket
    attempts redone), ``resumed`` (buckets kept from an earlier run), ``seconds``, bytes
    sent and received by the bucket tasks, the largest bucket (rows) seen here."""

    rows: int = 0
    written: int | None = None
    buckets: int = 0
    retries: int = 0
    resumed: int = 0
    seconds: float = 0.0
    bytes_sent: int = 0
    bytes_received: int = 0
    largest_bucket: int = 0
    output: str | None = None
    errors: list = field(default_factory=list, repr=False)


# --------------------------------------------------------------------------- per-bucket protocols


def _ecdh_bucket(channel, store, *, party: int, mode: str, arity: int, suite: str, chunk_size: int) -> dict:
    from pet.psi.ecdh import run_protocol

    return run_protocol(channel, store, party=party, op="align", mode=mode, suite=suite, arity=arity, workers=1,
                        chunk_size=chunk_size)


def _kkrt_bucket(channel, store, *, party: int, mode: str, arity: int, suite: str, chunk_size: int) -> dict:
    """KKRT16 on one bucket (:func:`pet.psi.kkrt.run_protocol`, one thread: the Dask worker
    is the unit of parallelism). ``suite`` is ECDH's hash-to-curve suite: checked to be
    ``"NU"`` by :func:`align_dataset`, unused here."""
    from pet.psi.kkrt import run_protocol

    return run_protocol(channel, store, party=party, op="align", mode=mode, arity=arity, workers=1,
                        chunk_size=chunk_size)


#: Per-bucket protocols: ``name -> f(channel, store, *, party, mode, arity, suite, chunk_size)``
#: returning the protocol's ``run_protocol`` dict (``"matched"``: positions in ``store`` in
#: the joint order, when this party learns).
PROTOCOLS = {"ecdh": _ecdh_bucket, "kkrt": _kkrt_bucket}

#: The per-bucket protocol of :func:`align_dataset` when none is given (and the hash
#: suite is the default "NU", which KKRT uses; another suite is ECDH's): KKRT, measured
#: faster per item at 10^6 and 10^7 (docs/scale-out.md); the same default as ``align``,
#: ``pet psi``, ``pet sql`` and ``pet run`` with or without buckets.
DEFAULT_PROTOCOL = "kkrt"

#: Rows per bucket :func:`default_buckets` aims at, per protocol (measured: docs/scale-out.md).
ROWS_PER_BUCKET = {"ecdh": 1 << 14, "kkrt": 1 << 20}


def default_buckets(rows: int, protocol: str | None = None) -> int:
    """A bucket count for ``rows`` rows per party: ``max(8, ceil(rows / R))`` with ``R`` =
    :data:`ROWS_PER_BUCKET` of the protocol (at least 8 buckets so that a cluster's workers
    share the work). Both parties must use the same ``B``: compute it from a row count both
    know (e.g. the larger party's, agreed out of band)."""
    protocol = DEFAULT_PROTOCOL if protocol is None else protocol
    if protocol not in ROWS_PER_BUCKET:
        raise InputError(f"protocol must be one of {sorted(ROWS_PER_BUCKET)}, got {protocol!r}")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise InputError(f"rows must be an int >= 0, got {rows!r}")
    return max(8, -(-rows // ROWS_PER_BUCKET[protocol]))


#: Per-bucket chunk size (items per message) when ``chunk_size`` is not given: each
#: protocol's own default (KKRT's must be a multiple of 64 bins).
DEFAULT_CHUNK = {"ecdh": 1 << 14, "kkrt": 1 << 15}


# --------------------------------------------------------------------------- TLS and cluster plumbing


def data_tls(tls, party: int):
    """The TLS configuration of the data connections between bucket tasks (and of nothing
    else: the control channel is opened by the caller): the party's own, with its pinned
    peer role (:mod:`pet.transport.tls`: party ``p`` requires ``party{1-p}`` in the peer's
    certificate). Party 0's tasks are the TLS servers, party 1's the clients. A
    configuration pinned to the dealer or to this party's own role (one meant for another
    link) is refused: a bucket task must only ever talk to the other party."""
    from pet.transport.tls import TLSConfig

    if tls is None:
        return None
    if not isinstance(tls, TLSConfig):
        raise PetTypeError(f"tls must be a pet.transport.tls.TLSConfig or None, got {type(tls).__name__}")
    wrong = sorted({"dealer", f"party{party}"} & set(tls.peer_names))
    if wrong:
        raise InputError(f"tls: party {party}'s bucket connections must pin the peer to 'party{1 - party}', but "
                         f"this configuration accepts {wrong} (a configuration for another link?)")
    return tls


#: Dask settings of the ``local:N`` clusters: the bucket tasks are long CPU-bound tasks
#: paired with the peer's, so Dask's sampling and housekeeping loops (a 10 ms statistical
#: profiler and a 20 ms event-loop tick per worker, 500 ms system monitors, GIL polling,
#: work stealing, the web dashboard) cost CPU in every process for the whole run without
#: helping. Measured on ``local:2``: idle CPU of the scheduler, nannies and workers
#: 0.12 CPU-s per second with Dask's defaults (see docs/scale-out.md). Clusters given as an
#: address keep their own configuration (docs/scale-out.md lists the same settings).
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.scheduler.work-stealing": False,
}


def open_cluster(cluster, *, timeout: float = 60.0):
    """``(client, close)`` for ``cluster``: a ``distributed.Client`` (used as is),
    ``"local:N"`` (a LocalCluster of N single-threaded worker processes), or
    ``"tcp://HOST:PORT"`` / ``"tls://..."`` (an existing scheduler)."""
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError("--cluster: the bucketed path needs Dask: pip install 'pet[dask]'") from None
    if isinstance(cluster, distributed.Client):
        return cluster, lambda: None
    spec = "local:2" if cluster is None else cluster
    if not isinstance(spec, str):
        raise PetTypeError(f"cluster must be a distributed.Client or a str, got {type(spec).__name__}")
    if spec.startswith("local:"):
        try:
            n = int(spec[6:])
        except ValueError:
            n = 0
        if n < 1:
            raise InputError(f"--cluster {spec!r}: expected local:N with N >= 1 workers")
        import logging

        import dask

        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            local = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=logging.ERROR)
        client = distributed.Client(local)

        def close():
            client.close()
            local.close()
        return client, close
    if spec.startswith(("tcp://", "tls://")):
        try:
            client = distributed.Client(spec, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"--cluster {spec!r}: cannot reach the Dask scheduler: {exc}") from None
        return client, client.close
    raise InputError(f"--cluster {spec!r}: expected local:N or tcp://HOST:PORT")


def _slots(client) -> int:
    return max(1, sum(client.nthreads().values()))


# --------------------------------------------------------------------------- input checks and bucketing


def _check_input(path, columns: list[str], header: bool) -> None:
    from pet.psi.files import check_columns, file_columns

    p = Path(path)
    if not p.is_file():
        raise InputError(f"--input: no such file {str(path)!r}")
    try:
        have = file_columns(p, header=header)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unusable
        raise InputError(f"--input: cannot read {str(path)!r}: {type(exc).__name__}: {exc}") from None
    check_columns(have, columns)


# --------------------------------------------------------------------------- bucket tasks (on workers)


def _abort_name(run_id: str, party: int, b: int, k: int) -> str:
    return f"pet-psi-{run_id}-p{party}-abort-{b}-{k}"


def _aborted(run_id, party, b, k) -> bool:
    """The driver called this attempt off (an event), or left (the scheduler cancelled the
    task: its client is gone, e.g. the driver was killed)."""
    from distributed import Event, get_worker

    with contextlib.suppress(Exception):
        worker = get_worker()
        ts = worker.state.tasks.get(worker.get_current_task())
        if ts is None or ts.state in ("cancelled", "released", "forgotten"):
            return True
    return Event(_abort_name(run_id, party, b, k)).is_set()


def _listen(tls, host: str, ports, timeout: float):
    from pet.transport import tcp

    if ports is None:
        return tcp.Listener(host, 0, tls=tls, timeout=timeout)
    lo, hi = ports
    candidates = list(range(lo, hi + 1))
    secrets.SystemRandom().shuffle(candidates)
    last = None
    for port in candidates[:64]:
        try:
            return tcp.Listener(host, port, tls=tls, timeout=timeout)
        except TransportError as exc:
            last = exc
    raise TransportError(f"listen_ports {lo}-{hi}: no free port on {host} ({last})")


def _worker_host(address: str) -> str:
    """The host party 1's tasks connect to: the worker's own (``inproc://``: loopback)."""
    from distributed.comm import get_address_host

    return "127.0.0.1" if address.startswith("inproc://") else get_address_host(address)


def _pair(task: dict, peer_addr):
    """The data channel of this bucket attempt: party 0 listens (and reports its address
    through the run's Dask queue), party 1 connects; both poll the abort event."""
    from distributed import get_worker

    from pet.transport import tcp

    run_id, party, b, k = task["run_id"], task["party"], task["bucket"], task["attempt"]
    tls, timeout, deadline = task["tls"], task["timeout"], time.monotonic() + task["pair_timeout"]
    worker = get_worker()
    if party == 0:
        host = _worker_host(worker.address)
        with _listen(tls, host, task["listen_ports"], timeout) as listener:
            worker.log_event(task["topic"], ["addr", b, k, host, listener.port])
            while True:
                if _aborted(run_id, party, b, k):
                    return None
                try:
                    return listener.accept(accept_timeout=0.5)
                except TransportError:
                    if time.monotonic() > deadline:
                        raise
    host, port = peer_addr
    while True:
        if _aborted(run_id, party, b, k):
            return None
        try:
            return tcp.connect(host, port, tls=tls, timeout=timeout, retry_for=0.5)
        except TransportError:
            if time.monotonic() > deadline:
                raise


def _check_pairing(channel, task: dict) -> None:
    mine = {"proto": "pet.psi.bucket", "run": task["run_id"], "b": task["bucket"], "k": task["attempt"],
            "party": task["party"]}
    peer = channel.exchange(mine)
    if not (isinstance(peer, dict) and peer.get("proto") == mine["proto"] and peer.get("run") == mine["run"]
            and peer.get("b") == mine["b"] and peer.get("k") == mine["k"] and peer.get("party") == 1 - task["party"]):
        raise ProtocolError(f"bucket {task['bucket']}: the connected peer task is not this run's bucket/attempt")


def run_bucket(task: dict, peer_addr=None) -> dict:
    """Step 5 for one bucket attempt (a Dask task): read the bucket, pair with the peer's
    task, run the per-bucket protocol, write the aligned rows as the bucket's part.
    Returns counts and bytes; ``{"aborted": True}`` if the attempt was called off."""
    import pyarrow as pa
    from distributed import get_worker

    from pet.psi.ecdh import drop_duplicates
    from pet.psi.store import StoreBuilder

    b, t0 = task["bucket"], time.perf_counter()
    get_worker().log_event(task["topic"], ["started", b, task["attempt"]])  # a second one = a re-run
    if _aborted(task["run_id"], task["party"], b, task["attempt"]):
        return {"aborted": True}
    table = read_bucket(task["spill_dir"], b)
    builder = StoreBuilder(f"key {task['columns']} (bucket {b})")
    for chunk in table.column(_PET_KEY).chunks:
        builder.add_encodings(chunk.to_pylist())
    store = builder.finish()
    store, _ = drop_duplicates(store, dedupe=task["dedupe"], name=f"key {task['columns']}")
    channel = _pair(task, peer_addr)
    if channel is None:
        return {"aborted": True}
    with channel:
        _check_pairing(channel, task)
        out = PROTOCOLS[task["protocol"]](channel, store, party=task["party"], mode=task["mode"],
                                          arity=len(task["columns"]), suite=task["suite"],
                                          chunk_size=task["chunk_size"])
        stats = channel.stats.snapshot()
    result = {"rows": table.num_rows, "sent": stats.bytes_sent, "received": stats.bytes_received, "written": None,
              "seconds": 0.0}
    if "matched" in out:
        rows = store.rows_of(out["matched"])
        part = table.take(pa.array(rows)).drop_columns([_PET_KEY, _PET_BUCKET])
        _write_part(part, task["part"])
        result["written"] = part.num_rows
    result["seconds"] = time.perf_counter() - t0
    return result


def _write_part(table, path: str) -> None:
    import pyarrow.parquet as pq

    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)


# --------------------------------------------------------------------------- run state on disk


class _State:
    """``state_dir``: run.json, spill/, parts/, done/ markers (each written atomically)."""

    def __init__(self, root: Path):
        self.root = root
        self.spill = root / "spill"
        self.parts = root / "parts"
        self.done = root / "done"

    def load(self, fingerprint: dict) -> dict | None:
        try:
            run = json.loads((self.root / "run.json").read_text())
        except (OSError, ValueError):
            return None
        return run if run.get("fingerprint") == fingerprint else None

    def start(self, run: dict) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        for d in (self.root, self.parts, self.done):
            d.mkdir(parents=True, exist_ok=True)
        self.save(run)

    def save(self, run: dict) -> None:
        atomic_write_bytes(self.root / "run.json", json.dumps(run).encode())

    def markers(self, buckets: int) -> dict[int, str]:
        out = {}
        for f in self.done.glob("b*"):
            with contextlib.suppress(ValueError, OSError):
                b = int(f.name[1:])
                if 0 <= b < buckets:
                    out[b] = f.read_text().strip()
        return out

    def mark(self, b: int, label: str) -> None:
        atomic_write_bytes(self.done / f"b{b:06d}", label.encode())

    def unmark(self, b: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.done / f"b{b:06d}").unlink()

    def part(self, b: int, label: str) -> Path:
        return self.parts / f"b{b:06d}-{label}.parquet"

    def spilled(self) -> bool:
        return (self.spill / "done.json").is_file()


def _fingerprint(path, columns, header, buckets, mode, protocol, suite, dedupe) -> dict:
    st = os.stat(path)
    return {"input": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "columns": list(columns), "header": header, "buckets": buckets, "mode": mode, "protocol": protocol,
            "suite": suite, "dedupe": dedupe}


# --------------------------------------------------------------------------- handshake


def _check_header(mine: dict, peer) -> dict:
    if not isinstance(peer, dict) or peer.get("proto") != _PROTO:
        raise ProtocolError("the peer is not running pet's bucketed PSI (check both commands use --buckets)")
    if peer.get("v") != _VERSION:
        raise ProtocolError(f"bucketed PSI version mismatch: ours {_VERSION}, peer {peer.get('v')!r}")
    if peer.get("party") != 1 - mine["party"]:
        raise ProtocolError(f"both sides claim party {mine['party']}: one must be party 0 and the other party 1")
    for key, what in (("buckets", "bucket count (--buckets)"), ("arity", "number of key columns"),
                      ("protocol", "per-bucket protocol"), ("mode", "reveal mode"), ("suite", "hash suite")):
        if peer.get(key) != mine[key]:
            raise ProtocolError(f"the parties disagree on the {what}: ours {mine[key]!r}, peer {peer.get(key)!r}")
    if not (isinstance(peer.get("session"), int)
            and isinstance(peer.get("commit"), bytes) and len(peer["commit"]) == 32):
        raise ProtocolError("malformed bucketed PSI header from the peer")
    return peer


def _handshake(channel, mine: dict, nonce: bytes, local_error: Exception | None):
    """Steps 2-3 (rounds 1-2): ``(peer header, fresh key)``. A local input error is sent as
    ``ok=False`` and raised here after the peer has been told."""
    peer = channel.exchange(mine)
    if local_error is not None:
        raise local_error
    if isinstance(peer, dict) and peer.get("ok") is False:
        raise BucketedRunFailed(f"party {1 - mine['party']} cannot use its input (its own error says why); "
                                "stopping here too")
    peer = _check_header(mine, peer)
    got = channel.exchange({"nonce": nonce})
    theirs = got.get("nonce") if isinstance(got, dict) else None
    if not (isinstance(theirs, bytes) and len(theirs) == 32 and hashlib.sha256(theirs).digest() == peer["commit"]):
        raise ProtocolError("the peer's bucket-key nonce does not match its commitment")
    n0, n1 = (nonce, theirs) if mine["party"] == 0 else (theirs, nonce)
    return peer, hashlib.sha256(_KEY_DST + n0 + n1).digest()


# --------------------------------------------------------------------------- progress


class _Progress:
    """Buckets done: a tqdm bar on a terminal, plain lines (no carriage returns) otherwise,
    or a callable ``f(done, total)``."""

    def __init__(self, progress, total: int, desc: str):
        self.total, self.done, self.desc = total, 0, desc
        self._bar = self._callback = None
        self._next_line = 0
        if callable(progress):
            self._callback = progress
        elif progress is True and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="bucket", file=sys.stderr)
        self._lines = progress is True and self._bar is None

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._callback is not None:
            self._callback(self.done, self.total)
        if self._lines and (self.done >= self._next_line or self.done == self.total):
            print(f"{self.desc}: {self.done}/{self.total} buckets done", file=sys.stderr, flush=True)
            self._next_line = self.done + max(1, self.total // 10)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# --------------------------------------------------------------------------- the driver


class _Driver:
    """Steps 4-6: the event loop of one party's driver (see the module docstring)."""

    def __init__(self, channel, client, state: _State, run: dict, base_task: dict, *, party: int, buckets: int,
                 slots: int, max_retries: int, done: dict[int, str], progress, result: BucketedResult):
        self.channel, self.client, self.state, self.run = channel, client, state, run
        self.base, self.party, self.B, self.slots = base_task, party, buckets, slots
        self.max_retries, self.result = max_retries, result
        self.done = dict(done)  # bucket -> attempt label
        self.attempt = dict.fromkeys(range(buckets), 0)
        self.failures = dict.fromkeys(range(buckets), 0)
        self.mine: dict[int, tuple[int, str]] = {}
        self.peer: dict[int, tuple[int, str]] = {}
        self.futures: dict[tuple[int, int], object] = {}
        self.todo = [b for b in range(buckets) if b not in done]  # party 0: a heap of buckets to (re)submit
        self.live: set[int] = set()  # party 0: buckets with an unresolved attempt in flight
        self.fatal: tuple[str, str] | None = None  # (kind, message) stopping the run after this tick
        self.peer_fatal: str | None = None
        self._spill_futures: dict = {}  # "plan" or a part's index -> its future, until its result is read
        self._spill_results: dict[int, dict] = {}
        self._spill_parts = 0
        self._spill_args = None
        self.started: set[tuple[int, int]] = set()
        self.submitted: set[tuple[int, int]] = set()
        self.events: queue.Queue = queue.Queue()
        self.outbox: list = []
        self.spilled = state.spilled()
        self.peer_spilled = False
        self.sent_spilled = False
        self.complete_sent = self.peer_complete = False
        self.progress = _Progress(progress, buckets, f"pet psi party {party}")
        if self.done:
            self.progress.update(len(self.done))

    # -- labels and events ----------------------------------------------------------------

    def label(self, b: int, k: int) -> str:
        return f"s{self.run['session']}a{k}"

    def _on_topic(self, event) -> None:
        """A task's ``log_event`` (in the client's event loop): ``(time, ["started", b, k])``
        when it starts, ``(time, ["addr", b, k, host, port])`` when party 0's task listens."""
        self.events.put(tuple(event[1]))

    def _abort(self, b: int, k: int) -> None:
        from distributed import Event

        with contextlib.suppress(Exception):
            Event(_abort_name(self.run["run_id"], self.party, b, k), client=self.client).set()
        self.futures.pop((b, k), None)

    # -- submission ---------------------------------------------------------------------

    def _submit(self, b: int, k: int, peer_addr=None) -> None:
        task = dict(self.base, bucket=b, attempt=k, part=str(self.state.part(b, self.label(b, k))))
        fut = self.client.submit(run_bucket, task, peer_addr, key=f"pet-psi-bucket-{b}-{k}-{uuid.uuid4().hex[:8]}",
                                 pure=False, retries=0)
        self.futures[(b, k)] = fut
        self.submitted.add((b, k))
        fut.add_done_callback(lambda f, b=b, k=k: self.events.put(("future", b, k, f)))

    def _submit_more(self) -> None:
        """Party 0: keep ``slots`` bucket pairs in flight, lowest bucket first."""
        import heapq

        if self.party != 0 or not (self.spilled and self.peer_spilled):
            return
        while self.todo and len(self.live) < self.slots:
            b = heapq.heappop(self.todo)
            if b not in self.done and b not in self.live:
                self.live.add(b)
                self._submit(b, self.attempt[b])

    # -- outcomes -----------------------------------------------------------------------

    def _resolve_mine(self, b: int, k: int, kind: str, error: str | None = None) -> None:
        if kind == "fail":
            self._abort(b, k)
        if b in self.done or k != self.attempt[b] or b in self.mine:
            return
        if error:
            self.result.errors.append(f"bucket {b} attempt {k}: {error}")
        self.mine[b] = (k, kind)
        self.outbox.append([kind, b, k])
        self._transition(b)

    def _apply_peer(self, kind: str, b: int, k: int) -> None:
        if b in self.done or k != self.attempt[b] or b in self.peer:
            return
        self.peer[b] = (k, kind)
        self._transition(b)

    def _transition(self, b: int) -> None:
        k = self.attempt[b]
        outcomes = [o for o in (self.mine.get(b), self.peer.get(b)) if o is not None]
        if any(kind == "fail" for _, kind in outcomes):
            self._abort(b, k)
            self.mine.pop(b, None)
            self.peer.pop(b, None)
            self.failures[b] += 1
            self.result.retries += 1
            self.live.discard(b)
            if self.failures[b] > self.max_retries:
                last = next((e for e in reversed(self.result.errors) if e.startswith(f"bucket {b} ")), None)
                self._stop_run("retries", f"bucket {b} failed {self.failures[b]} times (max_retries="
                               f"{self.max_retries}); last error here: {last or 'the peer task failed'}")
            self.attempt[b] = k + 1
            if self.party == 0:
                import heapq

                heapq.heappush(self.todo, b)
        elif len(outcomes) == 2:
            label = self.label(b, k)
            self.state.mark(b, label)
            self.done[b] = label
            self.futures.pop((b, k), None)
            self.mine.pop(b, None)
            self.peer.pop(b, None)
            self.live.discard(b)
            self.progress.update(1)

    def _stop_run(self, kind: str, message: str) -> None:
        """Stop after this tick's exchange (which tells the peer), so both parties leave the
        loop after the same exchange."""
        if self.fatal is None:
            self.fatal = (kind, message)
            self.outbox.append(["fatal", kind])

    def _on_future(self, b: int, k: int, fut) -> None:
        if fut.status == "finished":
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - the result was lost with its worker
                self._resolve_mine(b, k, "fail", f"{type(exc).__name__}: {exc}")
                return
            if res.get("aborted"):
                self._resolve_mine(b, k, "fail", "called off")
                return
            if b not in self.done and k == self.attempt[b] and b not in self.mine:
                self.result.bytes_sent += res["sent"]
                self.result.bytes_received += res["received"]
                self.result.largest_bucket = max(self.result.largest_bucket, res["rows"])
            self._resolve_mine(b, k, "ok")
            return
        exc = fut.exception() if fut.status == "error" else None
        if isinstance(exc, InputError) and k == self.attempt[b]:
            self._stop_run("input", f"bucket {b}: {exc}")
            return
        self._resolve_mine(b, k, "fail", f"{type(exc).__name__}: {exc}" if exc else fut.status)

    def _on_started(self, b: int, k: int) -> None:
        if (b, k) in self.started:  # Dask re-ran the task after its worker was lost
            self._resolve_mine(b, k, "fail", "the task was re-run after its worker was lost")
            return
        self.started.add((b, k))

    def _on_addr(self, b: int, k: int, host, port) -> None:
        if self.party == 0 and b not in self.done and k == self.attempt[b] and b not in self.mine:
            self.outbox.append(["addr", b, k, host, port])

    def _start_spill(self, spill_args) -> None:
        """Step 4: the plan task; its callback submits the part tasks (:mod:`pet.psi.spill`)."""
        path, columns, header, key, buckets, spill_dir, spill_bytes, parts = spill_args
        self._spill_args = spill_args
        wanted, minimum = (_slots(self.client), {}) if parts is None else (parts, {"min_rows": 1, "min_bytes": 1})
        fut = self.client.submit(plan_spill, path, header, spill_dir, wanted, **minimum,
                                 key=f"pet-psi-spill-plan-{uuid.uuid4().hex[:8]}", pure=False)
        fut.add_done_callback(lambda f: self.events.put(("spill", "plan", f)))
        self._spill_futures["plan"] = fut

    def _on_spill(self, stage, fut) -> None:
        self._spill_futures.pop(stage, None)  # released: Dask must not recompute a finished step
        if self.fatal is not None:
            return
        exc = None
        if fut.status == "finished":
            try:
                out = fut.result()
            except Exception as e:  # noqa: BLE001 - the result was lost with its worker
                exc = e
        else:
            exc = (fut.exception() if fut.status == "error" else None) or RuntimeError(f"spill task {fut.status}")
        if exc is not None:
            kind = "input" if isinstance(exc, InputError) else "spill"
            message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            self._stop_run(kind, f"spilling the input: {message}")
            return
        path, columns, header, key, buckets, spill_dir, spill_bytes, _ = self._spill_args
        if stage == "plan":
            self._spill_parts = len(out)
            for i, part in enumerate(out):
                f = self.client.submit(spill_part, path, columns, header, key, buckets, spill_dir, part, i,
                                       spill_bytes, key=f"pet-psi-spill-{i}-{uuid.uuid4().hex[:8]}", pure=False)
                f.add_done_callback(lambda f, i=i: self.events.put(("spill", i, f)))
                self._spill_futures[i] = f
            return
        self._spill_results[stage] = out
        if len(self._spill_results) == self._spill_parts:
            self.result.rows = finish_spill(spill_dir, [self._spill_results[i] for i in range(self._spill_parts)])
            self.spilled = True

    # -- the loop -----------------------------------------------------------------------

    def _local_events(self) -> None:
        try:
            ev = self.events.get(timeout=_TICK)
        except queue.Empty:
            return
        while True:
            kind = ev[0]
            if kind == "future":
                self._on_future(*ev[1:])
            elif kind == "started":
                self._on_started(*ev[1:])
            elif kind == "addr":
                self._on_addr(*ev[1:])
            elif kind == "spill":
                self._on_spill(ev[1], ev[2])
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return

    def _peer_events(self, events) -> None:
        if not isinstance(events, list):
            raise ProtocolError("malformed control message from the peer")
        for ev in events:
            if not (isinstance(ev, list) and ev and isinstance(ev[0], str)):
                raise ProtocolError("malformed control event from the peer")
            kind = ev[0]
            if kind == "fatal":
                what = ev[1] if len(ev) > 1 and isinstance(ev[1], str) else "error"
                self.peer_fatal = what[:20]
                return
            if kind == "spilled":
                self.peer_spilled = True
            elif kind == "complete":
                self.peer_complete = True
            elif kind in ("ok", "fail", "addr"):
                if len(ev) < 3 or not all(isinstance(x, int) for x in ev[1:3]) or not 0 <= ev[1] < self.B:
                    raise ProtocolError("malformed bucket event from the peer")
                b, k = ev[1], ev[2]
                if kind == "addr":
                    if self.party == 1 and b not in self.done and k == self.attempt[b] and (b, k) not in self.submitted:
                        self._submit(b, k, (str(ev[3]), int(ev[4])))
                else:
                    self._apply_peer(kind, b, k)
            else:
                raise ProtocolError(f"unknown control event {kind[:20]!r} from the peer")

    def run_loop(self, spill_args) -> None:
        self.client.subscribe_topic(self.base["topic"], self._on_topic)
        try:
            if not self.spilled:
                self._start_spill(spill_args)
            while True:
                if self.fatal is None:
                    self._local_events()
                if self.spilled and not self.sent_spilled:
                    self.outbox.append(["spilled"])
                    self.sent_spilled = True
                if len(self.done) == self.B and self.spilled and not self.complete_sent:
                    self.outbox.append(["complete"])
                    self.complete_sent = True
                out, self.outbox = self.outbox, []
                self._peer_events(self.channel.exchange(out))
                if self.fatal is not None:
                    raise BucketedRunFailed(f"{self.fatal[1]}; the run is stopped at both parties and no output "
                                            "was written")
                if self.peer_fatal is not None:
                    raise BucketedRunFailed(f"party {1 - self.party} stopped the run ({self.peer_fatal} error on "
                                            "its side; its own error says why); no output was written")
                if self.complete_sent and self.peer_complete:
                    return
                self._submit_more()
        finally:
            self._spill_futures.clear()  # released: Dask cancels spill tasks nobody waits for
            for (b, k) in list(self.futures):
                self._abort(b, k)
            self.progress.close()
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(self.base["topic"])


# --------------------------------------------------------------------------- output


def _write_output(state: _State, done: dict[int, str], buckets: int, output: Path) -> int:
    """Step 7: the parts in bucket order -> one Parquet file (row group by row group) or a
    directory of parts; atomic either way. Returns the rows written."""
    import pyarrow.parquet as pq

    parts = [state.part(b, done[b]) for b in range(buckets)]
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    if is_parquet(output):
        with atomic_output(output) as tmp:
            writer = None
            try:
                for p in parts:
                    pf = pq.ParquetFile(p)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, pf.schema_arrow)
                    for g in range(pf.metadata.num_row_groups):
                        writer.write_table(pf.read_row_group(g))
            finally:
                if writer is not None:
                    writer.close()
        return total
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.parent / f".{output.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        for b, p in enumerate(parts):
            target = tmp / f"part-{b:06d}.parquet"
            try:
                os.link(p, target)
            except OSError:
                shutil.copyfile(p, target)
        if output.exists():
            old = output.parent / f".{output.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(output, old)
            os.replace(tmp, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return total


# --------------------------------------------------------------------------- API


def align_dataset(channel, path, on, output, *, party, buckets: int, cluster=None, reveal="both",
                  dedupe: bool = False, header: bool = True, protocol: str | None = None, hash_suite: str = "NU",
                  tls=None, state_dir=None, max_retries: int = 3, pair_timeout: float = 120.0,
                  timeout: float = 600.0, listen_ports=None, spill_bytes: int = 64 << 20, spill_parts=None,
                  chunk_size: int | None = None, progress=None) -> BucketedResult:
    """Align the CSV/Parquet file ``path`` with the peer's on the key ``on``, in ``buckets``
    buckets run on this party's Dask cluster (see the module docstring for the steps and
    what each party learns).

    Parameters
    ----------
    channel : :class:`pet.transport.Channel` to the peer's driver (control messages only).
    path, on : the input and its key column(s) (keys compared as text, as ``pet psi``).
    output : a ``.parquet``/``.pq`` file, or a directory of ``part-NNNNNN.parquet`` files
        (any other path); written at the end, atomically.
    party : 0 or 1. buckets : ``B``, equal at both parties (checked).
    cluster : a ``distributed.Client``, ``"local:N"`` (default ``"local:2"``) or
        ``"tcp://HOST:PORT"``. Parties may use different clusters and worker counts.
    reveal, dedupe, hash_suite, chunk_size : as :func:`~pet.psi.align_file` (per bucket).
    protocol : the per-bucket protocol, a key of :data:`PROTOCOLS`: ``"kkrt"`` (default,
        :data:`DEFAULT_PROTOCOL`, unless ``hash_suite`` is not "NU": then ``"ecdh"``;
        :mod:`pet.psi.kkrt`, one thread per bucket task; give ``buckets`` from
        :func:`default_buckets`: its fixed cost per bucket wants ~2^20 rows); both parties give
        the same (checked in the header, a :class:`~pet.errors.ProtocolError` at both).
        ``chunk_size`` default: :data:`DEFAULT_CHUNK` of the protocol.
    tls : a :class:`~pet.transport.tls.TLSConfig` for the bucket tasks' data connections
        (:func:`data_tls`); the files must be readable on the workers.
    state_dir : run state for resuming (default ``<output>.pet-state``).
    max_retries : failed attempts allowed per bucket before the run fails at both.
    pair_timeout : seconds a bucket task waits for its peer task.
    timeout : receive timeout of the data connections (and of the control channel's ticks,
        as configured on ``channel``).
    listen_ports : ``(lo, hi)``: party 0's tasks listen on a port in this range (default:
        any free port). Party 1's workers must reach party 0's workers there.
    spill_bytes : bytes of rows a spill task buffers before a flush. spill_parts : the
        number of parallel spill tasks (default: this party's worker slots, parts of at
        least 2^15 rows / 1 MiB; a CSV containing ``"`` is spilled by one task). progress : True (bar over buckets) or
        ``f(done, total)``.

    Returns
    -------
    :class:`BucketedResult`. Raises :class:`BucketedRunFailed` (at both parties) when the
    run cannot finish.
    """
    from pet._validate import check_party
    from pet.psi.ecdh import check_channel, check_options, check_reveal

    start = time.perf_counter()
    check_channel(channel)
    party = check_party(party)
    mode = check_reveal(reveal)
    if protocol is None:
        protocol = DEFAULT_PROTOCOL if hash_suite == "NU" else "ecdh"
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK.get(protocol, 1 << 14)
    check_options(hash_suite, chunk_size, None, progress)
    if protocol == "kkrt" and hash_suite != "NU":
        raise InputError(f"hash_suite {hash_suite!r} is ECDH's hash-to-curve suite: give protocol='ecdh' with it "
                         "(KKRT hashes with BLAKE2b)")
    if protocol == "kkrt" and chunk_size % 64:
        raise InputError(f"chunk_size must be a multiple of 64 (KKRT bins per message), got {chunk_size!r}")
    if isinstance(buckets, bool) or not isinstance(buckets, int) or not 1 <= buckets <= 1_000_000:
        raise InputError(f"buckets must be an int in 1..1000000, got {buckets!r}")
    if spill_parts is not None and (isinstance(spill_parts, bool) or not isinstance(spill_parts, int)
                                    or not 1 <= spill_parts <= 4096):
        raise InputError(f"spill_parts must be None or an int in 1..4096, got {spill_parts!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InputError(f"max_retries must be an int >= 0, got {max_retries!r}")
    columns = [on] if isinstance(on, str) else [str(c) for c in on]
    if not columns or len(set(columns)) != len(columns):
        raise InputError(f"on: give distinct key column(s), got {on!r}")
    output = Path(output)
    if output.suffix.lower() not in ("", ".parquet", ".pq"):
        raise InputError(f"--output {str(output)!r}: the bucketed path writes Parquet: a .parquet file or a "
                         "directory (no extension)")
    tls = data_tls(tls, party)
    local_error = None
    try:
        _check_input(path, columns, header)
    except InputError as exc:
        local_error = exc

    client, close = None, lambda: None
    try:
        state = _State(Path(state_dir) if state_dir is not None else output.parent / f"{output.name}.pet-state")
        fingerprint = _fingerprint(path, columns, header, buckets, mode, protocol, hash_suite, dedupe) \
            if local_error is None else None
        prior = state.load(fingerprint) if local_error is None else None
        nonce = secrets.token_bytes(32)
        mine = {"proto": _PROTO, "v": _VERSION, "party": party, "ok": local_error is None, "buckets": buckets,
                "arity": len(columns), "protocol": protocol, "mode": mode, "suite": hash_suite,
                "run": prior["run_id"] if prior else None, "session": prior["session"] if prior else 0,
                "commit": hashlib.sha256(nonce).digest()}
        peer, fresh_key = _handshake(channel, mine, nonce, local_error)
        client, close = open_cluster(cluster)  # after the checks at both parties: a bad run fails fast
        peer_slots = channel.exchange({"slots": _slots(client)})
        if not (isinstance(peer_slots, dict) and isinstance(peer_slots.get("slots"), int) and peer_slots["slots"] >= 1):
            raise ProtocolError("malformed worker-slot message from the peer")
        result = BucketedResult(buckets=buckets, output=str(output))
        done: dict[int, str] = {}
        session = max(mine["session"], peer["session"]) + 1
        if prior is not None and peer.get("run") == prior["run_id"]:
            run = dict(prior, session=session)
            state.save(run)
            markers = state.markers(buckets)
            theirs = channel.exchange(sorted([b, lab] for b, lab in markers.items()))
            agreed = {int(b): lab for b, lab in theirs if isinstance(b, int) and markers.get(b) == lab} \
                if isinstance(theirs, list) and all(isinstance(x, list) and len(x) == 2 for x in theirs) else {}
            for b in markers:
                if b not in agreed:
                    state.unmark(b)
            done, result.resumed = agreed, len(agreed)
        else:
            run = {"run_id": hashlib.sha256(b"pet-psi-run-id" + fresh_key).hexdigest()[:16], "key": fresh_key.hex(),
                   "session": session, "fingerprint": fingerprint}
            state.start(run)
        key = bytes.fromhex(run["key"])
        base = {"run_id": run["run_id"], "party": party, "topic": f"pet-psi-{run['run_id']}-p{party}",
                "spill_dir": str(state.spill), "columns": columns, "dedupe": dedupe, "protocol": protocol,
                "mode": mode, "suite": hash_suite, "chunk_size": chunk_size, "tls": tls, "timeout": timeout,
                "pair_timeout": pair_timeout, "listen_ports": listen_ports}
        driver = _Driver(channel, client, state, run, base, party=party, buckets=buckets,
                         slots=min(_slots(client), peer_slots["slots"]), max_retries=max_retries, done=done,
                         progress=progress, result=result)
        driver.run_loop((str(path), columns, header, key, buckets, str(state.spill), spill_bytes, spill_parts))
        if not result.rows:
            result.rows = json.loads((state.spill / "done.json").read_text())["rows"]
        learns = mode == "both" or mode == str(party)
        if learns:
            result.written = _write_output(state, driver.done, buckets, output)
        shutil.rmtree(state.root, ignore_errors=True)
        result.seconds = time.perf_counter() - start
        return result
    finally:
        close()
