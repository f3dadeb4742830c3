"""Scale-out (issue 19): bucketed PSI on each party's Dask cluster, next to the unbucketed
``pet psi`` on the same inputs.

Run (the issue's figures: 10^6 and 10^7 rows per side on ``local:2``, and 10^6 on 1 vs 2
workers for the scaling)::

    PET_SCALE_OUT_CASES=6:1,6:2,7:2 .venv/bin/python -m pytest benchmarks/test_scale_out.py \\
        --benchmark-only -s [--benchmark-json /tmp/scale-out.json]

``PET_SCALE_OUT_CASES`` lists ``log10_rows:workers[:buckets]`` (default ``5:1,5:2``; with
``PET_BENCH_FULL=1`` ``6:1,6:2,7:2``); ``PET_SCALE_OUT_BASELINE=0`` skips the unbucketed
runs (one per size, default on); ``PET_SCALE_OUT_PROTOCOL`` (``kkrt`` default, or ``ecdh``)
is the protocol of both paths (``--protocol``: the unbucketed PSI and the per-bucket one,
so the two are compared like for like); ``PET_SCALE_OUT_BUCKETS`` fixes ``B`` (default
:func:`pet.psi.bucketed.default_buckets` of the protocol: ``max(8, ceil(rows / R))``, ``R``
= 2^14 rows per bucket for ECDH, 2^20 for KKRT).

Each case writes two CSV files (``id`` = 15-byte ``user-%09d`` keys plus one int column;
half of the keys in common, shuffled by blocks), starts ``pet psi --party 0`` and ``--party
1`` as separate processes over loopback (``--buckets B --cluster local:W`` for the bucketed
path), samples both process trees every 0.5 s with psutil and reports (``extra_info`` and
one printed line):

- ``wall_s`` (both commands, start to end), ``cpu_s`` (user+sys of every process of both
  trees: drivers, nannies, workers; ``cpu_s_drivers``: the two ``pet psi`` processes,
  which hold the Dask schedulers of ``local:N``), ``us_per_item_wall`` / ``us_per_item_cpu`` (per input
  row of one side);
- ``bytes_per_item`` (bytes each party sent / its rows, averaged);
- ``peak_rss_mib_largest`` (the largest single process of either tree) and
  ``peak_rss_mib_driver``;
- ``disk_peak_mib`` (both state directories, sampled) and ``output_mib``;
- ``load_before`` / ``load_after`` (1-minute load average of the machine: figures taken on
  a shared machine are not representative -- say so with them);
- for the bucketed cases, ``over_unbucketed_wall`` / ``over_unbucketed_cpu``: the ratio of
  per-item times to the unbucketed run of the same size in the same session (the issue's
  target: at most 1.2);
- ``link``: with ``--link`` (``conftest.py``; ``--link wan``: loopback, 1 Gbit/s and
  100 Mbit/s at 20 ms) every case runs once per link, both ``pet psi`` commands given
  ``--link`` (each shapes what it sends); the bucketed ratios are to the unbucketed run on
  the same link. ``pet psi`` prints bytes but no message count, so no rounds are reported.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import link_label, link_text, pick

CASES = [(tuple(int(v) for v in c.split(":")) + (0,))[:3] for c in
         os.environ.get("PET_SCALE_OUT_CASES", pick("5:1,5:2", "6:1,6:2,7:2")).split(",") if c.strip()]
BASELINE = os.environ.get("PET_SCALE_OUT_BASELINE", "1") not in ("", "0")
PROTOCOL = os.environ.get("PET_SCALE_OUT_PROTOCOL", "kkrt")
SIZES = sorted({n for n, _, _ in CASES})

_UNBUCKETED: dict[tuple, dict] = {}  # (log10, link) -> figures of the unbucketed run (same session)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """Party 0: keys 0..n-1; party 1: n/2..3n/2-1; both in blocks of 2^16 in a shuffled order."""
    import random

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for path, start, col in ((a, 0, "x"), (b, n // 2, "y")):
        blocks = list(range(start, start + n, 1 << 16))
        random.Random(start).shuffle(blocks)
        with open(path, "w") as f:
            f.write(f"id,{col}\n")
            for s in blocks:
                f.writelines(f"user-{i:09d},{i}\n" for i in range(s, min(start + n, s + (1 << 16))))
    return a, b


def _sample(pids, peak: dict, cpu: dict, roots: dict) -> None:
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
                t = q.cpu_times()
                cpu[q.pid] = max(cpu.get(q.pid, 0.0), t.user + t.system)
                roots.setdefault(q.pid, q.pid == pid)
            except psutil.Error:
                pass


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _run_pair(tmp_path: Path, n: int, extra: list[str], out_suffix: str, link=None) -> dict:
    a, b = _inputs(tmp_path, n)
    port = _free_port()
    outs = [tmp_path / f"o0{out_suffix}", tmp_path / f"o1{out_suffix}"]

    def command(party, where, inp, out):
        return [sys.executable, "-m", "pet", "psi", "--party", str(party), where, f"127.0.0.1:{port}", "--input",
                str(inp), "--column", "id", "--output", str(out), "--no-progress", "--protocol", PROTOCOL, *extra,
                *(["--link", link_text(link)] if link else [])]

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(command(0, "--listen", a, outs[0]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True),
             subprocess.Popen(command(1, "--connect", b, outs[1]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)]
    peak, cpu, roots, disk = {}, {}, {}, 0
    states = [Path(f"{o}.pet-state") for o in outs]
    while any(p.poll() is None for p in procs):
        _sample([p.pid for p in procs], peak, cpu, roots)
        disk = max(disk, sum(_dir_bytes(s) for s in states))
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    results = [p.communicate() for p in procs]
    for p, (_out, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    sent = [int(o.split("sent ")[1].split(" B")[0].replace(",", "")) for o, _ in results]
    written = [int(o.split("pet psi: ")[1].split(" of ")[0]) for o, _ in results]
    assert written[0] == written[1] == n // 2
    drivers = [v for pid, v in peak.items() if roots.get(pid)]
    cpu_s = sum(cpu.values())
    cpu_drivers = sum(v for pid, v in cpu.items() if roots.get(pid))
    return {"rows_per_side": n, "wall_s": wall, "cpu_s": cpu_s, "cpu_s_drivers": cpu_drivers,
            "us_per_item_wall": wall / n * 1e6,
            "us_per_item_cpu": cpu_s / n * 1e6, "bytes_per_item": sum(sent) / (2 * n),
            "peak_rss_mib_largest": max(peak.values()) / 2**20,
            "peak_rss_mib_driver": max(drivers) / 2**20 if drivers else None,
            "disk_peak_mib": disk / 2**20, "output_mib": sum(_dir_bytes(o) if o.is_dir() else o.stat().st_size
                                                            for o in outs) / 2**20,
            "load_before": load_before, "load_after": os.getloadavg()[0], "link": link_label(link)}


@pytest.mark.timeout(6 * 3600)
@pytest.mark.skipif(not BASELINE, reason="PET_SCALE_OUT_BASELINE=0")
@pytest.mark.parametrize("log10", SIZES)
def test_unbucketed_baseline(benchmark, log10, tmp_path, link):
    n = 10 ** log10
    info = benchmark.pedantic(lambda: _run_pair(tmp_path, n, [], ".csv", link), rounds=1, iterations=1)
    info.update(protocol=PROTOCOL, path="unbucketed")
    _UNBUCKETED[(log10, link)] = info
    benchmark.extra_info.update(info)
    print(f"\nunbucketed {PROTOCOL} n=10^{log10}: "
          + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()))


@pytest.mark.timeout(6 * 3600)
@pytest.mark.parametrize(("log10", "workers", "fixed_buckets"), CASES)
def test_bucketed(benchmark, log10, workers, fixed_buckets, tmp_path, link):
    n = 10 ** log10
    from pet.psi.bucketed import default_buckets

    buckets = fixed_buckets or int(os.environ.get("PET_SCALE_OUT_BUCKETS", default_buckets(n, PROTOCOL)))
    extra = ["--buckets", str(buckets), "--cluster", f"local:{workers}"]
    info = benchmark.pedantic(lambda: _run_pair(tmp_path, n, extra, ".parquet", link), rounds=1, iterations=1)
    info.update(buckets=buckets, workers=workers, protocol=PROTOCOL, path="bucketed")
    base = _UNBUCKETED.get((log10, link))
    if base is not None:
        info["over_unbucketed_wall"] = info["us_per_item_wall"] / base["us_per_item_wall"]
        info["over_unbucketed_cpu"] = info["us_per_item_cpu"] / base["us_per_item_cpu"]
    benchmark.extra_info.update(info)
    print(f"\nbucketed {PROTOCOL} n=10^{log10} B={buckets} local:{workers}: "
          + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()))
