"""Reliability pass: kill a party or the dealer in the middle of each demo stage; the others
stop with a clear error within their timeout, and no file is left half-written.

Each case runs the demo's processes as ``pet demo`` does (dealer, party 1, party 0 over
loopback TCP with mutual TLS), waits until party 0 announces the stage, waits a random
(seeded, so reproducible) fraction of a second, and SIGKILLs the victim. The stage is run
several times in a row so the kill always lands while work remains.
"""

import json
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from pet.transport import make_test_pki
from tests.helpers import free_port

TIMEOUT = 15  # the processes' --timeout
REPEATS = {"psi": 12, "mpc": 6, "xgb": 2, "sql": 4, "leiden": 2}  # enough work left after the kill
CASES = [(stage, victim) for stage in REPEATS for victim in ("party0", "party1", "dealer")]


@pytest.mark.parametrize("stage,victim", CASES)
def test_kill_during_stage(tmp_path, stage, victim):
    make_test_pki(tmp_path, names=("party0", "party1", "dealer"))
    steps = ",".join((["psi"] if stage != "psi" else []) + [stage] * REPEATS[stage])
    peer, dealer = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    base = [sys.executable, "-m", "pet"]
    common = ["--tls-dir", str(tmp_path), "--steps", steps, "--timeout", str(TIMEOUT), "--dealer", dealer]
    procs = {
        "dealer": subprocess.Popen(base + ["dealer", "--listen", dealer, "--tls-dir", str(tmp_path),
                                           "--timeout", str(TIMEOUT), "--wait", str(TIMEOUT)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        "party1": subprocess.Popen(base + ["demo", "--party", "1", "--connect", peer, "--report",
                                           str(tmp_path / "party1.json"), *common],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        "party0": subprocess.Popen(base + ["demo", "--party", "0", "--listen", peer, "--report",
                                           str(tmp_path / "party0.json"), *common],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    }
    # wait for party 0 to announce the stage, then kill the victim a random moment later
    announced = threading.Event()
    lines = []

    def watch():
        for line in procs["party0"].stdout:
            lines.append(line)
            if f": {stage} ..." in line:
                announced.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert announced.wait(180), "".join(lines) + procs["party0"].stderr.read()
    time.sleep(random.Random(f"{stage}/{victim}").uniform(0.0, 0.3))  # reproducible "random point"
    procs[victim].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()

    unaffected = victim == "dealer" and stage == "psi"  # PSI does not use the dealer
    for name, proc in procs.items():
        if name == victim:
            proc.wait(10)
            continue
        if unaffected and name != "dealer":
            assert proc.wait(TIMEOUT + 60) == 0, proc.stderr.read()
            continue
        try:
            code = proc.wait(TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{name} did not stop within {TIMEOUT + 30} s after {victim} was killed")
        assert code != 0, f"{name} exited 0 although {victim} died during {stage}"
        assert time.monotonic() - killed_at < TIMEOUT + 30
    for name in ("party0", "party1"):
        if name == victim or unaffected:
            continue
        report = tmp_path / f"{name}.json"
        errors = procs[name].stderr.read()
        if report.exists():  # written atomically: either absent or complete JSON
            outcome = json.loads(report.read_text())
            assert not outcome["ok"]
            errors += outcome["steps"][-1].get("error", "")
        assert any(word in errors for word in ("PeerDisconnected", "ChannelTimeout", "TransportError", "TLSError",
                                                "ChannelClosed", "closed", "timed out", "no peer",
                                                "a network error on its side")), errors
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], leftovers
