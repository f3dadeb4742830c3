"""Local input validation and the PETML JSON reader."""

import json

import igraph as ig
import numpy as np
import pandas as pd
import pytest

from pet.errors import InputError, PetTypeError
from pet.graph import GraphError, read_petml_json
from pet.graph.inputs import canonical_key, prepare_input
from pet.graph.io import read_csv_input, write_communities

from .conftest import DATA


def E(rows):
    return pd.DataFrame(rows, columns=["source", "target", "weight"])


def test_karate_fixture_sums_to_zachary(karate):
    (n0, e0), (n1, e1) = karate
    assert len(n0) == len(n1) == 17 and not set(n0) & set(n1)
    total = {}
    for e in (e0, e1):
        for s, t, w in e.itertuples(index=False):
            key = (min(int(s), int(t)), max(int(s), int(t)))
            total[key] = total.get(key, 0.0) + w
    zach = {tuple(sorted(e)) for e in ig.Graph.Famous("Zachary").get_edgelist()}
    assert set(total) == zach and len(zach) == 78
    assert all(w == 1.0 for w in total.values())
    # 17 internal edges of A, 23 of B, 38 cross edges split 0.5 + 0.5
    a = prepare_input(n0, e0)
    b = prepare_input(n1, e1)
    assert (a.int_w.size, b.int_w.size, a.cross_w.size, b.cross_w.size) == (17, 23, 38, 38)
    assert set(a.cross_w) == {0.5}


def test_reader_rejects_asymmetric_and_bad_json(tmp_path):
    with pytest.raises(GraphError, match="asymmetric"):
        read_petml_json({"1": {"2": 1.0}, "2": {"1": 2.0}}, [1, 2])
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(GraphError, match="not valid JSON"):
        read_petml_json(bad, [1])
    with pytest.raises(GraphError, match="finite"):
        read_petml_json({"1": {"2": float("nan")}}, [1])


def test_int_and_string_ids_are_the_same_node():
    assert canonical_key(7) == canonical_key("7") == canonical_key(np.int64(7)) == "7"
    with pytest.raises(PetTypeError):
        canonical_key(True)
    with pytest.raises(PetTypeError):
        canonical_key(1.5)
    inp = prepare_input([1, "b"], E([("1", "b", 1.0), ("b", 9, 0.25)]))
    assert inp.int_w.tolist() == [1.0] and inp.cross_foreign == ["9"]


@pytest.mark.parametrize("nodes, rows, match", [
    ([1, 2, 1], [], "listed twice"),
    ([1, 2], [(1, 2, -1.0)], "negative"),
    ([1, 2], [(1, 2, float("inf"))], "not finite"),
    ([1, 2], [(1, 2, float("nan"))], "not finite"),
    ([1, 2], [(3, 4, 1.0)], "neither endpoint"),
    ([1, 2], [(1, 2, 1.0), (2, 1, 1.0)], "listed twice"),
])
def test_local_errors(nodes, rows, match):
    with pytest.raises(GraphError, match=match):
        prepare_input(nodes, E(rows))


def test_type_errors():
    with pytest.raises(PetTypeError):
        prepare_input([1], [(1, 2, 1.0)])
    with pytest.raises(GraphError, match="missing column"):
        prepare_input([1], pd.DataFrame({"source": [1], "target": [2]}))
    with pytest.raises(PetTypeError):
        prepare_input("abc", E([]))
    assert issubclass(GraphError, InputError) and issubclass(GraphError, ValueError)


def test_csv_reader_and_atomic_writer(tmp_path):
    (tmp_path / "n.csv").write_text("node\n1\nx\n")
    (tmp_path / "e.csv").write_text("source,target,weight\n1,x,1.0\nx,7,0.5\n")
    nodes, edges = read_csv_input(tmp_path / "e.csv", tmp_path / "n.csv")
    assert nodes == [1, "x"] and edges["target"].tolist() == ["x", 7]
    out = tmp_path / "o.csv"
    write_communities(pd.Series([0, 1], index=pd.Index([1, "x"], name="node")), out)
    assert pd.read_csv(out).columns.tolist() == ["node", "community"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(GraphError, match="cannot read"):
        read_csv_input(tmp_path / "missing.csv", tmp_path / "n.csv")


def test_fixture_files_are_json_lists():
    assert json.loads((DATA / "karate_club_local_nodes1.json").read_text())[0] == 33


def test_shares_of_2m_add_up_to_zacharys_156(karate):
    """Case 10: the two parties' shares of 2m add up to 2 * 78 (m itself is never opened)."""
    from pet.graph.setup import joint_setup
    from pet.mpc import run_local

    def prog(s):
        inp = prepare_input(*karate[s.party])
        lv = joint_setup(s, inp, None, resolution=1.0, params=[1.0])
        return lv.m2, lv.frac_bits, lv.graph.n_pub, lv.graph.n_priv

    (m0, f0, p0, q0), (m1, f1, p1, q1) = run_local(prog, timeout=120)
    assert f0 == f1 and (m0 + m1) / 2 ** f0 == 156.0
    assert p0 == p1 and p0 + q0 + q1 == 34 and m0 != m1
