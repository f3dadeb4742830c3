"""The ``protocol: kkrt`` parameter of the ``psi`` and ``sql`` job tasks, through the job
runner, against Python's set intersection and DuckDB."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pet.jobs import parse_job, run_job
from pet.mpc import dealer as dealer_service
from pet.transport import run_parties

SQL = ("SELECT c.grp, COUNT(*) AS n, SUM(c.x * s.y) AS total FROM client AS c JOIN server AS s "
       "ON c.id = s.id GROUP BY c.grp")


def _inputs(tmp_path):
    rng = np.random.default_rng(5)
    ids0 = [f"user-{i}" for i in rng.permutation(1000)[:500]]
    ids1 = [f"user-{i}" for i in rng.permutation(1000)[:300]]
    client = pd.DataFrame({"id": ids0, "x": rng.integers(0, 50, 500).astype(float),
                           "grp": rng.choice(["a", "b", "c"], 500)})
    server = pd.DataFrame({"id": ids1, "y": rng.integers(0, 9, 300).astype(float)})
    client.to_csv(tmp_path / "client.csv", index=False)
    server.to_parquet(tmp_path / "server.parquet", index=False)
    return client, server


def _psi_task(t, protocol0, protocol1):
    return {"name": "align", "type": "psi", "params": {"column": "id"},
            "party0": {"input": f"{t}/client.csv", "output": f"{t}/client_aligned.csv", "protocol": protocol0},
            "party1": {"input": f"{t}/server.parquet", "output": f"{t}/server_aligned.csv", "protocol": protocol1}}


def _run_with_dealer(spec, tmp_path):
    def party(p):
        return lambda chans: run_job(spec, p, chans[1 - p], state_path=tmp_path / f"s{p}.sqlite",
                                     dealer=chans[2], log=lambda s: None)

    return run_parties(party(0), party(1), lambda chans: dealer_service.serve(chans[0], chans[1]),
                       timeout=300)[:2]


def _run_psi_only(tmp_path, protocol0, protocol1):
    """A job of one psi task (no dealer: it never opens an MPC session)."""
    spec = parse_job({"job": "kkrt-psi", "tasks": [_psi_task(tmp_path, protocol0, protocol1)]})

    def party(p):
        return lambda ch: run_job(spec, p, ch, state_path=tmp_path / f"s{p}.sqlite", log=lambda s: None)

    return run_parties(party(0), party(1), timeout=120)


def test_psi_and_sql_tasks_with_protocol_kkrt(tmp_path):
    client, server = _inputs(tmp_path)
    t = tmp_path
    spec = parse_job({"job": "kkrt-job", "tasks": [
        _psi_task(t, "kkrt", "kkrt"),
        {"name": "report", "type": "sql", "params": {"sql": SQL, "output": f"{t}/report.csv", "protocol": "kkrt"},
         "party0": {"tables": {"client": f"{t}/client.csv"}},
         "party1": {"tables": {"server": f"{t}/server.parquet"}}},
    ]})
    r0, r1 = _run_with_dealer(spec, tmp_path)
    assert r0.status == r1.status == "SUCCESS", (r0.error, r1.error)

    a0, a1 = pd.read_csv(tmp_path / "client_aligned.csv"), pd.read_csv(tmp_path / "server_aligned.csv")
    assert list(a0["id"]) == list(a1["id"])  # the joint order
    assert set(a0["id"]) == set(client["id"]) & set(server["id"]) and len(a0) == len(set(a0["id"]))
    assert (a0.set_index("id")["x"] == client.set_index("id").loc[a0["id"], "x"]).all()  # rows kept whole

    con = duckdb.connect()
    con.register("client", client)
    con.register("server", server)
    want = con.sql(SQL).df().sort_values("grp").reset_index(drop=True)
    got = pd.read_csv(tmp_path / "report.csv").sort_values("grp").reset_index(drop=True)
    assert list(got["grp"]) == list(want["grp"])
    assert list(got["n"]) == list(want["n"])
    assert np.allclose(got["total"], want["total"], rtol=1e-6, atol=1e-3)


def test_protocol_parameter_differing_between_parties_fails_at_both(tmp_path):
    _inputs(tmp_path)
    r0, r1 = _run_psi_only(tmp_path, "ecdh", "kkrt")
    assert r0.status == r1.status == "FAILED"
    for r in (r0, r1):
        assert "different PSI protocols" in r.error and "parameter protocol" in r.error, r.error
    assert not (tmp_path / "client_aligned.csv").exists()


def test_unknown_protocol_parameter_is_refused_at_both(tmp_path):
    _inputs(tmp_path)
    r0, r1 = _run_psi_only(tmp_path, "ot", "ot")
    assert r0.status == r1.status == "FAILED"
    assert "task parameter 'protocol' must be 'ecdh' or 'kkrt'" in r0.error, r0.error
