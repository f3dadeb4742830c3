"""Runs in the PEERS venv (benchmarks/peers/setup.sh), never in pet's: times SecretFlow SPU
0.9.5's dealer-free CHEETAH protocol (FM64) on the operation pet's dealer-free rows time.

    python spu_cheetah.py {mul|compare} N [REPS]

Two parties as two threads over SPU's in-memory link. Each run builds a fresh runtime per
party (so Cheetah's OT set-up is inside the timing, as pet's rows include a fresh session
with its base OTs) and runs one compiled ``x * y`` or ``x < y`` on N secret fixed-point
elements; the inputs are shared by SPU's Io beforehand (a local operation, not timed). One
untimed warm-up run, then REPS timed runs (default 3). Prints one JSON line:
``{"protocol", "op", "n", "seconds": [...], "median", "cpu_seconds_both_parties": [...]}`` -- a
run's time is the slower party's; its CPU time is the whole process's (both parties and SPU's
own threads) during the run. A failure in either party exits non-zero with the error on
stderr (it never reports a time).
Adapted from /work/shared/peers/spu_mul.py (which times rt.run only)."""
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


def main(op: str, n: int, reps: int) -> dict:
    cfg = libspu.RuntimeConfig(protocol=libspu.ProtocolKind.CHEETAH, field=libspu.FieldType.FM64)
    io = spu_api.Io(2, cfg)
    x = np.random.default_rng(0).uniform(-100, 100, n).astype(np.float32)
    y = np.random.default_rng(1).uniform(-100, 100, n).astype(np.float32)
    exe, _ = spu_fe.compile(spu_fe.Kind.JAX, OPS[op], (x, y), {}, ["in0", "in1"],
                            [libspu.Visibility.VIS_SECRET] * 2, lambda outs: [f"out{i}" for i in range(len(outs))])
    params = [io.make_shares(a, libspu.Visibility.VIS_SECRET) for a in (x, y)]

    def once() -> tuple:
        desc = libspu.link.Desc()
        for r in range(2):
            desc.add_party(f"id_{r}", f"thread_{r}")
        runs: list = [None, None]
        errors: list = [None, None]

        def party(r):
            try:
                start = time.perf_counter()
                rt = spu_api.Runtime(libspu.link.create_mem(desc, r), libspu.RuntimeConfig(cfg))
                for i, p in enumerate(params):
                    rt.set_var(exe.input_names[i], p[r])
                rt.run(exe)
                runs[r] = time.perf_counter() - start
            except BaseException as exc:  # re-raised below: a failed party never yields a time
                errors[r] = exc

        cpu = time.process_time()
        threads = [threading.Thread(target=party, args=(r,), daemon=True) for r in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return party_time(runs, errors), time.process_time() - cpu

    once()  # warm up
    runs = [once() for _ in range(reps)]
    seconds = [r[0] for r in runs]
    return {"protocol": "cheetah", "op": op, "n": n, "seconds": seconds, "median": statistics.median(seconds),
            "cpu_seconds_both_parties": [round(r[1], 3) for r in runs]}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 3)), flush=True)
