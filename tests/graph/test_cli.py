"""``pet leiden`` end to end: two party processes and a dealer over loopback TCP."""

import igraph as ig
import pandas as pd

from tests.helpers import free_port
from tests.helpers import pet_process as pet

from .conftest import DATA


def run_three(args0, args1, timeout=300, dealer_args=()):
    port, dport = free_port(), free_port()
    d = pet("dealer", "--listen", f"127.0.0.1:{dport}", *dealer_args)
    p0 = pet("leiden", "--party", 0, "--listen", f"127.0.0.1:{port}", "--dealer", f"127.0.0.1:{dport}", *args0)
    p1 = pet("leiden", "--party", 1, "--connect", f"127.0.0.1:{port}", "--dealer", f"127.0.0.1:{dport}", *args1)
    out = [(p.returncode, *p.communicate(timeout=timeout)) for p in (p0, p1)]
    out = [(p.returncode, o, e) for p, (_, o, e) in zip((p0, p1), out)]
    d.communicate(timeout=30)
    return out


def test_json_fixture_and_csv_over_mutual_tls(tmp_path):
    # party 0 reads the PETML JSON fixture; party 1 the same data converted to CSV
    from pet.graph import read_petml_json
    from pet.transport.tls import make_test_pki

    make_test_pki(tmp_path / "pki")
    tls = ["--tls-dir", tmp_path / "pki"]

    n1, e1 = read_petml_json(DATA / "karate_club_user_weight2.json", DATA / "karate_club_local_nodes2.json")
    e1.to_csv(tmp_path / "e1.csv", index=False)
    pd.Series(n1, name="node").to_csv(tmp_path / "n1.csv", index=False)
    o0, o1 = tmp_path / "c0.csv", tmp_path / "c1.csv"
    r0, r1 = run_three(["--json-weights", DATA / "karate_club_user_weight1.json",
                        "--json-nodes", DATA / "karate_club_local_nodes1.json", "--output", o0, "--seed", 3, *tls],
                       ["--edges", tmp_path / "e1.csv", "--nodes", tmp_path / "n1.csv", "--output", o1,
                        "--seed", 3, *tls], dealer_args=tls)
    assert r0[0] == 0 and r1[0] == 0, (r0, r1)
    c = pd.concat([pd.read_csv(o0), pd.read_csv(o1)]).set_index("node")["community"]
    assert sorted(c.index) == list(range(34))
    assert ig.Graph.Famous("Zachary").modularity(c.loc[list(range(34))].tolist()) >= 0.41


def test_invalid_input_fails_on_both_sides_and_writes_nothing(tmp_path):
    (tmp_path / "n0.csv").write_text("node\n1\n2\n")
    (tmp_path / "e0.csv").write_text("source,target,weight\n1,2,1\n2,3,0.5\n")
    (tmp_path / "n1.csv").write_text("node\n3\n4\n")
    (tmp_path / "e1.csv").write_text("source,target,weight\n3,4,1\n")
    r0, r1 = run_three(["--edges", tmp_path / "e0.csv", "--nodes", tmp_path / "n0.csv", "--output", tmp_path / "o0"],
                       ["--edges", tmp_path / "e1.csv", "--nodes", tmp_path / "n1.csv", "--output", tmp_path / "o1"])
    assert r0[0] == 1 and r1[0] == 1
    assert "party 0 only" in r0[2] and "party 0 only" in r1[2]
    assert not (tmp_path / "o0").exists() and not (tmp_path / "o1").exists()
