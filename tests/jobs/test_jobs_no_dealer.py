"""Dealer-free jobs: ``network.correlations: ot`` in the job file, or ``pet run --no-dealer``;
two OS processes over loopback TCP and no dealer anywhere, checked against the oracles of the
dealer job test (plaintext xgboost, DuckDB, modularity)."""

import subprocess
import sys

import pytest
import yaml

from pet.errors import InputError
from pet.jobs import parse_job, run_job
from tests.helpers import free_port
from tests.jobs.test_jobs import check_mpc_job_outputs, mpc_job

# dealer-free XGBoost is slow until the HE matrix products land: a small model
XGB_SMALL = {"n_estimators": 2, "max_depth": 2, "learning_rate": 0.3}


def _run_two(tmp_path, extra=()):
    def cmd(p):
        return [sys.executable, "-m", "pet", "run", "job.yaml", "--party", str(p), "--state", f"s{p}.sqlite",
                "--timeout", "300", *extra]

    p1 = subprocess.Popen(cmd(1), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p0 = subprocess.run(cmd(0), cwd=tmp_path, capture_output=True, text=True, timeout=1200)
        out1, err1 = p1.communicate(timeout=120)
    finally:
        if p1.poll() is None:
            p1.kill()
    return p0, (p1.returncode, out1, err1)


@pytest.mark.parametrize("how", ["job file", "flag"])
def test_mpc_job_without_a_dealer_two_processes(tmp_path, how):
    network = {"address": f"127.0.0.1:{free_port()}"}
    if how == "job file":
        network["correlations"] = "ot"
    else:
        network["dealer"] = "127.0.0.1:9"  # nothing listens there: --no-dealer must not use it
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(mpc_job(tmp_path, XGB_SMALL, network)))
    p0, (code1, out1, err1) = _run_two(tmp_path, ["--no-dealer"] if how == "flag" else [])
    assert p0.returncode == 0 and code1 == 0, (p0.stdout[-2000:], p0.stderr[-2000:], err1[-2000:])
    assert "SUCCESS" in p0.stdout and "SUCCESS" in out1
    check_mpc_job_outputs(tmp_path, XGB_SMALL)


def test_no_dealer_at_one_party_only_is_refused_before_anything_runs(tmp_path):
    network = {"address": f"127.0.0.1:{free_port()}", "dealer": "127.0.0.1:9"}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(
        {"job": "j", "network": network, "tasks": [{"name": "a", "type": "sql", "params": {"sql": "SELECT 1"}}]}))

    def cmd(p, extra=()):
        return [sys.executable, "-m", "pet", "run", "job.yaml", "--party", str(p), "--state", f"s{p}.sqlite",
                "--timeout", "60", *extra]

    p1 = subprocess.Popen(cmd(1), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p0 = subprocess.run(cmd(0, ["--no-dealer"]), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    _, err1 = p1.communicate(timeout=120)
    assert p0.returncode != 0 and p1.returncode != 0
    assert "--no-dealer" in p0.stderr and "--no-dealer" in err1


def test_job_file_correlations_setting():
    task = [{"name": "a", "type": "t"}]
    plain = parse_job({"job": "j", "tasks": task})
    ot = parse_job({"job": "j", "network": {"correlations": "ot"}, "tasks": task})
    assert ot.correlations == "ot" and ot.dealer is None and plain.correlations is None
    assert ot.digest() != plain.digest()
    none = parse_job({"job": "j", "network": {"dealer": "none"}, "tasks": task})
    assert none.correlations == "ot" and none.dealer is None and none.digest() == ot.digest()
    # the default spelled out keeps the digest of the file without it
    with_dealer = parse_job({"job": "j", "network": {"dealer": "127.0.0.1:1"}, "tasks": task})
    spelled = parse_job({"job": "j", "network": {"dealer": "127.0.0.1:1", "correlations": "dealer"}, "tasks": task})
    assert spelled.digest() == with_dealer.digest() and spelled.correlations is None
    with pytest.raises(InputError, match="remove network.dealer"):
        parse_job({"job": "j", "network": {"dealer": "127.0.0.1:1", "correlations": "ot"}, "tasks": task})
    with pytest.raises(InputError, match="needs network.dealer"):
        parse_job({"job": "j", "network": {"correlations": "dealer"}, "tasks": task})
    with pytest.raises(InputError, match="must be one of"):
        parse_job({"job": "j", "network": {"correlations": "he"}, "tasks": task})


def test_dealer_free_job_refuses_a_dealer_channel(tmp_path):
    spec = parse_job({"job": "j", "network": {"correlations": "ot"}, "tasks": [{"name": "a", "type": "t"}]})
    with pytest.raises(InputError, match="dealer-free"):
        run_job(spec, 0, object(), state_path=tmp_path / "s.sqlite", task_types={"t": lambda ctx: {}},
                dealer=object())
