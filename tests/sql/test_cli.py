"""`pet sql` as three OS processes (dealer, party 0, party 1) over loopback TCP and mutual TLS."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers import free_port as _port
from tests.helpers import pet_process as _pet
from tests.sql.helpers import assert_same, oracle

SQL = ("SELECT u.region, COUNT(*) AS n, SUM(s.amount * u.weight) AS total, MAX(s.amount - u.weight) AS top "
       "FROM sales s JOIN users u ON s.uid = u.uid WHERE s.amount > 1 GROUP BY u.region")


@pytest.mark.parametrize("tls", [False, True])
def test_two_process_tcp_run(tmp_path, tls):
    sales = pd.DataFrame({"uid": [1, 2, 3, 4, 5, 6], "amount": [5.0, 0.5, 7.25, 3.0, 9.0, 2.0]})
    users = pd.DataFrame({"uid": [2, 3, 4, 5, 6, 7], "weight": [1.0, 2.0, 0.5, 1.5, 3.0, 1.0],
                          "region": ["eu", "us", "eu", "us", "eu", "us"]})
    sales.to_csv(tmp_path / "sales.csv", index=False)
    users.to_parquet(tmp_path / "users.parquet", index=False)
    dport, pport = _port(), _port()
    extra = []
    if tls:  # the same files for the peer link and the dealer link
        from pet.transport import make_test_pki

        make_test_pki(tmp_path / "pki")
        extra = ["--tls-dir", str(tmp_path / "pki")]
    dealer = _pet("dealer", "--listen", f"127.0.0.1:{dport}", "--wait", "60", *extra)
    p0 = _pet("sql", "--party", "0", "--listen", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
              "--table", f"sales={tmp_path / 'sales.csv'}", "--query", SQL, "--reveal-to", "0",
              "--output", str(tmp_path / "out0.csv"), "--wait", "60", *extra)
    p1 = _pet("sql", "--party", "1", "--connect", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
              "--table", f"users={tmp_path / 'users.parquet'}", "--query", SQL, "--reveal-to", "0",
              "--output", str(tmp_path / "out1.csv"), "--wait", "60", *extra)
    procs = [p0, p1, dealer]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert "does not receive" in outs[1][0]
    assert not (tmp_path / "out1.csv").exists()
    got = pd.read_csv(tmp_path / "out0.csv")
    assert_same(got, oracle(SQL, {"sales": sales}, {"users": users}))
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


def test_cli_rejects_bad_table_spec(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pet", "sql", "--party", "0", "--listen", "127.0.0.1:1",
                          "--dealer", "127.0.0.1:2", "--table", "nonsense", "--query", SQL,
                          "--output", str(tmp_path / "o.csv")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "NAME=PATH" in out.stderr
