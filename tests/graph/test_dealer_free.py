"""pet.graph.leiden between exactly two parties with no dealer (correlations="ot"):
modularity as the plaintext oracles (igraph, leidenalg), and the same partition as with
the dealer for the same seed."""

import igraph as ig
import leidenalg as la

from pet.graph import leiden
from pet.mpc import run_local

from ._gen import planted_partition, split
from .conftest import communities_connected, graph_of, union_membership

ZACHARY = ig.Graph.Famous("Zachary")


def run_leiden(inputs, correlations, **kw):
    def prog(s):
        return leiden(s, *inputs[s.party], **kw)
    return run_local(prog, timeout=900, correlations=correlations)


def test_karate_dealer_free_matches_the_dealer_run_and_the_optimum(karate):
    r0, r1 = run_leiden(karate, "ot", seed=3)
    memb = union_membership(r0, r1, range(34))
    q = ZACHARY.modularity(memb)
    assert 0.41 <= q <= 0.4198 + 1e-4
    assert communities_connected(ZACHARY, memb)
    d0, d1 = run_leiden(karate, "dealer", seed=3)
    assert r0.equals(d0) and r1.equals(d1)


def test_planted_partition_dealer_free_matches_leidenalg():
    import numpy as np

    n, edges = planted_partition(6, 40, 0.3, 500, seed=2)
    owner = np.arange(n) % 2
    r0, r1 = run_leiden(split(n, edges, owner), "ot", seed=0)
    memb = union_membership(r0, r1, range(n))
    g = graph_of(n, edges)
    ref = la.find_partition(g, la.ModularityVertexPartition, seed=0, n_iterations=-1)
    assert abs(g.modularity(memb) - g.modularity(ref.membership)) <= 0.01
    assert communities_connected(g, memb)
