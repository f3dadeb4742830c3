"""The demo's steps give what plaintext pandas computes on the union of the demo tables."""

import threading

import pandas as pd

from pet.demo.data import customer_tables
from pet.demo.party import run_party
from pet.mpc import dealer
from pet.transport import tcp
from tests.helpers import free_port


def check_demo_reports(r0, r1, steps):
    """Both parties' demo reports for ``steps`` against plaintext pandas, DuckDB, xgboost and
    modularity on the whole karate graph (the oracles of the dealer test, shared with the
    dealer-free command-line test)."""
    assert r0["ok"] and r1["ok"], (r0, r1)
    s0 = {s["step"]: s for s in r0["steps"]}
    s1 = {s["step"]: s for s in r1["steps"]}
    assert list(s0) == list(s1) == list(steps)
    t0, t1 = customer_tables()
    joined = t0.merge(t1, on="id")
    if "psi" in steps:
        assert s0["psi"]["extra"]["rows"] == s1["psi"]["extra"]["rows"] == len(joined)
    if "mpc" in steps:
        expected = joined.loc[joined["label"] == 1, "spend"].mean()
        assert abs(s0["mpc"]["extra"]["average"] - expected) <= 1e-3 * abs(expected)
        assert s1["mpc"]["extra"]["average"] == s0["mpc"]["extra"]["average"]
    if "dp" in steps:
        dp0 = s0["dp"]
        assert dp0["extra"]["true"] == int(joined["label"].sum())
        assert dp0["extra"]["refused"] == 1 and len(dp0["extra"]["answers"]) == 2
        assert s1["dp"]["result"] == "(party 0's step)"
    if "xgb" in steps:  # vertical XGBoost: close to plaintext xgboost on the same rows and split
        assert s0["xgb"]["extra"]["auc"] >= s0["xgb"]["extra"]["plaintext_auc"] - 0.03
        assert s1["xgb"]["result"].startswith("(scores go to")
    if "sql" in steps:  # the SQL report equals DuckDB on the plaintext union
        import duckdb

        from pet.demo.steps import SQL_REPORT

        con = duckdb.connect()
        con.register("clinic", t0[["id", "label", "f00"]])
        con.register("lab", t1[["id", "region", "spend"]])
        expected = con.sql(SQL_REPORT).df()
        got = pd.DataFrame(s0["sql"]["extra"]["report"])
        assert list(got["region"]) == list(expected["region"])
        for col in ("customers", "positives"):
            assert list(got[col].astype(int)) == list(expected[col].astype(int))
        for col in ("avg_spend", "max_spend"):
            assert (abs(got[col] - expected[col]) <= 1e-3 * abs(expected[col]) + 1e-3).all()
        assert s1["sql"]["extra"]["report"] == s0["sql"]["extra"]["report"]
    if "leiden" in steps:  # the two outputs partition the karate club with near-optimal modularity
        from pet.cli.demo import _karate_modularity

        labels0, labels1 = s0["leiden"]["extra"]["labels"], s1["leiden"]["extra"]["labels"]
        assert len(labels0) == len(labels1) == 17 and not set(labels0) & set(labels1)
        assert _karate_modularity(labels0, labels1) >= 0.41


def test_demo_steps_against_pandas(tmp_path):
    peer = f"127.0.0.1:{free_port()}"
    listener = tcp.Listener("127.0.0.1", 0, timeout=120)
    dealer_thread = threading.Thread(
        target=lambda: dealer.serve(listener.accept(accept_timeout=60), listener.accept(accept_timeout=60)),
        daemon=True)
    dealer_thread.start()
    out = {}
    steps = ["psi", "mpc", "xgb", "sql", "leiden", "dp"]

    def party(p):
        out[p] = run_party(p, peer, dealer=f"127.0.0.1:{listener.port}", tls_dir=None, report=None,
                           steps=steps, workdir=str(tmp_path), log=lambda s: None)

    threads = [threading.Thread(target=party, args=(p,)) for p in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    dealer_thread.join(30)
    listener.close()
    check_demo_reports(out[0], out[1], steps)
