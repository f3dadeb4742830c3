"""Runs in the PEERS venv (benchmarks/peers/setup.sh), never in pet's: times SecretFlow SPU
0.9.5's SEMI2K protocol (FM64, default runtime config: beaver material from the trusted
first party, no dealer process) on the operations pet's dealer rows time.

    python spu_semi2k.py {mul|compare} N [REPS]

Two parties as two threads over SPU's in-memory link, one runtime per party for the whole
script (as pet's dealer rows keep one session: SEMI2K has no per-session set-up worth
timing). One compiled ``x * y`` (fixed-point, with SPU's truncation) or ``x < y`` on N
secret fixed-point elements; the inputs are shared by SPU's Io beforehand (a local
operation, not timed). One untimed warm-up run, then REPS timed runs (default 3) of
``rt.run`` only (what /work/shared/peers/spu_mul.py times). The first run's result is
reconstructed and checked against numpy (so a broken run cannot report a time).

Prints one JSON line: ``{"protocol", "op", "n", "seconds": [...], "median",
"cpu_seconds_both_parties": [...], "max_abs_error"}`` -- a run's time is the slower party's,
its CPU time the whole process's (both parties and SPU's own threads) during the run. A
failure in either party exits non-zero with the party's error on stderr (never a time)."""
import json
import statistics
import sys
import threading
import time

import jax.numpy as jnp
import numpy as np
import spu.api as spu_api
import spu.libspu as libspu
from peer_report import party_time  # benchmarks/peers/peer_report.py (this script's directory)
from spu.utils import frontend as spu_fe

OPS = {"mul": jnp.multiply, "compare": jnp.less}
#: Seconds a party waits for the other's message before SPU's link gives up (a failed
#: party must not hang the benchmark).
RECV_TIMEOUT_MS = 600_000


def run_parties(target) -> list:
    """Run ``target(rank)`` in two threads; returns both results, or raises the first
    party's exception (a party that failed never yields a result)."""
    results: list = [None, None]
    errors: list = [None, None]

    def party(r):
        try:
            results[r] = target(r)
        except BaseException as exc:  # re-raised below, in the main thread
            errors[r] = exc

    threads = [threading.Thread(target=party, args=(r,), daemon=True) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RECV_TIMEOUT_MS / 1000 + 60)
    for r, t in enumerate(threads):
        if t.is_alive():
            errors[r] = errors[r] or TimeoutError(f"party {r} did not finish")
    party_time([1.0, 1.0], errors)  # raises for the first failed party
    return results


def main(op: str, n: int, reps: int) -> dict:
    cfg = libspu.RuntimeConfig(protocol=libspu.ProtocolKind.SEMI2K, field=libspu.FieldType.FM64)
    io = spu_api.Io(2, cfg)
    x = np.random.default_rng(0).uniform(-100, 100, n).astype(np.float32)
    y = np.random.default_rng(1).uniform(-100, 100, n).astype(np.float32)
    exe, _ = spu_fe.compile(spu_fe.Kind.JAX, OPS[op], (x, y), {}, ["in0", "in1"],
                            [libspu.Visibility.VIS_SECRET] * 2, lambda outs: [f"out{i}" for i in range(len(outs))])
    params = [io.make_shares(a, libspu.Visibility.VIS_SECRET) for a in (x, y)]
    desc = libspu.link.Desc()
    desc.recv_timeout_ms = RECV_TIMEOUT_MS
    for r in range(2):
        desc.add_party(f"id_{r}", f"thread_{r}")
    runtimes = run_parties(lambda r: spu_api.Runtime(libspu.link.create_mem(desc, r), libspu.RuntimeConfig(cfg)))
    for r, rt in enumerate(runtimes):
        for i, p in enumerate(params):
            rt.set_var(exe.input_names[i], p[r])

    def party_run(r) -> float:
        start = time.perf_counter()
        runtimes[r].run(exe)
        return time.perf_counter() - start

    def once() -> tuple:
        cpu = time.process_time()
        runs = run_parties(party_run)
        return party_time(runs, [None, None]), time.process_time() - cpu

    once()  # warm up
    out = io.reconstruct([rt.get_var(exe.output_names[0]) for rt in runtimes])
    expected = x.astype(np.float64) * y if op == "mul" else (x < y)
    error = float(np.max(np.abs(np.asarray(out, dtype=np.float64) - expected)))
    tolerance = 1.0 if op == "mul" else 0.0  # |x * y| <= 1e4 in FM64 fixed point: errors are ~1e-3
    if not error <= tolerance:
        raise RuntimeError(f"SPU {op} result is off by {error} (tolerance {tolerance})")
    runs = [once() for _ in range(reps)]
    seconds = [r[0] for r in runs]
    return {"protocol": "semi2k", "op": op, "n": n, "seconds": seconds, "median": statistics.median(seconds),
            "cpu_seconds_both_parties": [round(r[1], 3) for r in runs], "max_abs_error": error}


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in OPS:
        raise SystemExit(f"usage: {sys.argv[0]} {{{'|'.join(OPS)}}} N [REPS]")
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 3)), flush=True)
