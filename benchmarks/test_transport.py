"""Transport throughput: in memory, loopback TCP between two processes, and mutual TLS.

Run:  .venv/bin/python -m pytest benchmarks/test_transport.py --benchmark-only
(``--benchmark-json out.json`` keeps the figures). Each measured call is one round trip of
the array (party 0 -> party 1 -> party 0), so the bytes moved per call are twice the size;
``extra_info`` records GB/s over those bytes, ``round_trips_per_call`` (1) and ``link``.

With ``--link`` (``conftest.py``; ``--link wan``: loopback, 1 Gbit/s and 100 Mbit/s at
20 ms) every row runs once per link with both ends shaped (the echo process shapes its
replies: ``_echo.py HOST:PORT [TLS_DIR [LINK]]``); a 64 MB round trip then takes about
2 x (8 x 64 MiB / bandwidth) + rtt, about 11 s at 100 Mbit/s (select ``-k 1MB`` for a quick
look).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import link_label, link_text, shaped

from pet.transport import local_pair, make_test_pki, tcp

SIZES = {"1MB": 1 << 20, "64MB": 64 << 20}


def _array(nbytes: int) -> np.ndarray:
    return np.frombuffer(np.random.default_rng(1).bytes(nbytes), dtype=np.uint64)  # not-secret


def _echo_process(tls_dir, link=None):
    """Start benchmarks/_echo.py (an echo loop) in its own process; return (channel, child),
    both ends shaped by ``link``."""
    from pet.demo.party import tls_for

    listener = tcp.Listener("127.0.0.1", 0, tls=tls_for("party0", tls_dir), timeout=120)
    cmd = [sys.executable, str(Path(__file__).with_name("_echo.py")), f"127.0.0.1:{listener.port}"]
    if tls_dir or link:
        cmd.append(tls_dir or "")
    if link:
        cmd.append(link_text(link))
    child = subprocess.Popen(cmd)
    channel = shaped(listener.accept(accept_timeout=60), link)
    listener.close()
    return channel, child


def _report(benchmark, nbytes, link=None):
    benchmark.extra_info["link"] = link_label(link)
    benchmark.extra_info["round_trips_per_call"] = 1
    benchmark.extra_info["bytes_per_round_trip"] = 2 * nbytes
    benchmark.extra_info["GB/s"] = round(2 * nbytes / benchmark.stats.stats.mean / 1e9, 3)


@pytest.mark.parametrize("size", SIZES)
def test_in_memory(benchmark, size, link):
    a, b = (shaped(c, link) for c in local_pair(timeout=60))
    data = _array(SIZES[size])
    stop = threading.Event()

    def echo():
        while not stop.is_set():
            msg = b.recv()
            if isinstance(msg, str):
                return
            b.send(msg)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()

    def round_trip():
        a.send(data)
        return a.recv()

    out = benchmark.pedantic(round_trip, rounds=5 if size == "64MB" else 50, warmup_rounds=1)
    a.send("stop")
    thread.join(10)
    assert np.array_equal(out, data)
    _report(benchmark, SIZES[size], link)


@pytest.mark.parametrize("transport", ["tcp", "tls"])
@pytest.mark.parametrize("size", SIZES)
def test_two_processes(benchmark, size, transport, tmp_path, link):
    tls_dir = None
    if transport == "tls":
        tls_dir = str(tmp_path)
        make_test_pki(tls_dir, names=("party0", "party1"))
    channel, child = _echo_process(tls_dir, link)
    data = _array(SIZES[size])

    def round_trip():
        channel.send(data)
        return channel.recv()

    try:
        out = benchmark.pedantic(round_trip, rounds=5 if size == "64MB" else 50, warmup_rounds=1)
    finally:
        channel.send("stop")
        channel.close()
        child.wait(30)
    assert np.array_equal(out, data)
    _report(benchmark, SIZES[size], link)
