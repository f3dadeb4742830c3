"""``pet demo --no-dealer``: exactly two OS processes (no dealer process anywhere), the MPC
steps dealer-free, checked against the oracles of the dealer demo test."""

import json

import pytest

from pet.demo.party import run_party
from pet.errors import InputError
from pet.transport import make_test_pki
from tests.demo.test_demo import check_demo_reports
from tests.helpers import free_port, pet_process, run_pet

STEPS = ["psi", "mpc", "sql", "leiden"]  # xgb dealer-free is slow until the HE matrix products land


def test_two_party_processes_without_a_dealer_match_the_oracles(tmp_path):
    make_test_pki(tmp_path, names=("party0", "party1"))  # no dealer certificate: none could take part
    peer = f"127.0.0.1:{free_port()}"
    common = ["--tls-dir", tmp_path, "--steps", ",".join(STEPS), "--timeout", "240", "--no-dealer"]
    procs = [pet_process("demo", "--party", "1", "--connect", peer, "--report", tmp_path / "party1.json", *common),
             pet_process("demo", "--party", "0", "--listen", peer, "--report", tmp_path / "party0.json", *common)]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    r0, r1 = (json.loads((tmp_path / f"party{p}.json").read_text()) for p in (0, 1))
    check_demo_reports(r0, r1, STEPS)
    for report in (r0, r1):
        for step in report["steps"]:
            assert step["dealer_bytes"] == 0
    assert r0["steps"][1]["peer_bytes"] > 0  # the OT extension went over the peer link


def test_demo_no_dealer_runs_two_processes_only():
    """The orchestrating ``pet demo --no-dealer`` starts no dealer and succeeds."""
    out = run_pet("demo", "--no-dealer", "--steps", "psi,mpc", "--timeout", "240", timeout=600)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    assert "dealer-free" in out.stdout and "parties and dealer" not in out.stdout
    assert "All 2 steps succeeded" in out.stdout


def test_dealer_and_no_dealer_together_are_refused():
    out = run_pet("demo", "--party", "0", "--listen", "127.0.0.1:1", "--dealer", "127.0.0.1:2", "--no-dealer",
                  timeout=60)
    assert out.returncode != 0 and "--no-dealer" in out.stderr and "not allowed with" in out.stderr
    with pytest.raises(InputError, match="not both"):
        run_party(0, "127.0.0.1:1", dealer="127.0.0.1:2", tls_dir=None, report=None, correlations="ot")


def test_dealer_free_default_steps_leave_out_only_xgb():
    import argparse

    from pet.cli.demo import _steps
    from pet.demo.steps import STEPS

    assert _steps(argparse.Namespace(steps=None, no_dealer=True)) == [s for s in STEPS if s != "xgb"]
    assert _steps(argparse.Namespace(steps=None, no_dealer=False)) == list(STEPS)
    assert _steps(argparse.Namespace(steps="psi,xgb", no_dealer=True)) == ["psi", "xgb"]
