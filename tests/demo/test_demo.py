"""The demo's steps give what plaintext pandas computes on the union of the demo tables."""

import threading

import pandas as pd

from pet.demo.data import customer_tables
from pet.demo.party import run_party
from pet.mpc import dealer
from pet.transport import tcp
from tests.helpers import free_port


def test_demo_steps_against_pandas(tmp_path):
    peer = f"127.0.0.1:{free_port()}"
    listener = tcp.Listener("127.0.0.1", 0, timeout=120)
    dealer_thread = threading.Thread(
        target=lambda: dealer.serve(listener.accept(accept_timeout=60), listener.accept(accept_timeout=60)),
        daemon=True)
    dealer_thread.start()
    out = {}

    def party(p):
        out[p] = run_party(p, peer, dealer=f"127.0.0.1:{listener.port}", tls_dir=None, report=None,
                           steps=["psi", "mpc", "xgb", "sql", "leiden", "dp"], workdir=str(tmp_path),
                           log=lambda s: None)

    threads = [threading.Thread(target=party, args=(p,)) for p in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    dealer_thread.join(30)
    listener.close()
    assert out[0]["ok"] and out[1]["ok"], (out[0], out[1])

    t0, t1 = customer_tables()
    joined = t0.merge(t1, on="id")
    psi0, mpc0, xgb0, sql0, leiden0, dp0 = out[0]["steps"]
    assert psi0["extra"]["rows"] == out[1]["steps"][0]["extra"]["rows"] == len(joined)
    expected = joined.loc[joined["label"] == 1, "spend"].mean()
    assert abs(mpc0["extra"]["average"] - expected) <= 1e-3 * abs(expected)
    assert out[1]["steps"][1]["extra"]["average"] == mpc0["extra"]["average"]
    assert dp0["extra"]["true"] == int(joined["label"].sum())
    assert dp0["extra"]["refused"] == 1 and len(dp0["extra"]["answers"]) == 2
    assert out[1]["steps"][5]["result"] == "(party 0's step)"

    # vertical XGBoost: close to plaintext xgboost on the same rows and split
    assert xgb0["extra"]["auc"] >= xgb0["extra"]["plaintext_auc"] - 0.03
    assert out[1]["steps"][2]["result"].startswith("(scores go to")

    # the SQL report equals DuckDB on the plaintext union
    import duckdb

    from pet.demo.steps import SQL_REPORT

    con = duckdb.connect()
    con.register("clinic", t0[["id", "label", "f00"]])
    con.register("lab", t1[["id", "region", "spend"]])
    expected = con.sql(SQL_REPORT).df()
    got = pd.DataFrame(sql0["extra"]["report"])
    assert list(got["region"]) == list(expected["region"])
    for col in ("customers", "positives"):
        assert list(got[col].astype(int)) == list(expected[col].astype(int))
    for col in ("avg_spend", "max_spend"):
        assert (abs(got[col] - expected[col]) <= 1e-3 * abs(expected[col]) + 1e-3).all()
    assert out[1]["steps"][3]["extra"]["report"] == sql0["extra"]["report"]

    # Leiden: the two outputs partition the karate club with near-optimal modularity
    from pet.cli.demo import _karate_modularity

    labels0, labels1 = leiden0["extra"]["labels"], out[1]["steps"][4]["extra"]["labels"]
    assert len(labels0) == len(labels1) == 17 and not set(labels0) & set(labels1)
    assert _karate_modularity(labels0, labels1) >= 0.41
