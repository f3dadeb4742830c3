"""`pet run` with the job-level ``scale_out`` section: the ``psi`` and ``sql`` tasks run their
PSI bucketed on each party's LocalCluster (two `pet run` processes and a dealer, mutual TLS
from the job's ``network.tls_dir``). Oracles: the pandas inner join and DuckDB."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")  # in pet[dev]

from pet.errors import InputError  # noqa: E402
from pet.jobs import parse_job  # noqa: E402
from tests.helpers import free_port, pet_process  # noqa: E402
from tests.sql.helpers import assert_same, oracle  # noqa: E402

pytestmark = pytest.mark.timeout(400)

SQL = "SELECT COUNT(*) AS n, SUM(a.x * b.w) AS s FROM a JOIN b ON a.id = b.id WHERE a.x > 10"


def test_scale_out_section_is_per_party_and_leaves_old_digests_alone():
    tasks = [{"name": "t", "type": "psi", "params": {"column": "id"}}]
    plain = parse_job({"job": "j", "tasks": tasks})
    assert "scale_out" not in plain.canonical()  # job files without it keep their digest (resume states)
    spec = parse_job({"job": "j", "tasks": tasks,
                      "scale_out": {"buckets": 8, "cluster": "local:2", "party1": {"cluster": "tcp://h:8786"}}})
    assert spec.scale_out_for(0) == {"buckets": 8, "cluster": "local:2"}
    assert spec.scale_out_for(1) == {"buckets": 8, "cluster": "tcp://h:8786"}
    assert spec.digest() != plain.digest()
    with pytest.raises(InputError, match="unknown scale_out keys"):
        parse_job({"job": "j", "tasks": tasks, "scale_out": {"bucket": 8}})


def test_task_parameters_override_the_job_setting():
    from pet.jobs.runner import TaskContext
    from pet.jobs.tasks import _bucketed

    ctx = TaskContext(job="j", task="t", party=0, params={"cluster": "local:1", "listen_ports": "9100-9199"},
                      channel=None, scale_out={"buckets": 4, "cluster": "local:2"})
    assert _bucketed(ctx) == {"buckets": 4, "cluster": "local:1", "listen_ports": (9100, 9199)}
    ctx.params = {"buckets": None}
    assert _bucketed(ctx) is None  # off for this task
    ctx.params = {"buckets": "many"}
    with pytest.raises(InputError, match="buckets must be an integer"):
        _bucketed(ctx)


def test_pet_run_psi_and_sql_tasks_bucketed_with_tls(tmp_path):
    # the psi task runs KKRT per bucket (the default), the sql task ECDH per bucket (its parameter)
    from pet.transport import make_test_pki

    rng = np.random.default_rng(7)
    a = pd.DataFrame({"id": rng.permutation(3000), "x": rng.integers(0, 100, 3000)})
    b = pd.DataFrame({"id": rng.permutation(np.arange(1500, 4000)), "w": rng.integers(0, 50, 2500)})
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_parquet(tmp_path / "b.parquet", index=False)
    make_test_pki(tmp_path / "pki")
    port, dport = free_port(), free_port()
    (tmp_path / "job.yaml").write_text(textwrap.dedent(f"""
        job: bucketed
        network: {{address: "127.0.0.1:{port}", dealer: "127.0.0.1:{dport}", tls_dir: pki}}
        scale_out: {{buckets: 5, cluster: "local:1", party1: {{cluster: "local:2"}}}}
        tasks:
          - name: align
            type: psi
            params: {{column: id}}
            party0: {{input: a.csv, output: a_out.parquet}}
            party1: {{input: b.parquet, output: b_out}}
          - name: report
            type: sql
            params: {{sql: "{SQL}", protocol: ecdh}}
            party0: {{tables: {{a: a.csv}}, output: r0.csv}}
            party1: {{tables: {{b: b.parquet}}, output: r1.parquet, buckets: 5, cluster: "local:1"}}
    """))

    def cmd(p):
        return [sys.executable, "-m", "pet", "run", "job.yaml", "--party", str(p), "--state", f"s{p}.sqlite",
                "--timeout", "120"]

    dealer = pet_process("dealer", "--listen", f"127.0.0.1:{dport}", "--wait", "200", "--tls-dir",
                         str(tmp_path / "pki"))
    procs = [subprocess.Popen(cmd(p), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in (1, 0)]
    try:
        outs = [p.communicate(timeout=360) for p in procs]
    finally:
        for p in [*procs, dealer]:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [o[0][-2000:] + o[1][-2000:] for o in outs]
    o0 = pd.read_parquet(tmp_path / "a_out.parquet").astype(int)  # CSV columns come out as text
    o1 = pd.concat([pd.read_parquet(f) for f in sorted((tmp_path / "b_out").iterdir())], ignore_index=True)
    assert list(o0["id"]) == list(o1["id"])  # aligned, joint order
    want = a.merge(b, on="id")
    assert sorted(o0["id"]) == sorted(want["id"]) and len(o0) == 1500
    got = o0.merge(o1, on="id").sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[["id", "x", "w"]], want.sort_values("id").reset_index(drop=True)[
        ["id", "x", "w"]], check_dtype=False)
    assert '"buckets": 5' in outs[1][0]  # the task summary says it ran bucketed
    want = oracle(SQL, {"a": a}, {"b": b})
    assert_same(pd.read_csv(tmp_path / "r0.csv"), want)
    assert_same(pd.read_parquet(tmp_path / "r1.parquet"), want)
