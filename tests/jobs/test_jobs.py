"""Job files, the DAG runner and its durable states; reference mission conversion."""

import glob
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pet.data import reference_path
from pet.errors import InputError, ProtocolError
from pet.jobs import StateStore, from_reference, job_status, parse_job, run_job
from pet.transport import run_parties
from tests.helpers import free_port

PLATFORM = reference_path("PrivacyGo-PETPlatform")


def job(*tasks, name="j"):
    return parse_job({"job": name, "tasks": list(tasks)})


def test_dependency_order_and_validation():
    spec = job({"name": "c", "type": "t", "depends": ["b"]}, {"name": "a", "type": "t"},
               {"name": "b", "type": "t", "depends": ["a"]}, {"name": "d", "type": "t"})
    assert [t.name for t in spec.order()] == ["a", "b", "c", "d"]
    with pytest.raises(InputError, match="cycle"):
        job({"name": "a", "type": "t", "depends": ["b"]}, {"name": "b", "type": "t", "depends": ["a"]})
    with pytest.raises(InputError, match="unknown task"):
        job({"name": "a", "type": "t", "depends": ["zz"]})
    with pytest.raises(InputError, match="twice"):
        job({"name": "a", "type": "t"}, {"name": "a", "type": "t"})
    with pytest.raises(InputError, match="unknown keys"):
        job({"name": "a", "type": "t", "bogus": 1})


@pytest.mark.parametrize("statuses,expected", [
    (["SUCCESS", "FAILED", "CANCELED"], "FAILED"),
    (["SUCCESS", "CANCELED", "INIT"], "CANCELED"),
    (["SUCCESS", "SUCCESS"], "SUCCESS"),
    (["SUCCESS", "INIT"], "RUNNING"),
    (["RUNNING", "INIT"], "RUNNING"),
    (["INIT", "INIT"], "INIT"),
])
def test_job_status_order_matches_the_reference_platform(statuses, expected):
    assert job_status(statuses) == expected


def counting_types(calls, fail_at=None):
    """Task types that exchange a number with the peer and record calls."""

    def add(ctx):
        calls.append((ctx.party, ctx.task))
        if fail_at and (ctx.party, ctx.task) == fail_at:
            raise RuntimeError(f"party {ctx.party} fails in {ctx.task}")
        mine = int(ctx.params["x"])
        theirs = ctx.channel.exchange(mine)
        return {"sum": mine + theirs}

    return {"add": add}


def two_party_spec():
    return job({"name": "first", "type": "add", "party0": {"x": 1}, "party1": {"x": 2}},
               {"name": "second", "type": "add", "depends": ["first"], "party0": {"x": 10}, "party1": {"x": 20}},
               {"name": "other", "type": "add", "party0": {"x": 5}, "party1": {"x": 5}})


def run_both(spec, tmp_path, types0, types1, **kwargs):
    return run_parties(
        lambda ch: run_job(spec, 0, ch, state_path=tmp_path / "p0.sqlite", task_types=types0, log=lambda s: None,
                           **kwargs),
        lambda ch: run_job(spec, 1, ch, state_path=tmp_path / "p1.sqlite", task_types=types1, log=lambda s: None,
                           **kwargs),
        timeout=60,
    )


def test_run_success_then_resume_skips_finished_tasks(tmp_path):
    calls = []
    r0, r1 = run_both(two_party_spec(), tmp_path, counting_types(calls), counting_types(calls))
    assert r0.status == r1.status == "SUCCESS"
    assert r0.results["first"] == {"sum": 3} and r1.results["second"] == {"sum": 30}
    assert StateStore(tmp_path / "p0.sqlite").status("j", 0) == "SUCCESS"
    calls.clear()
    r0, r1 = run_both(two_party_spec(), tmp_path, counting_types(calls), counting_types(calls))
    assert calls == [] and r0.skipped == ["first", "second", "other"]
    assert r0.results["other"] == {"sum": 10}  # results of skipped tasks come from the state file
    r0, r1 = run_both(two_party_spec(), tmp_path, counting_types(calls), counting_types(calls), rerun=True)
    assert len(calls) == 6


def test_failure_is_recorded_on_both_sides_and_resume_reruns_from_there(tmp_path):
    calls = []
    r0, r1 = run_both(two_party_spec(), tmp_path, counting_types(calls),
                      counting_types(calls, fail_at=(1, "second")))
    assert r0.status == r1.status == "FAILED"
    assert "fails in second" in r1.error
    assert "second" in r0.error or "Peer" in r0.error or "closed" in r0.error
    s0 = StateStore(tmp_path / "p0.sqlite").states("j", 0)
    s1 = StateStore(tmp_path / "p1.sqlite").states("j", 1)
    assert (s0["first"]["status"], s0["second"]["status"], s0["other"]["status"]) == ("SUCCESS", "FAILED", "INIT")
    assert s1["second"]["status"] == "FAILED" and "fails in second" in s1["second"]["error"]
    calls.clear()
    r0, r1 = run_both(two_party_spec(), tmp_path, counting_types(calls), counting_types(calls))
    assert r0.status == r1.status == "SUCCESS"
    assert sorted(t for p, t in calls if p == 0) == ["other", "second"]


def caught(fn):
    """Run ``fn(channel)``; return its exception instead of raising (to check both sides)."""
    def run(ch):
        try:
            return fn(ch)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return exc
    return run


def run_both_caught(spec0, spec1, tmp_path, calls, rerun0=False, rerun1=False):
    return run_parties(
        caught(lambda ch: run_job(spec0, 0, ch, state_path=tmp_path / "p0.sqlite", task_types=counting_types(calls),
                                  rerun=rerun0, log=lambda s: None)),
        caught(lambda ch: run_job(spec1, 1, ch, state_path=tmp_path / "p1.sqlite", task_types=counting_types(calls),
                                  rerun=rerun1, log=lambda s: None)),
        timeout=60)


def test_a_task_one_side_finished_runs_again_only_with_that_sides_consent(tmp_path):
    """Old behaviour: party 0 re-ran "first" because party 1 listed it as unfinished."""
    calls = []
    run_both(two_party_spec(), tmp_path, counting_types(calls), counting_types(calls))
    StateStore(tmp_path / "p1.sqlite").set("j", 1, "first", "INIT")  # party 1 lost that result
    calls.clear()
    r0, r1 = run_both_caught(two_party_spec(), two_party_spec(), tmp_path, calls)
    assert calls == []
    assert isinstance(r0, ProtocolError) and isinstance(r1, ProtocolError)
    assert "this party has already finished" in str(r0) and "--rerun" in str(r0)
    assert "the peer has already finished" in str(r1) and "peer must pass --rerun" in str(r1)
    assert "'first'" in str(r0) and "'second'" in str(r0)
    # party 0 agrees to re-run "first" (and so its dependent "second"); "other" does not run
    r0, r1 = run_both_caught(two_party_spec(), two_party_spec(), tmp_path, calls, rerun0=["first"])
    assert r0.status == r1.status == "SUCCESS", (r0, r1)
    assert sorted(calls) == [(0, "first"), (0, "second"), (1, "first"), (1, "second")]


def test_rerun_at_one_party_does_not_make_the_other_recompute(tmp_path):
    calls = []
    run_both(two_party_spec(), tmp_path, counting_types(calls), counting_types(calls))
    calls.clear()
    r0, r1 = run_both_caught(two_party_spec(), two_party_spec(), tmp_path, calls, rerun1=True)
    assert calls == []
    assert isinstance(r0, ProtocolError) and "this party has already finished" in str(r0)
    assert isinstance(r1, ProtocolError) and "peer must pass --rerun" in str(r1)
    r0, r1 = run_both_caught(two_party_spec(), two_party_spec(), tmp_path, calls, rerun0=True, rerun1=True)
    assert r0.status == r1.status == "SUCCESS" and len(calls) == 6


def test_a_peer_claiming_everything_unfinished_cannot_drive_a_recompute(tmp_path):
    """A hostile peer with the right job file says it finished nothing: the honest party,
    which finished every task, refuses before running (and revealing) anything again."""
    spec = two_party_spec()
    calls = []
    run_both(spec, tmp_path, counting_types(calls), counting_types(calls))
    calls.clear()
    seen = []

    def hostile(ch):
        ch.exchange(["pet-job", 1, spec.digest()])
        ch.exchange({"unfinished": ["first", "second", "other"], "rerun": ["first", "second", "other"]})
        try:
            seen.append(ch.exchange(["task", "first"]))
        except Exception as exc:  # noqa: BLE001
            seen.append(exc)

    r0, _ = run_parties(
        caught(lambda ch: run_job(spec, 0, ch, state_path=tmp_path / "p0.sqlite", task_types=counting_types(calls),
                                  log=lambda s: None)),
        hostile, timeout=30)
    assert isinstance(r0, ProtocolError) and "already finished" in str(r0)
    assert calls == [] and len(seen) == 1 and isinstance(seen[0], Exception)
    assert StateStore(tmp_path / "p0.sqlite").status("j", 0) == "SUCCESS"


@pytest.mark.parametrize("change", ["params", "party", "network", "depends"])
def test_job_files_differing_anywhere_are_refused_at_both(tmp_path, change):
    """Old behaviour: only names, types and dependencies were compared."""
    base = {"job": "j", "network": {"address": "127.0.0.1:9300"}, "tasks": [
        {"name": "first", "type": "add", "params": {"x": 1}},
        {"name": "second", "type": "add", "party0": {"x": 10}, "party1": {"x": 20}}]}
    other = json.loads(json.dumps(base))
    if change == "params":
        other["tasks"][0]["params"]["x"] = 2
    elif change == "party":
        other["tasks"][1]["party1"]["x"] = 21
    elif change == "network":
        other["network"]["dealer"] = "127.0.0.1:9301"
    else:
        other["tasks"][1]["depends"] = ["first"]
    calls = []
    r0, r1 = run_both_caught(parse_job(base), parse_job(other), tmp_path, calls)
    assert calls == []
    for r in (r0, r1):
        assert isinstance(r, ProtocolError) and "job files differ" in str(r) and "identical job file" in str(r)


def test_job_digest_ignores_formatting_and_key_order():
    a = parse_job(yaml.safe_load("job: j\ntasks:\n  - {name: a, type: t, params: {x: 1, y: [1, 2]}}\n"))
    b = parse_job(yaml.safe_load("# comment\njob: j\ntasks:\n  - type: t\n    params:\n      y: [1, 2]\n"
                                 "      x: 1\n    name: a\n"))
    assert a.digest() == b.digest()
    c = parse_job(yaml.safe_load("job: j\nnetwork: {address: '127.0.0.1:9300'}\ntasks:\n  - {name: a, type: t, "
                                 "params: {x: 1, y: [1, 2]}}\n"))
    assert c.digest() == a.digest()  # the default address, as parsed
    d = parse_job(yaml.safe_load("job: j\ntasks:\n  - {name: a, type: t, params: {x: 1, y: [2, 1]}}\n"))
    assert d.digest() != a.digest()


def test_states_of_an_edited_job_file_do_not_count_as_finished(tmp_path):
    calls = []
    run_both(two_party_spec(), tmp_path, counting_types(calls), counting_types(calls))
    edited = job({"name": "first", "type": "add", "party0": {"x": 100}, "party1": {"x": 2}},
                 {"name": "second", "type": "add", "depends": ["first"], "party0": {"x": 10}, "party1": {"x": 20}},
                 {"name": "other", "type": "add", "party0": {"x": 5}, "party1": {"x": 5}})
    with pytest.raises(InputError, match="different job file"):
        run_job(edited, 0, None, state_path=tmp_path / "p0.sqlite", task_types=counting_types(calls))
    calls.clear()
    r0, r1 = run_both_caught(edited, edited, tmp_path, calls, rerun0=True, rerun1=True)
    assert r0.status == "SUCCESS" and r0.results["first"] == {"sum": 102} and len(calls) == 6


def test_rerun_names_must_be_tasks(tmp_path):
    with pytest.raises(InputError, match="not in the job"):
        run_job(two_party_spec(), 0, None, state_path=tmp_path / "s.sqlite", task_types=counting_types([]),
                rerun=["nope"])


def test_different_job_files_are_refused(tmp_path):
    other = job({"name": "first", "type": "add"})
    with pytest.raises(ProtocolError, match="differ"):
        run_parties(
            lambda ch: run_job(two_party_spec(), 0, ch, state_path=tmp_path / "a.sqlite",
                               task_types=counting_types([]), log=lambda s: None),
            lambda ch: run_job(other, 1, ch, state_path=tmp_path / "b.sqlite",
                               task_types=counting_types([]), log=lambda s: None),
            timeout=30)


def test_unknown_task_type_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="unknown type"):
        run_job(job({"name": "a", "type": "nope"}), 0, None, state_path=tmp_path / "s.sqlite")


def test_reference_missions_convert():
    missions = sorted(glob.glob(str(PLATFORM / "missions" / "*.yml")))
    assert len(missions) == 7
    names = {"psi": "psi", "leiden": "leiden", "sql": "sql", "xgboost_classifier_fit": "xgb_cls_fit",
             "xgboost_classifier_predict": "xgb_cls_predict", "xgboost_regressor_fit": "xgb_reg_fit",
             "xgboost_regressor_predict": "xgb_reg_predict"}
    for mission in missions:
        stem = Path(mission).stem
        spec = from_reference(mission, PLATFORM / "requests" / f"{names[stem]}@1.json")
        assert len(spec.tasks) == 1
        request = json.loads((PLATFORM / "requests" / f"{names[stem]}@1.json").read_text())
        task = spec.tasks[0]
        assert task.party_params[0] == request["mission_params"]["party_a"]
        assert task.party_params[1] == request["mission_params"]["party_b"]


def test_psi_and_dp_tasks_through_the_runner(tmp_path):
    a = pd.DataFrame({"id": [f"u{i}" for i in range(0, 300)], "x": range(300)})
    b = pd.DataFrame({"id": [f"u{i}" for i in range(150, 500)], "y": range(350)})
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_parquet(tmp_path / "b.parquet")
    spec = parse_job({"job": "psi-dp", "tasks": [
        {"name": "align", "type": "psi", "params": {"column": "id"},
         "party0": {"input": str(tmp_path / "a.csv"), "output": str(tmp_path / "a_out.csv")},
         "party1": {"input": str(tmp_path / "b.parquet"), "output": str(tmp_path / "b_out.parquet")}},
        {"name": "count", "type": "dp_count", "depends": ["align"],
         "params": {"party": 0, "input": str(tmp_path / "a_out.csv"), "ledger": str(tmp_path / "budget.sqlite"),
                    "block": "2026-11", "block_epsilon": 1.0, "epsilon": 0.6}},
    ]})
    def runner(p):
        return lambda ch: run_job(spec, p, ch, state_path=tmp_path / f"s{p}.sqlite", log=lambda s: None)

    r0, r1 = run_parties(runner(0), runner(1), timeout=120)
    assert r0.status == "SUCCESS", r0.error
    out0, out1 = pd.read_csv(tmp_path / "a_out.csv"), pd.read_parquet(tmp_path / "b_out.parquet")
    assert len(out0) == len(out1) == 150
    assert list(out0["id"]) == list(out1["id"])
    assert set(out0["id"]) == set(a["id"]) & set(b["id"])
    assert abs(r0.results["count"]["noisy_count"] - 150) < 200  # Laplace(1/0.6): far tail < 1e-100
    # the same query again would spend 1.2 > 1.0: refused, nothing released
    r0, r1 = run_parties(lambda ch: run_job(spec, 0, ch, state_path=tmp_path / "s0.sqlite", rerun=True,
                                            log=lambda s: None),
                         lambda ch: run_job(spec, 1, ch, state_path=tmp_path / "s1.sqlite", rerun=True,
                                            log=lambda s: None),
                         timeout=120)
    assert r0.status == "FAILED" and "BudgetExceeded" in r0.error
    assert "noisy_count" not in r0.results.get("count", {})


def test_pet_run_two_processes(tmp_path):
    a = pd.DataFrame({"id": range(0, 100)})
    b = pd.DataFrame({"id": range(50, 200)})
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    port = free_port()
    (tmp_path / "job.yaml").write_text(textwrap.dedent(f"""
        job: cli-test
        network: {{address: "127.0.0.1:{port}"}}
        tasks:
          - name: align
            type: psi
            params: {{column: id}}
            party0: {{input: a.csv, output: a_out.csv}}
            party1: {{input: b.csv, output: b_out.csv}}
    """))
    def cmd(p):
        return [sys.executable, "-m", "pet", "run", "job.yaml", "--party", str(p), "--state", f"s{p}.sqlite"]

    p1 = subprocess.Popen(cmd(1), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p0 = subprocess.run(cmd(0), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out1, err1 = p1.communicate(timeout=120)
    assert p0.returncode == 0, p0.stderr
    assert p1.returncode == 0, err1
    assert "SUCCESS" in p0.stdout
    assert list(pd.read_csv(tmp_path / "a_out.csv")["id"]) == list(pd.read_csv(tmp_path / "b_out.csv")["id"])
    assert len(pd.read_csv(tmp_path / "a_out.csv")) == 50
    # --rerun at party 1 alone: party 0 finished the task and refuses; both say why
    p1 = subprocess.Popen(cmd(1) + ["--rerun"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    p0 = subprocess.run(cmd(0), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out1, err1 = p1.communicate(timeout=120)
    assert p0.returncode != 0 and "already finished" in p0.stderr and "--rerun" in p0.stderr
    assert p1.returncode != 0 and "peer must pass --rerun" in err1


XGB_PARAMS = {"n_estimators": 5, "max_depth": 3, "learning_rate": 0.3}


def mpc_job(tmp_path, xgb_params=XGB_PARAMS, network=None) -> dict:
    """psi -> xgb fit -> xgb predict -> sql -> leiden (reference JSON layout) on the PETML
    breast and karate fixtures, as a job dictionary (inputs written to ``tmp_path``)."""
    client = pd.read_csv(reference_path("PETML", "breast_hetero_mini_client.csv"))  # id, y, x0..x2
    server = pd.read_csv(reference_path("PETML", "breast_hetero_mini_server.csv"))  # id, x3..x5
    client.sample(frac=1.0, random_state=1).to_csv(tmp_path / "client.csv", index=False)
    server.to_csv(tmp_path / "server.csv", index=False)
    t = str(tmp_path)
    job = {"job": "mpc-job", "tasks": [
        {"name": "align", "type": "psi", "params": {"column": "id"},
         "party0": {"input": f"{t}/client.csv", "output": f"{t}/client_aligned.csv"},
         "party1": {"input": f"{t}/server.csv", "output": f"{t}/server_aligned.csv"}},
        {"name": "fit", "type": "xgb_classifier_fit", "depends": ["align"],
         "params": {**xgb_params, "drop": ["id"]},
         "party0": {"input": f"{t}/client_aligned.csv", "label": "y", "model": f"{t}/m0.json"},
         "party1": {"input": f"{t}/server_aligned.csv", "model": f"{t}/m1.json"}},
        {"name": "predict", "type": "xgb_classifier_predict", "depends": ["fit"], "params": {"drop": ["id"]},
         "party0": {"input": f"{t}/client_aligned.csv", "model": f"{t}/m0.json", "output": f"{t}/pred.csv",
                    "drop": ["id", "y"]},
         "party1": {"input": f"{t}/server_aligned.csv", "model": f"{t}/m1.json", "output": f"{t}/never.csv"}},
        {"name": "report", "type": "sql", "params": {"sql": MPC_JOB_SQL, "output": f"{t}/report.csv"},
         "party0": {"tables": {"client": f"{t}/client.csv"}}, "party1": {"tables": {"server": f"{t}/server.csv"}}},
        {"name": "communities", "type": "leiden",
         "party0": {"inputs": {"user_weights": str(reference_path("PETML", "karate_club_user_weight1.json")),
                               "local_nodes": str(reference_path("PETML", "karate_club_local_nodes1.json"))},
                    "outputs": {"cluster": f"{t}/c0.csv"}},
         "party1": {"inputs": {"user_weights": str(reference_path("PETML", "karate_club_user_weight2.json")),
                               "local_nodes": str(reference_path("PETML", "karate_club_local_nodes2.json"))},
                    "outputs": {"cluster": f"{t}/c1.csv"}}},
    ]}
    if network is not None:
        job["network"] = network
    return job


MPC_JOB_SQL = ("SELECT COUNT(*) AS n, SUM(c.x0 * s.x3) AS s, MAX(s.x4) AS m FROM client AS c JOIN server AS s "
               "ON c.id = s.id WHERE c.y = 1")


def check_mpc_job_outputs(tmp_path, xgb_params=XGB_PARAMS) -> None:
    """The outputs of :func:`mpc_job` against plaintext xgboost (same hyper-parameters),
    DuckDB and modularity on the whole karate graph."""
    import duckdb
    import igraph
    import numpy as np
    import xgboost
    from sklearn.metrics import roc_auc_score

    client = pd.read_csv(reference_path("PETML", "breast_hetero_mini_client.csv"))
    server = pd.read_csv(reference_path("PETML", "breast_hetero_mini_server.csv"))
    aligned0, aligned1 = pd.read_csv(tmp_path / "client_aligned.csv"), pd.read_csv(tmp_path / "server_aligned.csv")
    assert list(aligned0["id"]) == list(aligned1["id"]) and len(aligned0) == 569
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert not (tmp_path / "never.csv").exists()  # the non-label party gets no predictions
    y = aligned0["y"].to_numpy()
    x = np.hstack([aligned0[["x0", "x1", "x2"]].to_numpy(), aligned1[["x3", "x4", "x5"]].to_numpy()])
    plain = xgboost.XGBClassifier(**xgb_params, max_bin=xgb_params.get("max_bin", 32), tree_method="hist")
    plain.fit(x, y)
    auc_plain = roc_auc_score(y, plain.predict_proba(x)[:, 1])
    assert abs(roc_auc_score(y, pred["probability"]) - auc_plain) < 0.01

    con = duckdb.connect()
    con.register("client", client)
    con.register("server", server)
    expected = con.sql(MPC_JOB_SQL).df()
    report = pd.read_csv(tmp_path / "report.csv")
    assert int(report["n"][0]) == int(expected["n"][0])
    assert abs(report["s"][0] - expected["s"][0]) <= 1e-3 * abs(expected["s"][0])
    assert abs(report["m"][0] - expected["m"][0]) <= 1e-3

    labels = pd.concat([pd.read_csv(tmp_path / "c0.csv"), pd.read_csv(tmp_path / "c1.csv")])
    assert sorted(labels["node"]) == list(range(34))
    membership = dict(zip(labels["node"], labels["community"]))
    graph = igraph.Graph.Famous("Zachary")
    assert graph.modularity([membership[v] for v in range(34)]) >= 0.41


def test_mpc_tasks_through_the_runner_with_a_dealer(tmp_path):
    """psi -> xgb fit -> xgb predict -> sql -> leiden (reference JSON layout), checked against
    plaintext xgboost, DuckDB and modularity on the whole graph."""
    from pet.mpc import dealer as dealer_service

    spec = parse_job(mpc_job(tmp_path))

    def party(p):
        return lambda chans: run_job(spec, p, chans[1 - p], state_path=tmp_path / f"s{p}.sqlite",
                                     dealer=chans[2], log=lambda s: None)

    r0, r1 = run_parties(party(0), party(1), lambda chans: dealer_service.serve(chans[0], chans[1]),
                         timeout=600)[:2]
    assert r0.status == r1.status == "SUCCESS", (r0.error, r1.error)
    check_mpc_job_outputs(tmp_path)
