"""Bucketed PSI alignment on Dask (pet.psi.bucketed, ``pet psi --buckets``).

Oracle: the pandas inner join on the key (text). Clusters: an in-process LocalCluster shared
by both parties' drivers for the API tests (fast), one real ``dask scheduler`` plus
``dask worker`` processes per party for the command line (2 workers vs 1), with a worker
SIGKILLed mid-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")  # in pet[dev]; `import pet` does not need it

import pet  # noqa: E402
from pet.errors import InputError, ProtocolError  # noqa: E402
from pet.psi import bucketed  # noqa: E402
from pet.psi.bucketed import BucketedRunFailed, align_dataset  # noqa: E402
from pet.transport import local_pair  # noqa: E402
from tests.helpers import free_port, pet_process  # noqa: E402

pytestmark = pytest.mark.timeout(300)

SRC = str(Path(pet.__file__).resolve().parents[1])
DASK = str(Path(sys.executable).with_name("dask"))


@pytest.fixture(scope="module")
def clients():
    """One in-process cluster per party (2 and 1 single-threaded workers): a cluster must not
    be shared by the two parties (party 0's waiting tasks could hold every worker)."""
    import logging

    made = []
    for n in (2, 1):
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=False,
                                           dashboard_address=":0", silence_logs=logging.ERROR)
        made.append((cluster, distributed.Client(cluster)))
    yield [c for _, c in made]
    for cluster, c in made:
        c.close()
        cluster.close()


def _tables(tmp_path, n0=6000, n1=5000, common=3000, seed=0):
    """Party 0: Parquet with an int value column; party 1: CSV. Shuffled rows."""
    rng = np.random.default_rng(seed)
    ids0 = [f"user-{i:06d}" for i in range(n0)]
    ids1 = ids0[:common] + [f"other-{i:06d}" for i in range(n1 - common)]
    a = pd.DataFrame({"id": ids0, "x": np.arange(n0)}).sample(frac=1, random_state=int(rng.integers(1 << 30)))
    b = pd.DataFrame({"y": [f"v{i}" for i in range(n1)], "id": ids1}).sample(frac=1, random_state=1)
    pa_, pb = tmp_path / "a.parquet", tmp_path / "b.csv"
    a.to_parquet(pa_, index=False)
    b.to_csv(pb, index=False)
    return a, b, pa_, pb


def _run_both(kwargs0: dict, kwargs1: dict, timeout=60):
    """Both drivers in threads over an in-memory control channel; returns (result or exception) per party."""
    c0, c1 = local_pair(timeout=timeout)
    out = [None, None]

    def party(p, ch, kw):
        try:
            out[p] = align_dataset(ch, party=p, **kw)
        except Exception as exc:  # noqa: BLE001 - returned to the test
            out[p] = exc
        finally:
            ch.close()

    threads = [threading.Thread(target=party, args=(0, c0, kwargs0)),
               threading.Thread(target=party, args=(1, c1, kwargs1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return out


def _check_aligned(a, b, o0: pd.DataFrame, o1: pd.DataFrame):
    expected = a.merge(b, on="id")
    assert len(o0) == len(o1) == len(expected)
    assert list(o0["id"]) == list(o1["id"])  # aligned row by row (joint order)
    assert sorted(o0["id"]) == sorted(expected["id"])
    got = o0.merge(o1, on="id")  # each party's rows are its own input rows
    pd.testing.assert_frame_equal(got.sort_values("id").reset_index(drop=True)[["id", "x", "y"]],
                                  expected.sort_values("id").reset_index(drop=True)[["id", "x", "y"]],
                                  check_dtype=False)
    assert o0["x"].dtype == a["x"].dtype  # Parquet types kept


def test_outputs_equal_pandas_join_file_and_directory(tmp_path, clients):
    a, b, pa_, pb = _tables(tmp_path)
    out0, out1 = tmp_path / "o0.parquet", tmp_path / "o1"
    r0, r1 = _run_both(dict(path=pa_, on="id", output=out0, buckets=7, cluster=clients[0]),
                       dict(path=pb, on="id", output=out1, buckets=7, cluster=clients[1]))
    assert not isinstance(r0, Exception), r0
    assert not isinstance(r1, Exception), r1
    o0 = pd.read_parquet(out0)
    parts = sorted(out1.iterdir())
    assert [p.name for p in parts] == [f"part-{i:06d}.parquet" for i in range(7)]
    o1 = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)  # name order = joint order
    _check_aligned(a, b, o0, o1)
    assert (r0.rows, r1.rows, r0.written, r1.written) == (6000, 5000, 3000, 3000)
    assert r0.largest_bucket < 6000 and r0.bytes_sent > 0
    assert not (tmp_path / "o0.parquet.pet-state").exists()  # state removed after success


def test_composite_key_reveal_to_one_party(tmp_path, clients):
    a = pd.DataFrame({"zip": ["1", "2", "2", "3"] * 50, "n": [str(i) for i in range(200)], "v": range(200)})
    b = pd.DataFrame({"zip": ["2", "3", "4", "1"] * 50, "n": [str(i) for i in range(100, 300)]})
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    r0, r1 = _run_both(dict(path=tmp_path / "a.csv", on=["zip", "n"], output=tmp_path / "o0.parquet", buckets=3,
                            cluster=clients[0], reveal=1),
                       dict(path=tmp_path / "b.csv", on=["zip", "n"], output=tmp_path / "o1.parquet", buckets=3,
                            cluster=clients[1], reveal=1))
    assert r0.written is None and not (tmp_path / "o0.parquet").exists()
    o1 = pd.read_parquet(tmp_path / "o1.parquet")
    expected = a.astype(str).merge(b, on=["zip", "n"])
    assert r1.written == len(o1) == len(expected)
    assert sorted(zip(o1.zip, o1.n)) == sorted(zip(expected.zip, expected.n))


@pytest.mark.parametrize("protocol", ["ecdh", "kkrt"])
def test_restart_resumes_finished_buckets(tmp_path, clients, protocol):
    a, b, pa_, pb = _tables(tmp_path, 4000, 4000, 2000)
    out0, out1 = tmp_path / "o0.parquet", tmp_path / "o1.parquet"

    class Crash(Exception):
        pass

    def crash_after_3(done, total):
        if done >= 3:
            raise Crash("party 0's driver dies")

    kw0 = dict(path=pa_, on="id", output=out0, buckets=8, cluster=clients[0], protocol=protocol)
    kw1 = dict(path=pb, on="id", output=out1, buckets=8, cluster=clients[1], protocol=protocol)
    r0, r1 = _run_both(dict(kw0, progress=crash_after_3), kw1, timeout=30)
    assert isinstance(r0, Crash) and isinstance(r1, Exception)
    assert not out0.exists() and not out1.exists()
    done0 = list((tmp_path / "o0.parquet.pet-state" / "done").iterdir())
    assert len(done0) >= 3
    r0, r1 = _run_both(kw0, kw1)  # the same command again
    assert not isinstance(r0, Exception), r0
    assert not isinstance(r1, Exception), r1
    assert r0.resumed == r1.resumed >= 2  # kept the buckets done at both
    _check_aligned(a, b, pd.read_parquet(out0), pd.read_parquet(out1))


def test_exhausted_retries_fail_both_without_output(tmp_path, clients, monkeypatch):
    from pet.errors import PeerDisconnected

    _, _, pa_, pb = _tables(tmp_path, 1000, 1000, 500)

    def flaky(channel, store, **kw):  # bucket attempts always fail (in-process workers see the patch)
        raise PeerDisconnected("simulated network failure")

    monkeypatch.setitem(bucketed.PROTOCOLS, "flaky", flaky)
    kw = dict(on="id", buckets=2, protocol="flaky", max_retries=1)
    r0, r1 = _run_both(dict(kw, path=pa_, output=tmp_path / "o0.parquet", cluster=clients[0]),
                       dict(kw, path=pb, output=tmp_path / "o1.parquet", cluster=clients[1]))
    for r in (r0, r1):
        assert isinstance(r, BucketedRunFailed), r
        assert "failed 2 times (max_retries=1)" in str(r) and "no output" in str(r)
    assert "simulated network failure" in str(r0)
    assert not (tmp_path / "o0.parquet").exists() and not (tmp_path / "o1.parquet").exists()


@pytest.mark.parametrize("bad", ["missing column", "unreadable file", "bucket count", "duplicates"])
def test_bad_input_fails_fast_at_both(tmp_path, clients, bad):
    _, _, pa_, pb = _tables(tmp_path, 1000, 1000, 500)
    kw0 = dict(path=pa_, on="id", output=tmp_path / "o0.parquet", buckets=4, cluster=clients[0])
    kw1 = dict(path=pb, on="id", output=tmp_path / "o1.parquet", buckets=4, cluster=clients[1])
    if bad == "missing column":
        kw0["on"] = "nope"
    elif bad == "unreadable file":
        garbage = tmp_path / "garbage.parquet"
        garbage.write_bytes(b"not a parquet file at all")
        kw0["path"] = garbage
    elif bad == "bucket count":
        kw1["buckets"] = 5
    else:
        pd.DataFrame({"id": ["k1", "k2", "k1"], "x": [1, 2, 3]}).to_parquet(pa_, index=False)
    start = time.monotonic()
    r0, r1 = _run_both(kw0, kw1)
    assert time.monotonic() - start < 60  # not a timeout: the peer is told
    if bad == "bucket count":
        for r in (r0, r1):
            assert isinstance(r, ProtocolError) and "bucket count (--buckets)" in str(r), r
        return
    if bad == "duplicates":
        assert isinstance(r0, BucketedRunFailed) and "duplicate" in str(r0), r0
    else:
        assert isinstance(r0, InputError), r0
        assert ("nope" in str(r0)) if bad == "missing column" else "cannot read" in str(r0)
    assert isinstance(r1, BucketedRunFailed) and "party 0" in str(r1), r1
    assert not (tmp_path / "o0.parquet").exists() and not (tmp_path / "o1.parquet").exists()


# --------------------------------------------------------------------------- real scheduler + workers, CLI


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start_cluster(workers: int, procs: list) -> str:
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs.append(subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], env=_env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
    for _ in range(workers):
        procs.append(subprocess.Popen([DASK, "worker", addr, "--nthreads", "1", "--host", "127.0.0.1",
                                       "--no-dashboard"], env=_env(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    with distributed.Client(addr, timeout=60) as c:
        c.wait_for_workers(workers, timeout=120)
    return addr


def test_cli_real_clusters_worker_killed_mid_run(tmp_path):
    a, b, pa_, pb = _tables(tmp_path, 20000, 16000, 9000)
    procs: list[subprocess.Popen] = []
    try:
        addr0, addr1 = _start_cluster(2, procs), _start_cluster(1, procs)
        port = free_port()
        common = ["--column", "id", "--buckets", "24", "--max-retries", "3"]
        p0 = pet_process("psi", "--party", "0", "--listen", f"127.0.0.1:{port}", "--input", pa_, "--output",
                         tmp_path / "o0.parquet", "--cluster", addr0, *common, env=_env())
        p1 = pet_process("psi", "--party", "1", "--connect", f"127.0.0.1:{port}", "--input", pb, "--output",
                         tmp_path / "o1", "--cluster", addr1, *common, env=_env())
        done = tmp_path / "o0.parquet.pet-state" / "done"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and p0.poll() is None:
            if done.is_dir() and len(list(done.iterdir())) >= 2:
                break
            time.sleep(0.05)
        killed = _kill_busy_worker(addr0)
        out0, err0 = p0.communicate(timeout=300)
        out1, err1 = p1.communicate(timeout=60)
        assert p0.returncode == 0 and p1.returncode == 0, (err0[-2000:], err1[-2000:])
        assert killed, "no bucket task was running when we looked"
        retried = int(out0.split(" retried")[0].rsplit(" ", 1)[-1])
        assert retried >= 1, (out0, err0[-3000:])
        assert "24/24 buckets done" in err0 and "\r" not in err0  # progress lines, no bar, off a terminal
        o1 = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "o1").iterdir())], ignore_index=True)
        _check_aligned(a, b, pd.read_parquet(tmp_path / "o0.parquet"), o1)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def _kill_busy_worker(addr: str) -> bool:
    """SIGKILL a worker process of the cluster at ``addr`` that is running a bucket task."""
    with distributed.Client(addr, timeout=30) as c:
        for _ in range(200):
            busy = [w for w, keys in c.processing().items() if any("pet-psi-bucket" in str(k) for k in keys)]
            if busy:
                pid = c.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                return True
            time.sleep(0.05)
    return False
