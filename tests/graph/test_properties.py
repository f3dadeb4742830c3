"""Property checks on random small graphs and splits (hypothesis): the output is a
partition of the union with global labels, every community is connected, and with
``n_iterations=-1`` no single node move improves modularity (checked in plaintext)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pet.graph import leiden
from pet.mpc import run_local

from ._gen import split
from .conftest import communities_connected, graph_of, union_membership


def _best_single_move_gain(n, edges, w, memb, gamma):
    m = w.sum()
    adj = [dict() for _ in range(n)]
    for (a, b), x in zip(edges.tolist(), w.tolist()):
        adj[a][b] = adj[a].get(b, 0.0) + x
        adj[b][a] = adj[b].get(a, 0.0) + x
    k = np.array([sum(d.values()) for d in adj])
    K = {}
    for v in range(n):
        K[memb[v]] = K.get(memb[v], 0.0) + k[v]
    best = 0.0
    for v in range(n):
        c = memb[v]
        wmap = {}
        for u, x in adj[v].items():
            wmap[memb[u]] = wmap.get(memb[u], 0.0) + x
        wc = wmap.get(c, 0.0)
        for d in list(wmap) + [None]:  # None: the empty community
            if d == c:
                continue
            wd, kd = (0.0, 0.0) if d is None else (wmap[d], K[d])
            gain = (wd - wc) / m - gamma * k[v] * (kd - K[c] + k[v]) / (2 * m * m)
            best = max(best, gain)
    return best


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(4, 28), p=st.floats(0.1, 0.5), seed=st.integers(0, 10**6),
       gamma=st.sampled_from([0.5, 1.0, 1.5]))
def test_partition_connected_and_node_optimal(n, p, seed, gamma):
    rng = np.random.default_rng(seed)  # not-secret: test data
    iu = np.triu_indices(n, 1)
    keep = rng.random(iu[0].size) < p
    edges = np.stack([iu[0][keep], iu[1][keep]], 1)
    if len(edges) == 0:
        edges = np.array([[0, 1]])
    w = rng.integers(1, 8, len(edges)) / 4.0
    owner = rng.integers(0, 2, n)
    shares = rng.integers(-8, 9, len(edges)) / 8.0
    inputs = split(n, edges, owner, weights=w, shares=shares)
    r0, r1 = run_local(lambda s: leiden(s, *inputs[s.party], resolution=gamma, seed=seed % 7, n_iterations=-1),
                       timeout=300)
    assert sorted(r0.index) == np.flatnonzero(owner == 0).tolist()
    assert sorted(r1.index) == np.flatnonzero(owner == 1).tolist()
    memb = union_membership(r0, r1, range(n))
    assert set(memb.tolist()) == set(range(len(set(memb.tolist()))))
    assert communities_connected(graph_of(n, edges, w), memb)
    assert _best_single_move_gain(n, edges, w, memb, gamma) <= 1e-12
