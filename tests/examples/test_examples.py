"""Every example runs, as its users would run it, and prints what plaintext computes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pet.data import reference_path
from tests.helpers import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_together(*commands, timeout=180):
    procs = [subprocess.Popen([sys.executable, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in commands]
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    return [out for out, _ in outs]


def test_psi_pair():
    address = f"127.0.0.1:{free_port()}"
    out0, out1 = run_together([EXAMPLES / "psi_party0.py", "--address", address],
                              [EXAMPLES / "psi_party1.py", "--address", address])
    # the clinic (party 0) reads the file with the diagnoses, the lab the other; a partial overlap
    a = pd.read_csv(reference_path("PETML", "breast_hetero_mini_client.csv"))
    b = pd.read_csv(reference_path("PETML", "breast_hetero_mini_server.csv"))
    assert "y" in a.columns and "y" not in b.columns
    a, b = a[a["id"] < 450], b[b["id"] >= 120]
    common = len(set(a["id"]) & set(b["id"]))
    assert 0 < common < min(len(a), len(b)) and common == 330
    assert f"{common} of {len(a)} rows are common" in out0
    assert f"{common} of {len(b)} rows are common" in out1
    assert out0.split("first ids")[1] == out1.split("first ids")[1]
    assert "psi_party0.py" in (EXAMPLES / "README.md").read_text()
    for name in ("psi_party0.py", "psi_party1.py"):  # the docstring names the file the script reads
        source = (EXAMPLES / name).read_text()
        doc, code = source.split('"""')[1], source.split('"""', 2)[2]
        read = code.split('reference_path("PETML", "')[1].split('"')[0]
        assert read in doc, (name, read)


def test_xgb_docstring_matches_its_data():
    from pet.demo.data import customer_tables

    t0, t1 = customer_tables()
    doc = (EXAMPLES / "xgb_party0.py").read_text().split('"""')[1]
    common = len(set(t0["id"]) & set(t1["id"]))
    assert f"holds {len(t0)} patients with features f00..f14" in " ".join(doc.split())
    assert list(t0.columns) == ["id", *[f"f{i:02d}" for i in range(15)], "label"]
    assert f"holds {len(t1)} patients with features f15..f29" in " ".join(doc.split())
    assert f"keeps the {common} patients both hold" in " ".join(doc.split())


def test_mpc_triple_with_dealer_process():
    address, dealer = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    out_dealer, out0, out1 = run_together(["-m", "pet", "dealer", "--listen", dealer],
                                          [EXAMPLES / "mpc_party0.py", "--address", address, "--dealer", dealer],
                                          [EXAMPLES / "mpc_party1.py", "--address", address, "--dealer", dealer])
    x = np.array([52_000.0, 61_500.0, 47_250.0])
    y = np.array([58_000.0, 60_000.0, 49_900.0])
    assert f"mine larger at {(x > y).tolist()}" in out0
    assert f"party 0 larger at {(x > y).tolist()}" in out1
    assert f"total of all six salaries {x.sum() + y.sum():.2f}" in out0


def run_with_dealer(name):
    address, dealer = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    _, out0, out1 = run_together(["-m", "pet", "dealer", "--listen", dealer],
                                 [EXAMPLES / f"{name}_party0.py", "--address", address, "--dealer", dealer],
                                 [EXAMPLES / f"{name}_party1.py", "--address", address, "--dealer", dealer])
    return out0, out1


def test_sql_triple_matches_duckdb():
    import duckdb

    out0, out1 = run_with_dealer("sql")
    assert out0.replace("party 0", "") == out1.replace("party 1", "")  # both received the same report
    namespace = {}
    for name in ("sql_party0", "sql_party1"):  # the example's own tables and query, run in the clear
        source = (EXAMPLES / f"{name}.py").read_text()
        exec(source.split("parser = argparse")[0] + source[source.index("sales = ") if "sales = " in source  # noqa: S102 - the example's own lines
                                                          else source.index("users = "):].split("\nwith ")[0],
             namespace)
    con = duckdb.connect()
    con.register("sales", namespace["sales"])
    con.register("users", namespace["users"])
    expected = con.sql(namespace["SQL"]).df()
    for row in expected.itertuples():
        assert f"{row.region}" in out0 and f" {row.buyers} " in out0
        assert f"{row.revenue:.1f}".rstrip("0").rstrip(".") in out0


def test_xgb_triple_label_party_gets_scores():
    import xgboost
    from sklearn.metrics import roc_auc_score

    from pet.demo.data import customer_tables

    out0, out1 = run_with_dealer("xgb")
    auc = float(out0.split("training AUC")[1])
    t0, t1 = customer_tables()
    joined = t0.merge(t1.drop(columns=["region", "spend"]), on="id")
    x, y = joined.drop(columns=["id", "label"]).to_numpy(), joined["label"].to_numpy()
    plain = xgboost.XGBClassifier(n_estimators=5, max_depth=3, learning_rate=0.3, max_bin=32, tree_method="hist",
                                  n_jobs=1).fit(x, y)
    assert abs(auc - roc_auc_score(y, plain.predict_proba(x)[:, 1])) < 0.01
    assert "received scores: False" in out1


def test_leiden_triple_partitions_the_karate_club():
    import ast

    import igraph

    out0, out1 = run_with_dealer("leiden")
    labels = {**ast.literal_eval(out0.split("communities:", 1)[1].strip()),
              **ast.literal_eval(out1.split("communities:", 1)[1].strip())}
    assert sorted(labels) == list(range(34))
    assert igraph.Graph.Famous("Zachary").modularity([labels[v] for v in range(34)]) >= 0.41


def test_dp_analysts_share_one_ledger(tmp_path):
    ledger = tmp_path / "budget.sqlite"
    outs = run_together([EXAMPLES / "dp_analyst.py", "--analyst", "0", "--ledger", ledger],
                        [EXAMPLES / "dp_analyst.py", "--analyst", "1", "--ledger", ledger])
    granted = [int(out.strip().splitlines()[-1].split(":")[1].split()[0]) for out in outs]
    assert sum(granted) == 10  # 10 x 0.1 = the whole block, never more


def test_notebook_runs_as_a_script():
    nb = json.loads((EXAMPLES / "notebook.ipynb").read_text())
    code = "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "second claim (0.7): False" in out.stdout


def test_readme_example_runs_and_matches_plaintext():
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    a, b = np.array([52_000.0, 61_500.0]), np.array([58_000.0, 60_000.0])
    expected = np.abs(a - b)
    assert out.stdout.strip().splitlines()[-1] == str([expected, expected])
