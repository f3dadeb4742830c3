"""The plaintext sequential Leiden against leidenalg and igraph."""

import igraph as ig
import leidenalg as la
import numpy as np
import pytest

from pet.errors import InputError
from pet.graph import leiden_plaintext

from ._gen import planted_partition
from .conftest import communities_connected, graph_of

ZACHARY = ig.Graph.Famous("Zachary")


def test_karate_all_seeds_reach_the_optimum():
    edges = np.array(ZACHARY.get_edgelist())
    for seed in range(10):
        memb = leiden_plaintext(34, edges, seed=seed)
        assert ZACHARY.modularity(memb) == pytest.approx(0.4198, abs=1e-4)
        assert communities_connected(ZACHARY, memb)


@pytest.mark.parametrize("args", [(20, 100, 0.18, 2500), (40, 50, 0.16, 8000)])
def test_planted_partition_vs_leidenalg(args):
    n, edges = planted_partition(*args, seed=1)
    g = graph_of(n, edges)
    memb = leiden_plaintext(n, edges, seed=0)
    ref = la.find_partition(g, la.ModularityVertexPartition, seed=0, n_iterations=-1)
    assert abs(g.modularity(memb) - g.modularity(ref.membership)) <= 0.01
    assert communities_connected(g, memb)
    assert np.array_equal(memb, leiden_plaintext(n, edges, seed=0))  # deterministic


def test_weighted_with_resolution_vs_leidenalg():
    n, edges = planted_partition(12, 40, 0.25, 400, seed=4)
    w = np.random.default_rng(7).uniform(0.5, 3.0, len(edges))  # not-secret: test data
    g = graph_of(n, edges, w)
    for gamma in (0.5, 2.0):
        memb = leiden_plaintext(n, edges, w, resolution=gamma, seed=1)
        ref = la.find_partition(g, la.RBConfigurationVertexPartition, weights="weight",
                                resolution_parameter=gamma, seed=0, n_iterations=-1)
        ours = g.modularity(memb, weights="weight", resolution=gamma)
        theirs = g.modularity(ref.membership, weights="weight", resolution=gamma)
        assert ours >= theirs - 0.01
        assert communities_connected(g, memb)


def test_errors():
    with pytest.raises(InputError):
        leiden_plaintext(3, [(0, 5)])
    with pytest.raises(InputError):
        leiden_plaintext(3, [(0, 1)], [-1.0])
    with pytest.raises(InputError):
        leiden_plaintext(3, [(0, 1)], resolution=0)
