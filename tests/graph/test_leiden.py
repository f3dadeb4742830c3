"""pet.graph.leiden against plaintext oracles (igraph modularity, leidenalg)."""

import re

import igraph as ig
import leidenalg as la
import numpy as np
import pandas as pd
import pytest

from pet.errors import InputError, PetTypeError
from pet.graph import GraphError, leiden
from pet.mpc import run_local

from ._gen import planted_partition, split
from .conftest import communities_connected, graph_of, run_both, union_membership

ZACHARY = ig.Graph.Famous("Zachary")


def run_leiden(inputs, **kw):
    def prog(s):
        return leiden(s, *inputs[s.party], **kw)
    return run_local(prog, timeout=900)


@pytest.mark.parametrize("seed", range(10))
def test_karate_every_seed(karate, seed):
    r0, r1 = run_leiden(karate, seed=seed)
    assert sorted(r0.index) == sorted(karate[0][0]) and sorted(r1.index) == sorted(karate[1][0])
    memb = union_membership(r0, r1, range(34))
    q = ZACHARY.modularity(memb)
    assert q >= 0.41, q
    assert q <= 0.4198 + 1e-4  # the known optimum
    assert communities_connected(ZACHARY, memb)
    assert r0.dtype == np.int64 and set(memb) == set(range(len(set(memb))))


def test_karate_string_ids_on_one_side(karate):
    (n0, e0), other = karate
    e0s = e0.assign(source=e0["source"].map(str), target=e0["target"].map(str))
    r0, r1 = run_leiden([([str(x) for x in n0], e0s), other], seed=1)
    s0, s1 = run_leiden(karate, seed=1)
    assert list(r0.index) == [str(x) for x in n0]
    assert r0.tolist() == s0.tolist() and r1.equals(s1)


def _sbm_inputs(seed=0):
    n, edges = planted_partition(20, 100, 0.18, 2500, seed=seed)
    rng = np.random.default_rng(seed + 100)  # not-secret: test data
    owner = rng.integers(0, 2, n)
    return n, edges, owner


def test_planted_partition_matches_leidenalg():
    n, edges, owner = _sbm_inputs()
    assert 19000 <= len(edges) <= 21000
    r0, r1 = run_leiden(split(n, edges, owner), seed=0)
    memb = union_membership(r0, r1, range(n))
    g = graph_of(n, edges)
    ours = g.modularity(memb)
    ref = la.find_partition(g, la.ModularityVertexPartition, seed=0, n_iterations=-1)
    assert abs(ours - g.modularity(ref.membership)) <= 0.01, (ours, ref.quality())
    assert communities_connected(g, memb)
    assert sorted(r0.index) == np.flatnonzero(owner == 0).tolist()


def test_weighted_random_shares_and_resolution():
    n, edges = planted_partition(12, 40, 0.25, 400, seed=4)
    rng = np.random.default_rng(7)  # not-secret: test data
    owner = rng.integers(0, 2, n)
    w = rng.uniform(0.5, 3.0, len(edges)).round(3)
    shares = w * rng.uniform(-1.0, 2.0, len(edges))  # shares may be negative or exceed w
    g = graph_of(n, edges, w)
    for gamma in (0.5, 2.0):
        r0, r1 = run_leiden(split(n, edges, owner, weights=w, shares=shares), resolution=gamma, seed=2)
        memb = union_membership(r0, r1, range(n))
        ours = g.modularity(memb, weights="weight", resolution=gamma)
        ref = la.find_partition(g, la.RBConfigurationVertexPartition, weights="weight",
                                resolution_parameter=gamma, seed=0, n_iterations=-1)
        theirs = g.modularity(ref.membership, weights="weight", resolution=gamma)
        assert ours >= theirs - 0.01, (gamma, ours, theirs)
        assert communities_connected(g, memb)


def test_deterministic_and_seed_dependent():
    n, edges = planted_partition(10, 30, 0.12, 300, seed=9)
    owner = np.random.default_rng(3).integers(0, 2, n)  # not-secret: test data
    inputs = split(n, edges, owner)
    a = run_leiden(inputs, seed=5)
    b = run_leiden(inputs, seed=5)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    parts = set()
    for seed in range(4):
        r0, r1 = run_leiden(inputs, seed=seed)
        memb = union_membership(r0, r1, range(n))
        # compare partitions, not label names
        canon = tuple(pd.factorize(memb)[0])
        parts.add(canon)
    assert len(parts) >= 2


def test_no_cross_edges_and_isolated_nodes():
    # party 0: a triangle and an isolated node; party 1: a path; no cross edges
    e0 = pd.DataFrame({"source": [1, 2, 1], "target": [2, 3, 3], "weight": [1.0, 1.0, 1.0]})
    e1 = pd.DataFrame({"source": ["a", "b"], "target": ["b", "c"], "weight": [1.0, 1.0]})
    r0, r1 = run_leiden([([1, 2, 3, 4], e0), (["a", "b", "c"], e1)])
    assert r0[1] == r0[2] == r0[3] and r0[4] != r0[1]
    assert len(set(r0) & set(r1)) == 0 and r1["a"] == r1["b"] == r1["c"]


def _both_fail(in0, in1, match, **kw):
    out = run_both(lambda s: leiden(s, *in0, **kw), lambda s: leiden(s, *in1, **kw))
    for p, r in enumerate(out):
        assert isinstance(r, GraphError), (p, r)
        assert re.search(match, str(r)), (p, str(r))
    return out


def E(rows):
    return pd.DataFrame(rows, columns=["source", "target", "weight"])


def test_error_cross_edge_listed_by_one_party():
    _both_fail(([1, 2], E([(1, 2, 1.0), (2, 3, 0.5)])), ([3, 4], E([(3, 4, 1.0)])), "party 0 only")


def test_error_node_claimed_by_both():
    _both_fail(([1, 2], E([(1, 2, 1.0)])), ([2, 3], E([(2, 3, 1.0)])), "claimed by both")


def test_error_edge_with_two_foreign_endpoints():
    out = _both_fail(([1, 2], E([(1, 2, 1.0), (5, 6, 1.0)])), ([5, 6], E([(5, 6, 1.0)])),
                     "neither endpoint|rejected its input")
    assert "rejected its input" in str(out[1]) and "(5, 6)" not in str(out[1])


def test_error_negative_total_cross_weight():
    _both_fail(([1, 2], E([(1, 2, 1.0), (2, 3, 0.5)])), ([3, 4], E([(3, 4, 1.0), (3, 2, -0.75)])),
               r"cross edge \(2, 3\) has a negative total weight")


def test_error_non_finite_weight_and_parameter_mismatch():
    _both_fail(([1, 2], E([(1, 2, float("nan"))])), ([3], E([])), "not finite|rejected its input")
    out = run_both(lambda s: leiden(s, [1], E([]), seed=1), lambda s: leiden(s, [2], E([]), seed=2))
    assert all(isinstance(r, GraphError) and "different parameters" in str(r) for r in out)


def test_bad_argument_at_one_party_fails_at_both():
    out = run_both(lambda s: leiden(s, [1], E([]), resolution=-1.0), lambda s: leiden(s, [2], E([])))
    assert isinstance(out[0], InputError) and "resolution" in str(out[0])
    assert isinstance(out[1], GraphError) and "resolution must be" in str(out[1])
    out = run_both(lambda s: leiden(s, [1], E([]), n_groups=0), lambda s: leiden(s, [2], E([]), n_groups=0))
    assert all(isinstance(r, InputError) and "n_groups" in str(r) for r in out)
    with pytest.raises(PetTypeError, match="session"):
        leiden(object(), [1], E([]))


def test_no_merge_safety_net_splits_into_connected_parts(karate, monkeypatch):
    # if the refinement never merged, the stopping rule must not return multi-node
    # communities it cannot vouch for: they are split into their (connected) nodes
    import sys

    mod = sys.modules["pet.graph.leiden"]  # the module (pet.graph.leiden is the function)

    monkeypatch.setattr(mod, "_refine", lambda *a, **k: (0, 0))
    r0, r1 = run_leiden(karate, seed=0, n_iterations=1)
    memb = union_membership(r0, r1, range(34))
    assert r0.attrs["pet_graph"]["splits"] == 1
    assert len(set(memb)) == 34
