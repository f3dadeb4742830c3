"""Two-party private Leiden end to end: two party processes plus the dealer over loopback TCP.

Run::

    .venv/bin/python -m pytest benchmarks/test_leiden.py --benchmark-only -s \
        [--benchmark-json /tmp/leiden.json]

Graph: a planted partition of 10^4 nodes in 50 blocks of 200 (edge probability 0.08 inside a
block) plus 20,000 random edges between blocks, about 10^5 edges; whole blocks are given
to party 0 or party 1 at random, so about 10 % of the edges cross the parties (their weight
1 split 0.5 + 0.5). ``PET_LEIDEN_BENCH_SCALE=0.2`` shrinks the graph (nodes and edges);
``PET_LEIDEN_BENCH_FLIP=0.2`` hands that fraction of the nodes to the other party (more
cross-party edges: time against the cross fraction).

Reported (``extra_info`` and one printed line): ``wall_s`` (the slower party, from the
first message to the result), ``bytes`` (both parties' traffic with each other, sent +
received, counted once per direction) and ``dealer_bytes``, the number of MPC rounds,
levels and candidate moves, the MPC rounds per step of a batch (``step_rounds``) and the
argmax calls per tournament arity (``arity``: 3 or 4 on a link with latency, chosen by
``pet.mpc.tournament.choose_arity``), the modularity of the union partition next to leidenalg's on
the union graph (``n_iterations=-1``, seed 0) and ``delta_q``. Target: <= 120 s with
``|delta_q| <= 0.01``. With ``--link`` (``conftest.py``; ``--link wan``: loopback, 1 Gbit/s
and 100 Mbit/s at 20 ms) the parties shape what they send to each other and to the dealer,
and the dealer (``pet dealer --link``) what it sends to them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
from conftest import pick

SCALE = float(os.environ.get("PET_LEIDEN_BENCH_SCALE", pick("0.1", "1")))
FLIP = float(os.environ.get("PET_LEIDEN_BENCH_FLIP", "0"))

_PARTY = textwrap.dedent("""
    import json, sys, time
    import pandas as pd
    from pet.graph import leiden
    from pet.graph.io import read_csv_input
    from pet.mpc import Session
    from pet.transport import tcp

    party, port, dport, edges, nodes, out, link = sys.argv[1:8]
    party, port, dport = int(party), int(port), int(dport)
    from pet.transport import Link
    shape = (lambda c: c) if not link else Link.parse(link).wrap
    nodes_, edges_ = read_csv_input(edges, nodes)
    if party == 0:
        ch = shape(tcp.listen("127.0.0.1", port, timeout=3600, accept_timeout=120))
    else:
        ch = shape(tcp.connect("127.0.0.1", port, timeout=3600, retry_for=120))
    dealer = shape(tcp.connect("127.0.0.1", dport, timeout=3600, retry_for=120))
    ch.exchange("ready")
    t0 = time.perf_counter()
    with Session(party, ch, dealer=dealer) as s:
        res = leiden(s, nodes_, edges_, seed=0)
    wall = time.perf_counter() - t0
    res.rename("community").rename_axis("node").reset_index().to_csv(out, index=False)
    info = dict(res.attrs["pet_graph"])
    print(json.dumps({"wall": wall, "sent": ch.stats.bytes_sent, "received": ch.stats.bytes_received,
                      "dealer": dealer.stats.bytes_received + dealer.stats.bytes_sent, "info": info}))
    ch.close(); dealer.close()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graph(scale: float):
    """Planted partition (numpy's seeded generator: public benchmark data, not secrets)."""
    rng = np.random.default_rng(3)  # not-secret: benchmark data
    blocks, size = max(2, int(round(50 * scale))), 200
    iu = np.triu_indices(size, 1)
    parts = []
    for b in range(blocks):
        keep = rng.random(iu[0].size) < 0.08
        parts.append(np.stack([iu[0][keep], iu[1][keep]], 1) + b * size)
    n = blocks * size
    n_out = int(20000 * scale)
    u, v = rng.integers(0, n, 2 * n_out), rng.integers(0, n, 2 * n_out)
    ok = (u // size) != (v // size)
    out = np.stack([np.minimum(u, v), np.maximum(u, v)], 1)[ok][:n_out]
    edges = np.unique(np.concatenate(parts + [out]), axis=0)
    owner = np.repeat(rng.integers(0, 2, blocks), size)
    if FLIP:
        owner = np.where(rng.random(n) < FLIP, 1 - owner, owner)
    return n, edges, owner


def _write_inputs(tmp, n, edges, owner):
    cross = owner[edges[:, 0]] != owner[edges[:, 1]]
    paths = []
    for p in (0, 1):
        mine = (owner[edges[:, 0]] == p) | (owner[edges[:, 1]] == p)
        e = edges[mine]
        df = pd.DataFrame({"source": e[:, 0], "target": e[:, 1], "weight": np.where(cross[mine], 0.5, 1.0)})
        ep, np_ = tmp / f"edges{p}.csv", tmp / f"nodes{p}.csv"
        df.to_csv(ep, index=False)
        pd.Series(np.flatnonzero(owner == p), name="node").to_csv(np_, index=False)
        paths.append((ep, np_, tmp / f"out{p}.csv"))
    return paths, float(cross.mean())


def _link_text(link) -> str:
    """``link`` as ``Link.parse`` text for the subprocesses ('' = unshaped)."""
    if link is None:
        return ""
    return f"rtt={link.rtt!r}s" + ("" if link.bandwidth is None else f",bw={link.bandwidth!r}bit")


def _run(paths, link=None):
    port, dport = _free_port(), _free_port()
    spec = _link_text(link)
    dealer = subprocess.Popen([sys.executable, "-m", "pet", "dealer", "--listen", f"127.0.0.1:{dport}"]
                              + (["--link", spec] if spec else []),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs = [subprocess.Popen([sys.executable, "-c", _PARTY, str(p), str(port), str(dport), *map(str, paths[p]),
                               spec],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in (0, 1)]
    outs = [p.communicate(timeout=3600) for p in procs]
    dealer.communicate(timeout=60)
    for p, (_, e) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"party failed: {e[-3000:]}")
    return [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]


def test_leiden_two_processes(benchmark, tmp_path, link):
    import igraph as ig
    import leidenalg as la

    n, edges, owner = _graph(SCALE)
    paths, cross_frac = _write_inputs(tmp_path, n, edges, owner)
    results = benchmark.pedantic(_run, args=(paths, link), rounds=1, iterations=1)
    memb = pd.concat([pd.read_csv(p[2]) for p in paths]).set_index("node")["community"].loc[list(range(n))]
    g = ig.Graph(n=n, edges=edges.tolist())
    q = g.modularity(memb.tolist())
    t0 = time.perf_counter()
    ref = la.find_partition(g, la.ModularityVertexPartition, seed=0, n_iterations=-1)
    la_s = time.perf_counter() - t0
    q_la = g.modularity(ref.membership)
    info = results[0]["info"]
    extra = {
        "link": "loopback" if link is None else str(link),
        "nodes": n, "edges": int(len(edges)), "cross_fraction": round(cross_frac, 4),
        "wall_s": round(max(r["wall"] for r in results), 2),
        "bytes": int(results[0]["sent"] + results[0]["received"]),
        "dealer_bytes": int(sum(r["dealer"] for r in results)),
        "mpc_rounds": info["mpc_rounds"], "levels": info["levels"], "iterations": info["iterations"],
        "batches": info["rounds"], "candidates": info["candidates"], "frac_bits": info["frac_bits"],
        "modularity": round(q, 5), "modularity_leidenalg": round(q_la, 5), "delta_q": round(q - q_la, 5),
        "leidenalg_s": round(la_s, 2), "communities": int(memb.nunique()),
        "step_rounds": info.get("step_rounds"), "arity": info.get("arity"),
    }
    benchmark.extra_info.update(extra)
    print("\nleiden", json.dumps(extra))
    assert abs(q - q_la) <= 0.01
