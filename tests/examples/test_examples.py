"""Every example runs, as its users would run it, and prints what plaintext computes."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pet.data import reference_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_together(*commands, timeout=180):
    procs = [subprocess.Popen([sys.executable, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in commands]
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    return [out for out, _ in outs]


def test_psi_pair():
    address = f"127.0.0.1:{free_port()}"
    out0, out1 = run_together([EXAMPLES / "psi_party0.py", "--address", address],
                              [EXAMPLES / "psi_party1.py", "--address", address])
    a = pd.read_csv(reference_path("PETML", "breast_hetero_mini_server.csv"))
    b = pd.read_csv(reference_path("PETML", "breast_hetero_mini_client.csv"))
    common = len(set(a["id"]) & set(b["id"]))
    assert f"{common} of {len(a)} rows are common" in out0
    assert f"{common} of {len(b)} rows are common" in out1
    assert out0.split("first ids")[1] == out1.split("first ids")[1]


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
