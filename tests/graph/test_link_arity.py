"""Leiden on a declared slow link: the argmax arity follows the agreed link, the partition
is bit-for-bit the one of the binary tournament (and matches leidenalg's quality), the
counted MPC rounds drop, and each batch's correlated randomness is requested at once."""

import leidenalg as la
import numpy as np
import pytest

from pet.errors import PetTypeError
from pet.graph import leiden
from pet.mpc import correlated, run_local
from pet.transport import Link

from ._gen import planted_partition, split
from .conftest import graph_of, run_both, union_membership

WAN = Link(rtt=0.02, bandwidth=100e6)


def _run(inputs, links=(None, None), run_link=None, **kw):
    def prog(s):
        return leiden(s, *inputs[s.party], link=links[s.party], **kw)
    return run_local(prog, timeout=900, link=run_link)


def _sbm():
    n, edges = planted_partition(8, 40, 0.3, 150, seed=2)
    owner = (np.arange(n) // 40) % 2
    owner[::7] = 1 - owner[::7]  # many cross edges: public nodes in every batch
    return n, edges, split(n, edges, owner)


def test_declared_link_same_partition_fewer_rounds():
    n, edges, inputs = _sbm()
    b0, b1 = _run(inputs, seed=3)
    w0, w1 = _run(inputs, links=(WAN, WAN), seed=3)
    assert w0.tolist() == b0.tolist() and w1.tolist() == b1.tolist()  # bit for bit
    bi, wi = b0.attrs["pet_graph"], w0.attrs["pet_graph"]
    assert bi["link"] is None and wi["link"] == str(WAN)
    assert bi["arity"][3] == bi["arity"][4] == 0
    assert wi["arity"][3] + wi["arity"][4] > 0
    assert bi["rounds"] == wi["rounds"]  # same batches
    assert wi["step_rounds"]["argmax"] <= 0.8 * bi["step_rounds"]["argmax"]
    assert wi["mpc_rounds"] < bi["mpc_rounds"]
    for k in ("queue", "structure", "gains", "open"):
        assert wi["step_rounds"][k] == bi["step_rounds"][k]
    g = graph_of(n, edges)
    q = g.modularity(union_membership(w0, w1, range(n)))
    ref = la.find_partition(g, la.ModularityVertexPartition, seed=0, n_iterations=-1)
    assert abs(q - g.modularity(ref.membership)) <= 0.01


def test_one_sided_declaration_is_agreed_by_both(karate):
    """Party 0 declares a slow link, party 1 nothing: both plan for the slower one (else
    their tournaments would differ and the run would break)."""
    a0, a1 = _run(karate, links=(WAN, None), seed=1)
    b0, b1 = _run(karate, seed=1)
    assert a0.attrs["pet_graph"]["link"] == a1.attrs["pet_graph"]["link"] == str(WAN)
    assert a0.attrs["pet_graph"]["arity"] == a1.attrs["pet_graph"]["arity"]
    assert a0.tolist() == b0.tolist() and a1.tolist() == b1.tolist()
    # the larger round trip and the smaller bandwidth of the two declarations
    c0, _ = _run(karate, links=(Link(rtt=0.01, bandwidth=1e9), Link(rtt=0.03, bandwidth=5e8)), seed=1)
    assert c0.attrs["pet_graph"]["link"] == str(Link(rtt=0.03, bandwidth=5e8))


def test_shaped_session_channel_declares_its_link(karate):
    a0, _ = _run(karate, run_link=Link(rtt=0.001), seed=1)
    assert a0.attrs["pet_graph"]["link"] == str(Link(rtt=0.001))
    assert a0.attrs["pet_graph"]["arity"][2] < sum(a0.attrs["pet_graph"]["arity"].values())


def test_bad_link_fails_at_both(karate):
    out = run_both(lambda s: leiden(s, *karate[0], link="20ms"), lambda s: leiden(s, *karate[1]))
    assert isinstance(out[0], PetTypeError) and "link" in str(out[0])
    assert isinstance(out[1], Exception)


@pytest.mark.parametrize("links", [(None, None), (WAN, WAN)])
def test_batch_randomness_requested_at_once(monkeypatch, karate, links):
    """After setup, every request of a round's product and argmax is served from what
    the batch prepared (no request made on the spot, nothing left over)."""
    on_the_spot, left = [], []
    get = correlated.DealerClient.get

    def counting_get(self, specs):
        specs = correlated.typed_specs(specs)
        if not (self._ready and self._ready[0][0] == specs):
            on_the_spot.append(self.party)
        return get(self, specs)

    monkeypatch.setattr(correlated.DealerClient, "get", counting_get)

    def prog(s):
        res = leiden(s, *karate[s.party], link=links[s.party], seed=2)
        left.append(len(s.source._ready))
        return res

    r0, r1 = run_local(prog, timeout=900)
    setup = 2 * 2  # the cross-weight sign check: one comparison per party
    assert len(on_the_spot) <= setup, len(on_the_spot)
    assert left == [0, 0]
    assert r0.attrs["pet_graph"]["rounds"] > 10


def test_batches_known_empty_to_both_cost_no_round(monkeypatch):
    """Refinement batches with no node of either party (a public batch that is empty, or
    a group without private nodes on either side) are skipped without an exchange; the
    partition is unchanged. Every node is public here (alternating owners in dense
    blocks), so before, each level's private phase exchanged one empty batch per group."""
    import importlib

    L = importlib.import_module("pet.graph.leiden")  # the module (pet.graph.leiden is also the function)

    n, edges = planted_partition(4, 20, 0.5, 40, seed=5)
    owner = np.arange(n) % 2
    inputs = split(n, edges, owner)
    calls = {0: [], 1: []}
    real = L.batched_round

    def recording(ctx, g, lab, store, own_nodes, pub_nodes, **kw):
        calls[ctx.party].append((len(own_nodes), len(pub_nodes), g.n_priv))
        return real(ctx, g, lab, store, own_nodes, pub_nodes, **kw)

    monkeypatch.setattr(L, "batched_round", recording)
    r0, r1 = _run(inputs, seed=1)
    assert len(calls[0]) == len(calls[1]) > 0
    assert all(c[2] == 0 for c in calls[0] + calls[1])  # no private node at any level
    empty = [a for a, b in zip(calls[0], calls[1]) if a[0] == b[0] == a[1] == 0]
    assert empty == []
    info = r0.attrs["pet_graph"]
    assert info["step_rounds"]["structure"] == info["rounds"]
    g = graph_of(n, edges)
    ref = la.find_partition(g, la.ModularityVertexPartition, seed=0, n_iterations=-1)
    assert abs(g.modularity(union_membership(r0, r1, range(n))) - g.modularity(ref.membership)) <= 0.01
