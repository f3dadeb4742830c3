"""pet.sql joins by KKRT PSI: ``psi_options={"protocol": "kkrt"}`` and ``pet sql --psi-protocol``,
checked against DuckDB on the plaintext union and against the ECDH join; a protocol
mismatch fails at both parties with a message naming the option."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pet.mpc as mpc
import pet.sql as psql
from tests.helpers import free_port, pet_process
from tests.sql.helpers import assert_same, oracle, run_both

SQL = ("SELECT u.region, COUNT(*) AS n, SUM(s.amount * u.weight) AS total, MIN(s.amount) AS lo "
       "FROM sales s JOIN users u ON s.uid = u.uid AND s.shop = u.shop WHERE s.amount > 3 GROUP BY u.region")


def _tables(seed=7):
    rng = np.random.default_rng(seed)
    n0, n1 = 400, 260
    sales = pd.DataFrame({"uid": rng.permutation(600)[:n0].astype(np.int64),
                          "shop": rng.choice(["north", "south"], n0),
                          "amount": rng.integers(0, 100, n0).astype(float)})
    users = pd.DataFrame({"uid": rng.permutation(600)[:n1].astype(np.int64),
                          "shop": rng.choice(["north", "south"], n1),
                          "weight": rng.integers(1, 5, n1).astype(float),
                          "region": rng.choice(["eu", "us", "asia", "africa"], n1)})
    # composite key (uid, shop) is unique at both sides: a one-to-one join
    sales = sales.drop_duplicates(["uid", "shop"]).reset_index(drop=True)
    users = users.drop_duplicates(["uid", "shop"]).reset_index(drop=True)
    return {"sales": sales}, {"users": users}


def test_kkrt_join_group_by_matches_duckdb_and_ecdh():
    t0, t1 = _tables()
    want = oracle(SQL, t0, t1)
    assert len(want) == 4 and want["n"].sum() > 20  # the join is not trivially small
    kkrt = run_both(SQL, t0, t1, psi_options={"protocol": "kkrt"})
    ecdh = run_both(SQL, t0, t1, psi_options={"protocol": "ecdh"})
    for got in (*kkrt, *ecdh):
        assert_same(got, want)
    assert_same(kkrt[0], ecdh[0])
    sizes = [{k: v for k, v in r.attrs["pet_sql"].items() if not k.startswith("seconds")} for r in (kkrt[0], ecdh[0])]
    assert sizes[0] == sizes[1]  # same intersection and joined-row counts
    assert sizes[0]["intersection"] == want["n"].sum()  # one-to-one join: every joined row passes the WHERE


def test_kkrt_join_with_reveal_to_one_party():
    t0, t1 = _tables(seed=11)
    got = run_both(SQL, t0, t1, reveal_to=1, psi_options={"protocol": "kkrt"})
    assert got[0] is None
    assert_same(got[1], oracle(SQL, t0, t1))


def test_different_protocols_fail_at_both_parties_naming_the_option():
    t0, t1 = _tables()

    def prog(session):
        protocol = "ecdh" if session.party == 0 else "kkrt"
        try:
            psql.query(session, SQL, t0 if session.party == 0 else t1, psi_options={"protocol": protocol})
        except Exception as exc:  # noqa: BLE001 - the test inspects each party's error
            return type(exc).__name__, str(exc)
        return None

    errors = mpc.run_local(prog, timeout=60)  # a hang would be a PartyTimeout here
    for name, msg in errors:
        assert name == "ProtocolError"
        assert "different PSI protocols" in msg and "--psi-protocol" in msg and "psi_options" in msg
    assert "this party 'ecdh' (ECDH-PSI), the peer 'kkrt'" in errors[0][1]
    assert "this party 'kkrt' (KKRT-PSI), the peer 'ecdh'" in errors[1][1]


def _start_cli(tmp_path, t0, t1, protocols):
    t0["sales"].to_csv(tmp_path / "sales.csv", index=False)
    t1["users"].to_parquet(tmp_path / "users.parquet", index=False)
    dport, pport = free_port(), free_port()
    dealer = pet_process("dealer", "--listen", f"127.0.0.1:{dport}", "--wait", "60")
    common = ["--dealer", f"127.0.0.1:{dport}", "--query", SQL, "--wait", "60"]
    p0 = pet_process("sql", "--party", "0", "--listen", f"127.0.0.1:{pport}", *common,
                     "--table", f"sales={tmp_path / 'sales.csv'}", "--output", str(tmp_path / "out0.csv"),
                     "--psi-protocol", protocols[0])
    p1 = pet_process("sql", "--party", "1", "--connect", f"127.0.0.1:{pport}", *common,
                     "--table", f"users={tmp_path / 'users.parquet'}", "--output", str(tmp_path / "out1.csv"),
                     "--psi-protocol", protocols[1])
    return [p0, p1, dealer]


def _finish(procs, timeout=240):
    try:
        return [p.communicate(timeout=timeout) for p in procs[:2]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()


def test_cli_psi_protocol_kkrt(tmp_path):
    t0, t1 = _tables(seed=3)
    procs = _start_cli(tmp_path, t0, t1, ("kkrt", "kkrt"))
    outs = _finish(procs)
    assert [p.returncode for p in procs[:2]] == [0, 0], outs
    want = oracle(SQL, t0, t1)
    assert_same(pd.read_csv(tmp_path / "out0.csv"), want)
    assert_same(pd.read_csv(tmp_path / "out1.csv"), want)


@pytest.mark.parametrize("protocols", [("kkrt", "ecdh"), ("ecdh", "kkrt")])
def test_cli_mismatched_psi_protocol_fails_at_both(tmp_path, protocols):
    t0, t1 = _tables(seed=3)
    procs = _start_cli(tmp_path, t0, t1, protocols)
    outs = _finish(procs, timeout=120)  # a hang would be a TimeoutExpired here
    for p, (_, err) in zip(procs[:2], outs):
        assert p.returncode != 0
        assert "different PSI protocols" in err and "--psi-protocol" in err, err
    assert not (tmp_path / "out0.csv").exists() and not (tmp_path / "out1.csv").exists()
