"""pet.mpc benchmarks: in-process (run_local-style threads) and three processes over TCP.

Run (once, on an otherwise idle machine)::

    .venv/bin/python -m pytest benchmarks/test_mpc.py --benchmark-only -q \
        --benchmark-columns=min,median,rounds --benchmark-sort=name

Each benchmark records in ``extra_info``: ``elements`` (operations per call), ``ops_per_s``
(from the median), ``bytes_per_op`` (bytes party 0 sent to party 1, per element),
``dealer_bytes_per_op`` (what party 1 received from the dealer, per element) and
``rounds`` (party-to-party message rounds per call). ``test_in_process`` and
``test_tcp_three_processes`` times include the dealer's work (it runs concurrently as a
third thread/process; nothing is precomputed); ``test_in_process_online`` prefetches the
dealer material (untimed) and times the online phase only.

``test_dealer_free_in_process`` is the dealer-free row (``correlations="ot"``): two
threads only, a fresh session per call (base OTs, OT extension, sharing, op, reveal);
``extra_info`` has the bytes party 0 sent per element and each party's CPU seconds.

The TCP variant runs party 0 in this process, party 1 in a child (``python
benchmarks/test_mpc.py PEER_PORT DEALER_PORT [LINK]``) and the dealer as ``pet dealer``.

With ``--link`` (``conftest.py``; ``--link wan``: loopback, 1 Gbit/s and 100 Mbit/s at
20 ms) the in-process, 3-process and dealer-free rows run once per link with every link of
the run shaped: each party shapes what it sends to the other and to the dealer, and the
dealer (thread, or ``pet dealer --link``) what it sends to them; ``extra_info["link"]``
names the link (``loopback`` without one) next to the bytes and rounds. The peer rows
(SPU) and the kernel row have no link.

Same-run peers (with ``PET_PEERS_PYTHON``, see the end of this file): SPU CHEETAH next to
the dealer-free rows, SPU SEMI2K next to the dealer rows, e.g. pet's dealer path and
SEMI2K on 10^6 fixed-point products in one run::

    PET_BENCH_FULL=1 PET_PEERS_PYTHON=... .venv/bin/python -m pytest benchmarks/test_mpc.py \
        --benchmark-only -q -k "mul and 1000000 and (test_in_process or tcp_three or semi2k)"
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import link_label, link_text, pick, shaped

import pet.mpc as mpc
from pet.mpc import dealer as _dealer
from pet.mpc import ring_matmul
from pet.transport import local_pair, tcp

SIZES = pick([10_000, 100_000], [10_000, 1_000_000])
MATMUL = pick([128, 512], [512, 1000])
OPS = {
    "mul": lambda a, b: a * b,
    "compare": lambda a, b: a < b,
    "reciprocal": lambda a, b: mpc.reciprocal(a),
    "sigmoid": lambda a, b: mpc.sigmoid(b),
    "matmul": lambda a, b: a @ b,
}
CASES = [(op, n) for op in ("mul", "compare", "reciprocal", "sigmoid") for n in SIZES] + \
        [("matmul", n) for n in MATMUL]


def _data(n: int, party: int, op: str) -> np.ndarray:
    """Deterministic, non-secret benchmark inputs (no RNG needed)."""
    shape = (n, n) if op == "matmul" else (n,)
    k = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    if party == 0:
        return 0.05 + 50.0 * (1.0 + np.sin(k * 0.7))  # positive: reciprocal domain
    return 8.0 * np.cos(k * 1.3)


def _elements(op: str, n: int) -> int:
    return n * n if op == "matmul" else n


class _PartyLoop:
    """One party's session driven by commands (op, n) from the benchmark thread."""

    def __init__(self, party, session_factory):
        self.party = party
        self.tasks: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(session_factory,), daemon=True)
        self.thread.start()

    def _run(self, session_factory):
        try:
            with session_factory() as s:
                inputs = {}
                while True:
                    task = self.tasks.get()
                    if task is None:
                        break
                    self.results.put(_do(s, inputs, *task))
        except BaseException as exc:  # reported to the benchmark thread
            self.results.put(exc)

    def call(self, task):
        self.tasks.put(task)

    def result(self):
        r = self.results.get(timeout=600)
        if isinstance(r, BaseException):
            raise r
        return r


def _specs(op: str, n: int) -> list:
    """The dealer material one call of ``op`` uses (for the online-only benchmarks)."""
    from pet.mpc.boolean import msb_specs

    if op == "mul":
        return [("triple", (n,)), ("trunc", (n,), 16)]
    if op == "matmul":
        return [("matmul", n, n, n), ("trunc", (n, n), 16)]
    if op == "compare":
        return msb_specs(n)  # the dealer rows (the dealer-free rows make theirs inside the timing)
    raise ValueError(op)


def _do(s, inputs, op, n, phase):
    key = (op, n)
    if phase == "prefetch":
        s.source.prefetch(_specs(op, n))
        s.source.wait()
        return None
    if phase == "setup":
        a = s.share(_data(n, 0, op) if s.party == 0 else None, owner=0)
        b = s.share(_data(n, 1, op) if s.party == 1 else None, owner=1)
        inputs[key] = (a, b)
        return None
    a, b = inputs[key]
    before, rounds, dealer_before = s.channel.stats.snapshot(), s.rounds, s.source.channel.stats.snapshot()
    OPS[op](a, b)
    sent = (s.channel.stats - before).bytes_sent
    dealer_rx = (s.source.channel.stats - dealer_before).bytes_received
    return sent, s.rounds - rounds, dealer_rx


def _local_loops(link):
    """Two party loops and a dealer thread joined by in-memory channels, every end shaped
    by ``link`` (None: unshaped)."""
    p01, p10 = local_pair(timeout=600, names=("party0", "party1"))
    d0, dd0 = local_pair(timeout=600, names=("party0", "dealer"))
    d1, dd1 = local_pair(timeout=600, names=("party1", "dealer"))
    p01, p10, d0, dd0, d1, dd1 = (shaped(c, link) for c in (p01, p10, d0, dd0, d1, dd1))
    dealer = threading.Thread(target=_dealer.serve, args=(dd0, dd1), daemon=True)
    dealer.start()
    return [_PartyLoop(0, lambda: mpc.Session(0, p01, dealer=d0)),
            _PartyLoop(1, lambda: mpc.Session(1, p10, dealer=d1))]


@pytest.fixture(scope="module")
def local_parties():
    """``local_parties(link)``: the in-process parties for ``link``, made once per link."""
    made: dict = {}

    def get(link):
        if link not in made:
            made[link] = _local_loops(link)
        return made[link]

    yield get
    for loops in made.values():
        for lp in loops:
            lp.call(None)


def _run_both(loops, task):
    for lp in loops:
        lp.call(task)
    out = [lp.result() for lp in loops]
    return out


def _record(benchmark, op, n, stats, link=None):
    (sent0, rounds0, _), (_, _, dealer1) = stats
    elems = _elements(op, n)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({
        "link": link_label(link),
        "elements": elems,
        "ops_per_s": round(elems / median),
        "bytes_per_op": round(sent0 / elems, 2),
        "dealer_bytes_per_op": round(dealer1 / elems, 2),
        "rounds": rounds0,
    })


@pytest.mark.parametrize("op,n", CASES)
def test_in_process(benchmark, local_parties, op, n, link):
    local_parties = local_parties(link)
    _run_both(local_parties, (op, n, "setup"))
    _run_both(local_parties, (op, n, "run"))  # warm up (numba, allocator)
    result = {}

    def once():
        result["stats"] = _run_both(local_parties, (op, n, "run"))

    rounds = 3 if _elements(op, n) >= 250_000 else 20
    benchmark.pedantic(once, rounds=rounds, iterations=1)
    _record(benchmark, op, n, result["stats"], link)


ONLINE_CASES = [("mul", n) for n in SIZES] + [("compare", n) for n in SIZES] + [("matmul", n) for n in MATMUL]


@pytest.mark.parametrize("op,n", ONLINE_CASES)
def test_in_process_online(benchmark, local_parties, op, n, link):
    """Online phase only: the dealer material is prefetched (untimed) before each call."""
    local_parties = local_parties(link)
    _run_both(local_parties, (op, n, "setup"))
    _run_both(local_parties, (op, n, "run"))
    result = {}

    def setup():
        _run_both(local_parties, (op, n, "prefetch"))

    def once():
        result["stats"] = _run_both(local_parties, (op, n, "run"))

    rounds = 3 if _elements(op, n) >= 250_000 else 20
    benchmark.pedantic(once, setup=setup, rounds=rounds, iterations=1)
    _record(benchmark, op, n, result["stats"], link)


KERNEL_METHODS = ["loop", "limb"] + (["ifma"] if ring_matmul.ifma_available() else [])


@pytest.mark.parametrize("method", KERNEL_METHODS)
@pytest.mark.parametrize("n", MATMUL)
def test_ring_matmul_kernel(benchmark, method, n):
    """One exact Z_2^64 product (n x n) @ (n x n) on one thread, per kernel of
    ``pet.mpc.ring_matmul`` (``limb`` uses BLAS's own threads). A shared fixed-point
    matmul costs about five of these: one per party with inner dimension 2n (two units
    each) and one at the dealer."""
    a = np.arange(n * n, dtype=np.uint64).reshape(n, n) * np.uint64(0x9E3779B97F4A7C15)
    b = a.T * np.uint64(0xC2B2AE3D27D4EB4F) + np.uint64(12345)
    ring_matmul.matmul_u64(a, b, method=method)  # compile / warm up
    benchmark.pedantic(ring_matmul.matmul_u64, args=(a, b), kwargs={"method": method}, rounds=5, iterations=1)
    benchmark.extra_info.update({"elements": n * n, "multiply_adds_per_s": round(n ** 3 / benchmark.stats.stats.median)})


# -- three processes over loopback TCP --------------------------------------------------


def _tcp_start(link):
    """Party 0's session here, party 1 a child process, the dealer ``pet dealer``; every
    end shaped by ``link``. Returns (session, inputs, stop)."""
    spec = link_text(link)
    dealer = subprocess.Popen([sys.executable, "-m", "pet", "dealer", "--listen", "127.0.0.1:0", "--sessions", "1"]
                              + (["--link", spec] if spec else []),
                              stderr=subprocess.PIPE, text=True)
    m = re.search(r":(\d+)\s*$", dealer.stderr.readline())
    dealer_port = int(m.group(1))
    listener = tcp.Listener("127.0.0.1", 0, timeout=600)
    child = subprocess.Popen([sys.executable, __file__, str(listener.port), str(dealer_port)]
                             + ([spec] if spec else []))
    peer = shaped(listener.accept(accept_timeout=120), link)
    listener.close()
    dch = shaped(tcp.connect("127.0.0.1", dealer_port, retry_for=60, timeout=600), link)
    session = mpc.Session(0, peer, dealer=dch)

    def stop():
        peer.send(None)
        session.close()
        child.wait(60)
        dealer.wait(60)
        peer.close()
        dch.close()

    return session, {}, stop


@pytest.fixture(scope="module")
def tcp_party0():
    """``tcp_party0(link)``: (session, inputs) of the 3-process run for ``link``, started
    once per link."""
    made: dict = {}

    def get(link):
        if link not in made:
            made[link] = _tcp_start(link)
        return made[link][:2]

    yield get
    for _, _, stop in made.values():
        stop()


@pytest.mark.parametrize("op,n", CASES)
def test_tcp_three_processes(benchmark, tcp_party0, op, n, link):
    s, inputs = tcp_party0(link)
    s.channel.send([op, n, "setup"])
    _do(s, inputs, op, n, "setup")
    s.channel.send([op, n, "run"])
    _do(s, inputs, op, n, "run")
    result = {}

    def once():
        s.channel.send([op, n, "run"])
        result["stats"] = _do(s, inputs, op, n, "run")

    rounds = 3 if _elements(op, n) >= 250_000 else 20
    benchmark.pedantic(once, rounds=rounds, iterations=1)
    sent, r, _ = result["stats"]
    elems = _elements(op, n)
    benchmark.extra_info.update({
        "link": link_label(link),
        "elements": elems,
        "ops_per_s": round(elems / benchmark.stats.stats.median),
        "bytes_per_op": round((sent - 60) / elems, 2),  # minus the command message
        "rounds": r,
    })


def _party1_main(peer_port: int, dealer_port: int, spec: str = "") -> int:
    from pet.transport import Link

    link = Link.parse(spec) if spec else None
    peer = shaped(tcp.connect("127.0.0.1", peer_port, retry_for=60, timeout=600), link)
    dch = shaped(tcp.connect("127.0.0.1", dealer_port, retry_for=60, timeout=600), link)
    inputs: dict = {}
    with peer, dch, mpc.Session(1, peer, dealer=dch) as s:
        while True:
            cmd = peer.recv()
            if cmd is None:
                return 0
            _do(s, inputs, cmd[0], int(cmd[1]), cmd[2])



# -- dealer-free (correlations="ot"): two parties only ----------------------------------

DEALER_FREE_CASES = [(op, n) for op in ("mul", "compare") for n in SIZES]


def _fresh_dealer_free_call(op, n, link=None):
    """One fresh dealer-free session per call (handshake and base OTs included), sharing,
    the op and the reveal, over ``link``; returns per party (bytes sent, CPU seconds of its
    thread, the session's rounds)."""
    import time

    def prog(s):
        t = time.thread_time()
        a = s.share(_data(n, 0, op) if s.party == 0 else None, owner=0)
        b = s.share(_data(n, 1, op) if s.party == 1 else None, owner=1)
        s.reveal(OPS[op](a, b))
        return s.channel.stats.bytes_sent, time.thread_time() - t, s.rounds

    return mpc.run_local(prog, correlations="ot", timeout=900, link=link)


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("op,n", DEALER_FREE_CASES)
def test_dealer_free_in_process(benchmark, op, n, link):
    """Dealer-free rows next to ``test_in_process``: everything from a fresh session to the
    revealed result (the correlated randomness is made by OT inside the timing; the
    issue's comparison point is SPU Cheetah with a fresh runtime per run)."""
    _fresh_dealer_free_call(op, min(n, 10_000))  # warm up (numba; unshaped)
    result = {}

    cpu_process = []

    def once():
        import resource

        before = resource.getrusage(resource.RUSAGE_SELF)
        result["stats"] = _fresh_dealer_free_call(op, n, link)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu_process.append(round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 3))

    benchmark.pedantic(once, rounds=3 if n >= 250_000 else 10, iterations=1)
    (sent0, cpu0, rounds0), (_, cpu1, _) = result["stats"]
    benchmark.extra_info.update({
        "link": link_label(link),
        "rounds": rounds0,
        "elements": n,
        "ops_per_s": round(n / benchmark.stats.stats.median),
        "bytes_per_op": round(sent0 / n, 2),  # everything party 0 sent, OT extension included
        "cpu_s_per_party": [round(cpu0, 3), round(cpu1, 3)],
        # this process's CPU (user + system) per timed run: both parties, comparable with the
        # Cheetah row's cpu_s_both_parties (less load-sensitive than wall time)
        "cpu_s_both_parties": cpu_process,
    })


# -- dealer-free, two processes over loopback TCP (plain and mutual TLS) -----------------


def _dealer_free_call(s_factory, op, n):
    """One fresh dealer-free session (handshake, base OTs on first use), sharing, the op and
    the reveal; returns (bytes this party sent, CPU seconds of this thread, the session's
    rounds)."""
    import time

    t = time.thread_time()
    with s_factory() as s:
        before = s.channel.stats.bytes_sent
        a = s.share(_data(n, 0, op) if s.party == 0 else None, owner=0)
        b = s.share(_data(n, 1, op) if s.party == 1 else None, owner=1)
        s.reveal(OPS[op](a, b))
        sent, rounds = s.channel.stats.bytes_sent - before, s.rounds
    return sent, time.thread_time() - t, rounds


@pytest.fixture(scope="module", params=["tcp", "tls"])
def dealer_free_tcp_party0(request, tmp_path_factory):
    """``dealer_free_tcp_party0(link)``: (transport, channel) with party 0 here, party 1 a
    child process (``python benchmarks/test_mpc.py dealer-free PORT [TLS_DIR [LINK]]``,
    TLS_DIR '' for plain TCP); one connection per link, both ends shaped by it, a fresh
    session per call."""
    from pet.transport import make_test_pki
    from pet.transport.tls import TLSConfig

    tls_dir = None
    if request.param == "tls":
        tls_dir = str(tmp_path_factory.mktemp("pki"))
        make_test_pki(tls_dir, names=("party0", "party1"))
    made: dict = {}

    def get(link):
        if link not in made:
            spec = link_text(link)
            listener = tcp.Listener("127.0.0.1", 0, timeout=900,
                                    tls=TLSConfig.from_dir(tls_dir, "party0") if tls_dir else None)
            child = subprocess.Popen([sys.executable, __file__, "dealer-free", str(listener.port),
                                      *([tls_dir or "", spec] if tls_dir or spec else [])])
            peer = shaped(listener.accept(accept_timeout=120), link)
            listener.close()
            made[link] = peer, child
        return request.param, made[link][0]

    yield get
    for peer, child in made.values():
        peer.send(None)
        child.wait(60)
        peer.close()


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("op,n", DEALER_FREE_CASES)
def test_dealer_free_tcp_two_processes(benchmark, dealer_free_tcp_party0, op, n, link):
    """Dealer-free rows next to ``test_tcp_three_processes``: two OS processes, no dealer;
    each call is a fresh session (base OTs included), sharing, the op and the reveal."""
    transport, peer = dealer_free_tcp_party0(link)

    def call(m):
        peer.send([op, m])
        before = peer.stats.bytes_sent
        _, cpu, rounds = _dealer_free_call(lambda: mpc.Session(0, peer, correlations="ot"), op, m)
        child_cpu = peer.recv()
        return peer.stats.bytes_sent - before, cpu, child_cpu, rounds  # the session's hello included

    call(min(n, 10_000))  # warm up (numba in both processes)
    result = {}

    def once():
        result["stats"] = call(n)

    benchmark.pedantic(once, rounds=3 if n >= 250_000 else 10, iterations=1)
    sent0, cpu0, cpu1, rounds0 = result["stats"]
    benchmark.extra_info.update({
        "transport": transport,  # tcp or tls
        "link": link_label(link),
        "rounds": rounds0,
        "elements": n,
        "ops_per_s": round(n / benchmark.stats.stats.median),
        "bytes_per_op": round(sent0 / n, 2),  # everything party 0 sent, OT extension included
        "cpu_s_per_party": [round(cpu0, 3), round(cpu1, 3)],
    })


def _dealer_free_party1_main(port: int, tls_dir: str | None, spec: str = "") -> int:
    from pet.transport import Link
    from pet.transport.tls import TLSConfig

    tls = TLSConfig.from_dir(tls_dir, "party1") if tls_dir else None
    link = Link.parse(spec) if spec else None
    with shaped(tcp.connect("127.0.0.1", port, tls=tls, retry_for=60, timeout=900), link) as peer:
        while True:
            cmd = peer.recv()
            if cmd is None:
                return 0
            _, cpu, _ = _dealer_free_call(lambda: mpc.Session(1, peer, correlations="ot"), cmd[0], int(cmd[1]))
            peer.send(cpu)


# -- the same-run peers: SecretFlow SPU 0.9.5 CHEETAH (dealer-free) and SEMI2K ---------------
#
# Run benchmarks/peers/spu_cheetah.py and spu_semi2k.py with the python of the peers' own
# virtual environment (benchmarks/peers/setup.sh; never a dependency of pet), named by
# PET_PEERS_PYTHON. Without it only these rows are skipped (with the reason); pet's own
# rows always run. A runner that fails, or reports anything but the expected positive run
# times, fails its row (benchmarks/peers/peer_report.py).

PEERS_PYTHON = os.environ.get("PET_PEERS_PYTHON", "")
PEERS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers")
PEER_REPS = 3


def _peer_report_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pet_bench_peer_report", os.path.join(PEERS_DIR, "peer_report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _peer_python_or_skip() -> str:
    if not PEERS_PYTHON:
        pytest.skip("PET_PEERS_PYTHON is not set: create the peers venv with benchmarks/peers/setup.sh and "
                    "point PET_PEERS_PYTHON at its python to time SPU in the same run")
    if not os.access(PEERS_PYTHON, os.X_OK):
        pytest.skip(f"PET_PEERS_PYTHON={PEERS_PYTHON!r} is not an executable python")
    return PEERS_PYTHON


def _run_peer(benchmark, script: str, op: str, n: int) -> dict:
    """Run a peer runner and replay its reported run times as this benchmark's rounds (the
    child's interpreter start, JAX compile and warm-up are outside them)."""
    python = _peer_python_or_skip()
    out = subprocess.run([python, os.path.join(PEERS_DIR, script), op, str(n), str(PEER_REPS)],
                         capture_output=True, text=True, timeout=3600)
    report = _peer_report_module().parse_report(out.returncode, out.stdout, out.stderr, PEER_REPS)
    times = list(report["seconds"])
    clock = [0.0]

    def reported_timer():  # replays the child's times as this benchmark's rounds
        return clock[0]

    def next_round():
        clock[0] += times.pop(0)

    benchmark._timer = reported_timer  # pytest-benchmark 5: the runner reads the timer here
    benchmark.pedantic(next_round, rounds=len(report["seconds"]), iterations=1)
    return report


@pytest.mark.timeout(3600)  # 10^6 comparisons take minutes on a loaded machine
@pytest.mark.parametrize("op,n", DEALER_FREE_CASES)
def test_peer_spu_cheetah(benchmark, op, n):
    """SPU 0.9.5 CHEETAH, FM64, two threads over its in-memory link, a fresh runtime per run
    (set-up inside the timing), one warm-up then 3 timed runs, in a child process of the
    peers' venv. The benchmark's own columns show the child's reported run times."""
    report = _run_peer(benchmark, "spu_cheetah.py", op, n)
    benchmark.extra_info.update({"peer": "spu 0.9.5 cheetah FM64", "elements": n, "seconds": report["seconds"],
                                 "median_s": report["median"], "ops_per_s": round(n / report["median"]),
                                 "cpu_s_both_parties": report.get("cpu_seconds_both_parties")})


SEMI2K_CASES = [(op, n) for op in ("mul", "compare") for n in SIZES]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("op,n", SEMI2K_CASES)
def test_peer_spu_semi2k(benchmark, op, n):
    """SPU 0.9.5 SEMI2K, FM64 (default config: beaver material from the trusted first party,
    no dealer process), two threads over its in-memory link, one runtime per party (as
    ``test_in_process`` keeps one session), one warm-up then 3 timed runs of ``rt.run``, in
    a child process of the peers' venv; the result is checked against numpy. The peer of
    the dealer rows: ``-k "mul and 1000000 and (in_process or tcp or semi2k)"`` times
    pet's in-process and 3-process rows and SEMI2K in one run."""
    report = _run_peer(benchmark, "spu_semi2k.py", op, n)
    benchmark.extra_info.update({"peer": "spu 0.9.5 semi2k FM64", "elements": n, "seconds": report["seconds"],
                                 "median_s": report["median"], "ops_per_s": round(n / report["median"]),
                                 "cpu_s_both_parties": report.get("cpu_seconds_both_parties"),
                                 "max_abs_error": report.get("max_abs_error")})


if __name__ == "__main__":
    if sys.argv[1] == "dealer-free":
        raise SystemExit(_dealer_free_party1_main(int(sys.argv[2]), (sys.argv[3] if len(sys.argv) > 3 else "") or None,
                                                  sys.argv[4] if len(sys.argv) > 4 else ""))
    raise SystemExit(_party1_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else ""))
