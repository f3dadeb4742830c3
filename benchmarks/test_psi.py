"""PSI end to end: pet's ECDH-PSI vs openmined-psi 2.0.6, and pet's KKRT-PSI vs SecretFlow's
C++ KKRT (spu 0.9.5), 2^16 / 2^18 / 2^20 items per side with half of them in common.
pet and openmined-psi run both parties as separate processes over loopback TCP.

Run::

    .venv/bin/python -m pytest benchmarks/test_psi.py --benchmark-only -s \
        [--benchmark-json /tmp/psi.json]

``PET_PSI_BENCH_LOG2=16,18`` restricts the sizes (default ``16,18,20``). openmined-psi is the
benchmark-only extra ``bench = ["openmined.psi==2.0.6"]``; without it those cases fail with
an explanation (they are not skipped).

Reported per case (``extra_info``, and one printed line): ``wall_s`` (connect to result, the
slower party), ``cpu_s`` (user+sys of both parties, including any child processes),
``bytes_per_item`` (bytes each party sent, divided by its set size; averaged), the
intersection size, and for pet the CPU bound from the raw rates measured in the same run:
``4 n / x25519_rate + 2 n / hash_rate`` (4 scalar multiplications per item pair plus hashing
each item once) and ``cpu_over_bound``, where ``x25519_rate`` is ``cryptography``'s
per-call X25519 (the rate the issue's bound is defined on); ``cpu_bound_batched_s`` and
``cpu_over_bound_batched`` are the same with the rate of pet's batched kernel
(:mod:`pet.psi.x25519`, what pet actually runs for chunks of 1024+ points), and ``x25519_2threads_cpu_per_wall`` (process CPU
time over wall time while two threads make ``cryptography`` calls: at most 1.0 means the
call holds the GIL; pet's batched kernel does not, and pet runs it in threads).
``max_rss_mib_main`` is the peak resident memory of a party's process (pet: threads
included; openmined-psi is single-threaded).

KKRT (``test_psi_kkrt``): ``pet-kkrt`` is :func:`pet.psi.kkrt_psi` as two processes over
loopback TCP (as above) and as two threads of one process over the in-memory channel
(``pet-kkrt-threads``, the setting SecretFlow is timed in); ``secretflow-kkrt`` runs
``shared/peers/spu_psi.py LOG2 KKRT`` (two threads, in-memory link, CSV in and out) with the
SPU environment's python: ``PET_SPU_PYTHON`` (default ``/work/peers-venv/bin/python``, else
``../.venv-spu/bin/python``) and ``PET_SPU_PSI`` (default ``../shared/peers/spu_psi.py``
next to the repository); without them that case fails with an explanation. Its RR22 time
is recorded beside it (``secretflow_rr22_s``). Extra fields: ``protocol_wall_s`` (the PSI
call, as for ECDH), ``load_avg_1min`` at the start of the case.

With ``--link`` (``conftest.py``; ``--link wan``: loopback, 1 Gbit/s and 100 Mbit/s at
20 ms) the pet, openmined-psi and pet-kkrt rows (processes and threads) and the bucketed
rows (``pet psi --link``) run once per link, each party shaping what it sends
(``extra_info["link"]``; ``messages`` is the number of messages both parties sent, the
protocols' round count being about half of it). ``secretflow-kkrt`` runs over SPU's own
in-memory link, which cannot be shaped: with a link it is skipped with that reason.

openmined-psi runs its reference flow: the server (party 0) builds the GCS setup message
(fpr 2^-40) while the client (party 1) builds its request, then the server answers the
request and the client computes the intersection; each is single-threaded (the library has
no threading option), on P-256.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import link_label, link_text, pick

LOG2 = [int(x) for x in os.environ.get("PET_PSI_BENCH_LOG2", pick("12,14", "16,18,20")).split(",") if x.strip()]

_COMMON = """
import json, resource, sys, time
from pet.transport import Link, tcp

def items(n, party):
    start = 0 if party == 0 else n // 2
    return [f"user-{i:09d}" for i in range(start, start + n)]

def cpu():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB, main process

def channel(party, port):
    if party == 0:
        ch = tcp.listen("127.0.0.1", port, timeout=3600, accept_timeout=120)
    else:
        ch = tcp.connect("127.0.0.1", port, timeout=3600, retry_for=120)
    return ch if len(sys.argv) < 5 or not sys.argv[4] else Link.parse(sys.argv[4]).wrap(ch)

def link():
    return Link.parse(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None
"""

_PET = _COMMON + """
from pet.psi import ecdh_psi

def main():
    party, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    data = items(n, party)
    ch = channel(party, port)
    ch.exchange("ready")
    c0, t0 = cpu(), time.perf_counter()
    res = ecdh_psi(ch, data, party=party)
    wall = time.perf_counter() - t0
    ch.close()
    print(json.dumps({"wall": wall, "cpu": cpu() - c0, "sent": res.stats.bytes_sent,
                      "received": res.stats.bytes_received, "size": res.size, "n": n, "rss": maxrss(),
                      "messages": res.stats.messages_sent}))

if __name__ == "__main__":
    main()
"""

_KKRT = _COMMON + """
from pet.psi import kkrt_psi

def main():
    party, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    data = items(n, party)
    ch = channel(party, port)
    ch.exchange("ready")
    c0, t0 = cpu(), time.perf_counter()
    res = kkrt_psi(ch, data, party=party)
    wall = time.perf_counter() - t0
    ch.close()
    print(json.dumps({"wall": wall, "cpu": cpu() - c0, "sent": res.stats.bytes_sent,
                      "received": res.stats.bytes_received, "size": res.size, "n": n, "rss": maxrss(),
                      "messages": res.stats.messages_sent}))

if __name__ == "__main__":
    main()
"""

_KKRT_THREADS = _COMMON + """
import threading
from pet.psi import kkrt_psi
from pet.transport import run_parties

def main():
    n = int(sys.argv[3])
    data = [items(n, 0), items(n, 1)]
    cpu_t = [0.0, 0.0]

    def party(p):
        def fn(ch):
            c = time.thread_time()
            r = kkrt_psi(ch, data[p], party=p)
            cpu_t[p] = time.thread_time() - c
            return r
        return fn

    c0, t0 = cpu(), time.perf_counter()
    r0, r1 = run_parties(party(0), party(1), timeout=3600, link=link())
    wall = time.perf_counter() - t0
    for r in (r0, r1):
        print(json.dumps({"wall": wall, "cpu": (cpu() - c0) / 2, "sent": r.stats.bytes_sent,
                          "received": r.stats.bytes_received, "size": r.size, "n": n, "rss": maxrss(),
                          "messages": r.stats.messages_sent}))

if __name__ == "__main__":
    main()
"""

_OPENMINED = _COMMON + """
import private_set_intersection.python as psi

def main():
    party, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    data = items(n, party)
    ch = channel(party, port)
    ch.exchange("ready")
    c0, t0 = cpu(), time.perf_counter()
    if party == 0:  # server
        server = psi.server.CreateWithNewKey(True)
        n_client = ch.recv()
        setup = server.CreateSetupMessage(2.0 ** -40, n_client, data, psi.DataStructure.GCS)
        request = psi.Request()
        request.ParseFromString(ch.recv())
        response = server.ProcessRequest(request)
        ch.send([setup.SerializeToString(), response.SerializeToString()])
        size = None
    else:  # client
        client = psi.client.CreateWithNewKey(True)
        ch.send(n)
        ch.send(client.CreateRequest(data).SerializeToString())
        setup_b, response_b = ch.recv()
        setup, response = psi.ServerSetup(), psi.Response()
        setup.ParseFromString(setup_b)
        response.ParseFromString(response_b)
        size = len(client.GetIntersection(setup, response))
    wall = time.perf_counter() - t0
    st = ch.stats
    ch.close()
    print(json.dumps({"wall": wall, "cpu": cpu() - c0, "sent": st.bytes_sent, "received": st.bytes_received,
                      "size": size, "n": n, "rss": maxrss(), "messages": st.messages_sent}))

if __name__ == "__main__":
    main()
"""


def _run_threads(code: str, n: int, tmp_path, link=None) -> tuple[dict, dict, float]:
    script = tmp_path / "threads.py"
    script.write_text(textwrap.dedent(code))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(script), "0", "0", str(n), link_text(link)], capture_output=True,
                       text=True, timeout=7200)
    total = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"threads run failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    r0, r1 = (json.loads(line) for line in p.stdout.strip().splitlines()[-2:])
    return r0, r1, total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two(code: str, n: int, tmp_path, link=None) -> tuple[dict, dict, float]:
    script = tmp_path / "party.py"
    script.write_text(textwrap.dedent(code))
    port = _free_port()
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(script), str(p), str(port), str(n), link_text(link)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in (0, 1)]
    outs = [p.communicate(timeout=7200) for p in procs]
    total = time.perf_counter() - t0
    for p, (_, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"party failed (exit {p.returncode}):\n{err[-3000:]}")
    r0, r1 = (json.loads(out.strip().splitlines()[-1]) for out, _ in outs)
    return r0, r1, total


@pytest.fixture(scope="module")
def raw_rates():
    """Single-core rates in this run: X25519 scalar multiplications/s (the call pet makes)
    and RFC 9380 encode_to_curve (u-coordinate) hashes/s."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    from pet.psi.ecdh import dst_for
    from pet.psi.encoding import encode_items
    from pet.psi.hash_to_curve import encode_to_curve_u_batch

    _, msgs = encode_items([f"user-{i:09d}" for i in range(20000)])
    t = time.process_time()
    points = encode_to_curve_u_batch(msgs, dst_for("NU"))
    hash_rate = len(msgs) / (time.process_time() - t)
    key = X25519PrivateKey.from_private_bytes(secrets.token_bytes(32))
    load, exchange = X25519PublicKey.from_public_bytes, key.exchange
    t = time.process_time()
    for u in points:
        exchange(load(u))
    x25519_rate = len(points) / (time.process_time() - t)
    from pet.psi import x25519

    joined = b"".join(points)
    x25519.scalarmult(key.private_bytes_raw(), joined[:64])  # compile / load the kernel
    t = time.process_time()
    x25519.scalarmult(key.private_bytes_raw(), joined)
    batched_rate = len(points) / (time.process_time() - t)

    def work():
        for u in points[:10000]:
            exchange(load(u))

    threads = [threading.Thread(target=work) for _ in range(2)]
    t, c = time.perf_counter(), time.process_time()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    parallelism = (time.process_time() - c) / (time.perf_counter() - t)
    return {"x25519_per_s": x25519_rate, "x25519_batched_per_s": batched_rate, "hash_per_s": hash_rate,
            "x25519_2threads_cpu_per_wall": parallelism}


def _record(benchmark, name, n, r0, r1, total, extra=None, link=None):
    info = {
        "impl": name, "link": link_label(link), "messages": r0["messages"] + r1["messages"],
        "n_per_side": n, "wall_s": round(max(r0["wall"], r1["wall"]), 2),
        "wall_incl_startup_s": round(total, 2), "cpu_s": round(r0["cpu"] + r1["cpu"], 2),
        "bytes_per_item": round((r0["sent"] + r1["sent"]) / (2 * n), 1),
        "bytes_total": r0["sent"] + r1["sent"], "max_rss_mib_main": round(max(r0["rss"], r1["rss"])), "intersection": r1["size"] if r1["size"] is not None else r0["size"],
    }
    info.update(extra or {})
    benchmark.extra_info.update(info)
    print("\nPSI-BENCH " + json.dumps(info), flush=True)
    return info


@pytest.mark.timeout(7200)
@pytest.mark.parametrize("impl", ["pet", "openmined-psi"])
@pytest.mark.parametrize("log2", LOG2)
def test_psi(benchmark, log2, impl, tmp_path, raw_rates, link):
    """Each size runs pet then openmined-psi, so partial runs still compare like with like."""
    if impl == "pet":
        _pet(benchmark, log2, tmp_path, raw_rates, link)
    else:
        _openmined(benchmark, log2, tmp_path, link)


def _pet(benchmark, log2, tmp_path, raw_rates, link=None):
    n = 1 << log2
    out = {}

    def run():
        out["r"] = _run_two(_PET, n, tmp_path, link)

    benchmark.pedantic(run, rounds=1, iterations=1)
    r0, r1, total = out["r"]
    assert r0["size"] == r1["size"] == n // 2
    bound = 4 * n / raw_rates["x25519_per_s"] + 2 * n / raw_rates["hash_per_s"]
    bound_batched = 4 * n / raw_rates["x25519_batched_per_s"] + 2 * n / raw_rates["hash_per_s"]
    _record(benchmark, "pet", n, r0, r1, total, {
        "x25519_per_s_1core": round(raw_rates["x25519_per_s"]),
        "hash_per_s_1core": round(raw_rates["hash_per_s"]),
        "x25519_2threads_cpu_per_wall": round(raw_rates["x25519_2threads_cpu_per_wall"], 2),
        "cpu_bound_s": round(bound, 2),
        "cpu_over_bound": round((r0["cpu"] + r1["cpu"]) / bound, 3),
        "x25519_batched_per_s_1core": round(raw_rates["x25519_batched_per_s"]),
        "cpu_bound_batched_s": round(bound_batched, 2),
        "cpu_over_bound_batched": round((r0["cpu"] + r1["cpu"]) / bound_batched, 3),
    }, link)


def _openmined(benchmark, log2, tmp_path, link=None):
    try:
        import private_set_intersection.python  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("openmined-psi is not installed: pip install 'openmined.psi==2.0.6' "
                           "(the 'bench' extra)") from exc
    n = 1 << log2
    out = {}

    def run():
        out["r"] = _run_two(_OPENMINED, n, tmp_path, link)

    benchmark.pedantic(run, rounds=1, iterations=1)
    r0, r1, total = out["r"]
    assert r1["size"] == n // 2
    _record(benchmark, "openmined-psi-2.0.6", n, r0, r1, total, link=link)


# --------------------------------------------------------------------------- bucketed (Dask) path
#
# ``PET_PSI_BENCH_BUCKETED=6,7`` (log10 rows per side; unset: no cases) runs ``pet psi
# --buckets B --cluster local:W`` at both parties as separate processes over loopback, for
# each ``W`` in ``PET_PSI_BENCH_BUCKETED_WORKERS`` (default ``2``; ``1,2`` for the scaling
# figure), with ``B = max(8, rows / 2^14)`` (about 16k rows per bucket) unless
# ``PET_PSI_BENCH_BUCKETS`` is set. Reported: ``wall_s`` (both commands, start to end),
# ``bytes_per_item`` (bucket traffic each party sent / its rows), ``peak_rss_mib_largest``
# (the largest process of either party's tree: driver, nannies, workers; sampled every
# 0.5 s with psutil) and ``disk_peak_mib`` (both state directories, sampled).

BUCKETED = [int(x) for x in os.environ.get("PET_PSI_BENCH_BUCKETED", "").split(",") if x.strip()]
BUCKETED_WORKERS = [int(x) for x in os.environ.get("PET_PSI_BENCH_BUCKETED_WORKERS", "2").split(",") if x.strip()]


def _write_keys(path, start: int, n: int, column: str) -> None:
    with open(path, "w") as f:
        f.write(f"id,{column}\n")
        for s in range(start, start + n, 1 << 16):
            f.writelines(f"user-{i:09d},{i}\n" for i in range(s, min(start + n, s + (1 << 16))))


def _tree_sample(pids, peak: dict) -> None:
    import psutil

    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root] + root.children(recursive=True)
        except psutil.Error:
            continue
        for q in tree:
            try:
                peak[q.pid] = max(peak.get(q.pid, 0), q.memory_info().rss)
            except psutil.Error:
                pass


def _dir_bytes(path) -> int:
    from pathlib import Path

    p = Path(path)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.exists() else 0


@pytest.mark.timeout(4 * 3600)
@pytest.mark.parametrize("workers", BUCKETED_WORKERS)
@pytest.mark.parametrize("log10", BUCKETED)
def test_psi_bucketed(benchmark, log10, workers, tmp_path, link):
    n = 10 ** log10
    buckets = int(os.environ.get("PET_PSI_BENCH_BUCKETS", max(8, n >> 14)))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _write_keys(a, 0, n, "x")
    _write_keys(b, n // 2, n, "y")
    port = _free_port()

    def command(party, where, inp, out):
        return [sys.executable, "-m", "pet", "psi", "--party", str(party), where, f"127.0.0.1:{port}", "--input",
                str(inp), "--column", "id", "--output", str(out), "--buckets", str(buckets), "--cluster",
                f"local:{workers}", "--no-progress"] + (["--link", link_text(link)] if link else [])

    def run():
        t0 = time.perf_counter()
        procs = [subprocess.Popen(command(0, "--listen", a, tmp_path / "o0.parquet"), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True),
                 subprocess.Popen(command(1, "--connect", b, tmp_path / "o1.parquet"), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)]
        peak, disk = {}, 0
        while any(p.poll() is None for p in procs):
            _tree_sample([p.pid for p in procs], peak)
            disk = max(disk, _dir_bytes(tmp_path / "o0.parquet.pet-state") + _dir_bytes(tmp_path / "o1.parquet.pet-state"))
            time.sleep(0.5)
        outs = [p.communicate() for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0, err[-2000:]
        sent = [int(o.split("sent ")[1].split(" B")[0].replace(",", "")) for o, _ in outs]
        return {"wall_s": time.perf_counter() - t0, "bytes_per_item": sum(sent) / (2 * n),
                "peak_rss_mib_largest": max(peak.values()) / 2**20, "disk_peak_mib": disk / 2**20,
                "buckets": buckets, "workers": workers, "rows_per_side": n, "link": link_label(link)}

    info = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(info)
    print(f"\nbucketed n=10^{log10} B={buckets} local:{workers}: {info}")


# --------------------------------------------------------------------------- KKRT vs SecretFlow


def _spu_python() -> str:
    from pathlib import Path

    given = os.environ.get("PET_SPU_PYTHON")
    candidates = [given] if given else ["/work/peers-venv/bin/python",
                                        str(Path(__file__).resolve().parents[2] / ".venv-spu/bin/python")]
    for c in candidates:
        if c and Path(c).exists():
            return c
    raise RuntimeError(f"no SPU environment for the SecretFlow comparison (tried {candidates}): python3 -m venv "
                       "../.venv-spu && ../.venv-spu/bin/pip install spu==0.9.5, or set PET_SPU_PYTHON")


def _spu_script() -> str:
    from pathlib import Path

    path = os.environ.get("PET_SPU_PSI") or str(Path(__file__).resolve().parents[2] / "shared/peers/spu_psi.py")
    if not Path(path).exists():
        raise RuntimeError(f"SecretFlow runner not found at {path} (set PET_SPU_PSI)")
    return path


def _secretflow(log2: int, proto: str) -> float:
    p = subprocess.run([_spu_python(), _spu_script(), str(log2), proto], capture_output=True, text=True,
                       timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(f"SecretFlow {proto} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    for line in reversed(p.stdout.strip().splitlines()):  # its own log lines go to stdout too
        try:
            return float(line)
        except ValueError:
            continue
    raise RuntimeError(f"SecretFlow {proto} printed no time:\n{p.stdout[-2000:]}")


@pytest.mark.timeout(7200)
@pytest.mark.parametrize("impl", ["pet-kkrt", "pet-kkrt-threads", "secretflow-kkrt"])
@pytest.mark.parametrize("log2", LOG2)
def test_psi_kkrt(benchmark, log2, impl, tmp_path, link):
    """Each size runs pet's KKRT (processes, then threads) then SecretFlow's, so partial runs
    still compare like with like."""
    n = 1 << log2
    load = os.getloadavg()[0]
    out = {}
    if impl == "secretflow-kkrt":
        if link is not None:
            pytest.skip("secretflow-kkrt runs over SPU's own in-memory link, which pet cannot shape")

        def run():
            out["kkrt"] = _secretflow(log2, "KKRT")

        benchmark.pedantic(run, rounds=1, iterations=1)
        rr22 = _secretflow(log2, "RR22")
        info = {"impl": impl, "n_per_side": n, "wall_s": round(out["kkrt"], 2), "secretflow_rr22_s": round(rr22, 2),
                "load_avg_1min": round(load, 2)}
        benchmark.extra_info.update(info)
        print("\nPSI-BENCH " + json.dumps(info), flush=True)
        return

    def run():
        if impl == "pet-kkrt":
            out["r"] = _run_two(_KKRT, n, tmp_path, link)
        else:
            out["r"] = _run_threads(_KKRT_THREADS, n, tmp_path, link)

    benchmark.pedantic(run, rounds=1, iterations=1)
    r0, r1, total = out["r"]
    assert r0["size"] == r1["size"] == n // 2
    _record(benchmark, impl, n, r0, r1, total, {"load_avg_1min": round(load, 2)}, link)
