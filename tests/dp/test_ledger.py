"""BudgetLedger: persistence, all-or-nothing, two processes hammering one block, SIGKILL mid-claim."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import pet.dp as dp
from pet.errors import BudgetError, BudgetExceeded, InputError


def test_basic_operations_and_persistence(tmp_path):
    path = tmp_path / "budget.db"
    with dp.BudgetLedger(path) as led:
        led.add_block("2024-01-01", 1.0, 1e-6)
        led.add_block("2024-01-02", 1.0, 1e-6, unlocked="none")
        assert not led.allocate("c0", {"2024-01-01": 0.5, "2024-01-02": 0.1})  # 02 is locked
        assert led.block("2024-01-01").unlocked == 1.0  # all-or-nothing: nothing moved
        led.unlock("2024-01-02", 0.3)
        assert led.allocate("c1", {"2024-01-01": 0.5, "2024-01-02": 0.1})
        led.consume("c1", {"2024-01-01": 0.2})
        with pytest.raises(BudgetExceeded):
            led.consume("c1", {"2024-01-01": 0.1, "2024-01-02": 0.2})
        led.release("c1")
        with pytest.raises(InputError):
            led.allocate("c1", {"2024-01-01": 0.1})
        with pytest.raises(InputError):
            led.add_block("2024-01-01", 1.0)
        led.check()
    with dp.BudgetLedger(path) as led:  # reopen: everything is still there
        b1, b2 = led.block("2024-01-01"), led.block("2024-01-02")
        assert (b1.unlocked, b1.allocated, b1.consumed) == (0.8, 0.0, 0.2)
        assert (b2.locked, b2.unlocked, b2.consumed) == (0.7, 0.3, 0.0)
        assert led.claim("c1").state == "released"
        assert [m[2] for m in led.movements()][:3] == ["create", "unlock", "create"]
        led.check()


def test_no_drift_over_many_small_claims(tmp_path):
    with dp.BudgetLedger(tmp_path / "l.db") as led:
        led.add_block("b", 0.1)
        n = 0
        while led.allocate(f"c{n}", {"b": 0.001}):
            led.consume(f"c{n}")
            n += 1
        assert n == 100
        assert led.block("b").consumed == 0.1
        led.check()


def test_renyi_ledger_and_claim_recorder(tmp_path):
    orders = [2.0, 4.0, 8.0, 16.0, 32.0]
    with dp.BudgetLedger(tmp_path / "r.db") as led:
        led.add_block("r", 10.0, 1e-6, orders=orders)
        sigma = dp.gaussian_sigma(1.0, 1e-5)
        curve = np.asarray(orders) / (2 * sigma**2)  # the Gaussian's RDP curve (sensitivity 1)
        assert led.allocate("job", {"r": curve * 1.01})
        rec = dp.ClaimRecorder(led, "job")
        dp.gaussian_mechanism(3.0, 1.0, 1.0, 1e-5, record=rec)
        np.testing.assert_allclose(led.block("r").consumed, curve, rtol=1e-5)
        with pytest.raises(BudgetExceeded):  # a second run is not covered by the allocation
            dp.gaussian_mechanism(3.0, 1.0, 1.0, 1e-5, record=rec)
        led.check()


def test_check_detects_tampering(tmp_path):
    path = tmp_path / "t.db"
    with dp.BudgetLedger(path) as led:
        led.add_block("b", 1.0)
        assert led.allocate("c", {"b": 0.4})
        led.consume("c")
    con = sqlite3.connect(path)
    con.execute("UPDATE blocks SET consumed='0', unlocked='1000000000000' WHERE block_id='b'")
    con.commit()
    con.close()
    with dp.BudgetLedger(path) as led:
        with pytest.raises(BudgetError):
            led.check()


_WORKER = textwrap.dedent(
    """
    import sys
    from pet.dp import BudgetLedger
    path, tag = sys.argv[1], sys.argv[2]
    led = BudgetLedger(path)
    n = 0
    while led.allocate(f"{tag}-{n}", {"shared": 0.01, "other": 0.001}):
        led.consume(f"{tag}-{n}")
        n += 1
    print(n)
    """
)


def test_two_processes_never_overspend(tmp_path):
    path = str(tmp_path / "shared.db")
    with dp.BudgetLedger(path) as led:
        led.add_block("shared", 0.5)
        led.add_block("other", 1.0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, path, tag], stdout=subprocess.PIPE, text=True, env=env)
        for tag in ("p", "q")
    ]
    counts = [int(p.communicate(timeout=300)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(counts) == 50  # exactly the block's capacity, however the two interleave
    with dp.BudgetLedger(path) as led:
        assert led.block("shared").consumed == 0.5
        assert led.block("other").consumed == pytest.approx(0.05)
        assert len(led.claim_ids()) == 50
        led.check()


_VICTIM = textwrap.dedent(
    """
    import sys
    from pet.dp import BudgetLedger
    led = BudgetLedger(sys.argv[1], _fault_delay=0.02)
    n = 0
    while True:
        if led.allocate(f"k-{n}", {"a": 0.001, "b": 0.001, "c": 0.001}):
            led.consume(f"k-{n}", {"a": 0.0005})
        print(n, flush=True)
        n += 1
    """
)


@pytest.mark.parametrize("attempt", range(2))
def test_sigkill_mid_claim_leaves_consistent_ledger(tmp_path, attempt):
    path = str(tmp_path / "kill.db")
    with dp.BudgetLedger(path) as led:
        for b in "abc":
            led.add_block(b, 1.0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", _VICTIM, path], stdout=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(2 + attempt):  # let a few claims complete, then kill inside a transaction
            p.stdout.readline()
        time.sleep(0.03 + 0.017 * attempt)  # the victim spends most of its time inside transactions
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(timeout=60)
        p.stdout.close()
    assert p.returncode == -signal.SIGKILL
    with dp.BudgetLedger(path) as led:
        led.check()  # invariant, claims add up to blocks, movement log replays
        claims = led.claim_ids()
        assert len(claims) >= 2
        for cid in claims:  # every claim is whole: bound on all three blocks
            c = led.claim(cid)
            assert set(c.allocated) == {"a", "b", "c"}
        total = sum(led.block(b).allocated + led.block(b).consumed for b in "abc")
        assert total == pytest.approx(3 * 0.001 * len(claims))
