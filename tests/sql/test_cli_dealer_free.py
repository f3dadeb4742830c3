"""`pet sql --no-dealer`: exactly two OS processes over loopback TCP, no dealer anywhere."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from tests.helpers import free_port as _port
from tests.helpers import pet_process as _pet
from tests.sql.helpers import assert_same, oracle
from tests.sql.test_cli import SQL


def test_two_processes_without_a_dealer(tmp_path):
    sales = pd.DataFrame({"uid": [1, 2, 3, 4, 5, 6], "amount": [5.0, 0.5, 7.25, 3.0, 9.0, 2.0]})
    users = pd.DataFrame({"uid": [2, 3, 4, 5, 6, 7], "weight": [1.0, 2.0, 0.5, 1.5, 3.0, 1.0],
                          "region": ["eu", "us", "eu", "us", "eu", "us"]})
    sales.to_csv(tmp_path / "sales.csv", index=False)
    users.to_parquet(tmp_path / "users.parquet", index=False)
    pport = _port()
    p0 = _pet("sql", "--party", "0", "--listen", f"127.0.0.1:{pport}", "--no-dealer",
              "--table", f"sales={tmp_path / 'sales.csv'}", "--query", SQL, "--reveal-to", "0",
              "--output", str(tmp_path / "out0.csv"), "--wait", "60")
    p1 = _pet("sql", "--party", "1", "--connect", f"127.0.0.1:{pport}", "--no-dealer",
              "--table", f"users={tmp_path / 'users.parquet'}", "--query", SQL, "--reveal-to", "0",
              "--output", str(tmp_path / "out1.csv"), "--wait", "60")
    procs = [p0, p1]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    assert_same(pd.read_csv(tmp_path / "out0.csv"), oracle(SQL, {"sales": sales}, {"users": users}))


def test_dealer_and_no_dealer_together_are_refused(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pet", "sql", "--party", "0", "--listen", f"127.0.0.1:{_port()}",
                          "--dealer", "127.0.0.1:2", "--no-dealer", "--table", f"t={tmp_path / 'x.csv'}",
                          "--query", SQL, "--output", str(tmp_path / "o.csv"), "--wait", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--no-dealer" in out.stderr and "not allowed with" in out.stderr
