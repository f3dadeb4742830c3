"""Blocks, claims and schedulers: the paper's worked example, capacities, invariants, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pet.dp as dp
from pet.dp.simulate import SIM_ORDERS
from pet.errors import BudgetError, BudgetExceeded, InputError


def _blocks(*ids, eps=1.0, **kw):
    return {b: dp.Block(eps, block_id=b, **kw) for b in ids}


# ----- Block / Claim primitives ------------------------------------------------------------------


def test_allocate_is_all_or_nothing():
    blocks = _blocks("a", "b", unlocked="all")
    blocks["b"].check_invariant()
    first = dp.Claim({"a": 0.5, "b": 0.9})
    assert dp.allocate(first, blocks)
    second = dp.Claim({"a": 0.5, "b": 0.2})  # fits a, not b
    before = [(b.unlocked, b.allocated) for b in blocks.values()]
    assert not dp.allocate(second, blocks)
    assert [(b.unlocked, b.allocated) for b in blocks.values()] == before
    assert second.state == "pending"
    dp.consume(first, blocks, {"a": 0.2})
    with pytest.raises(BudgetExceeded):
        dp.consume(first, blocks, {"a": 0.1, "b": 1.0})  # b over its allocation: nothing moves
    assert blocks["a"].consumed == pytest.approx(0.2) and blocks["b"].consumed == 0.0
    dp.release(first, blocks)
    assert blocks["a"].unlocked == pytest.approx(0.8) and blocks["b"].unlocked == pytest.approx(1.0)
    for b in blocks.values():
        b.check_invariant()
    with pytest.raises(BudgetError):
        dp.release(first, blocks)


def test_basic_budget_is_exact():
    blk = dp.Block(1.0, block_id=0, unlocked="all")
    blocks = {0: blk}
    for i in range(100):
        c = dp.Claim({0: 0.01})
        assert dp.allocate(c, blocks), i
        dp.consume(c, blocks)
    assert not dp.allocate(dp.Claim({0: 1e-12}), blocks)
    assert blk.consumed == 1.0 and blk.unlocked == 0.0
    blk.check_invariant()


def test_to_renyi_reference_values():
    # Acceptance case 8 (PrivateKube budget_test.go and add-block_rdp.yaml).
    orders = [2, 3, 4, 5, 6, 8, 16, 32, 64, np.inf]
    curve = dp.epsilon_delta_to_rdp_budget(1.0, 1e-3, orders)
    np.testing.assert_allclose(curve[-5:], [0.0131778, 0.5394829, 0.7771691, 0.8903531, 1.0], atol=1e-4)
    assert np.all(curve[:5] == 0)
    c5 = dp.epsilon_delta_to_rdp_budget(5.0, 1e-4, [3, 4])
    np.testing.assert_allclose(c5, [0.3948298140119091, 1.929886542674606], rtol=1e-12)


def test_renyi_exists_alpha_and_subtract_everywhere():
    # Acceptance case 9.
    orders = [2.0, 8.0, 32.0]
    blk = dp.Block(1.0, 1e-3, orders=orders, block_id="r", unlocked="all")
    g = blk.capacity
    blocks = {"r": blk}
    demand = np.array([g[0] + 1.0, g[1] * 0.9, g[2] + 1.0])  # fits only at alpha = 8
    c = dp.Claim({"r": demand})
    assert dp.allocate(c, blocks)
    assert np.any(blk.unlocked < 0)  # some orders went negative
    assert np.any(blk.unlocked >= 0)
    blk.check_invariant()
    after = blk.unlocked
    too_big = dp.Claim({"r": np.array([10.0, 10.0, 10.0])})
    assert not dp.allocate(too_big, blocks)
    np.testing.assert_array_equal(blk.unlocked, after)


def test_bad_block_and_claim_arguments():
    with pytest.raises(InputError):
        dp.Block(0.0)
    with pytest.raises(InputError):
        dp.Block(1.0, 0.0, orders=[2, 4])
    with pytest.raises(InputError):
        dp.Claim({})
    with pytest.raises(InputError):
        dp.allocate(dp.Claim({"nope": 0.1}), _blocks("a"))
    with pytest.raises(InputError):
        dp.allocate(dp.Claim({"a": -0.1}), _blocks("a"))
    with pytest.raises(InputError):
        dp.DPF(n=3, t=2.0)


# ----- DPF: the paper's worked example and properties ------------------------------------------


@pytest.mark.parametrize("n", [4, 10])
def test_fig4_worked_example_replay(n):
    s = dp.DPF(n=n)
    for b in (1, 2):
        s.add_block(dp.Block(float(n), block_id=b), now=0)  # fair share 1 per block
    p1 = dp.Claim({1: 0.5, 2: 1.5}, claim_id="P1")
    p2 = dp.Claim({1: 1.0, 2: 1.0}, claim_id="P2")
    p3 = dp.Claim({1: 1.5, 2: 1.0}, claim_id="P3")

    def unlocked():
        return tuple(s.block(b).unlocked for b in (1, 2))

    assert s.submit(p1, now=1) == []
    assert unlocked() == (1.0, 1.0)
    assert [c.claim_id for c in s.submit(p2, now=2)] == ["P2"]
    assert unlocked() == (1.0, 1.0) and p1.state == "pending"
    assert [c.claim_id for c in s.submit(p3, now=3)] == ["P1"]  # P1 and P3 tie at 1.5; P1's 0.5 < P3's 1.0
    assert unlocked() == (1.5, 0.5)
    assert p3.state == "pending" and [c.claim_id for c in s.waiting()] == ["P3"]
    s.check_invariants()


def test_fcfs_trace():
    # Acceptance case 7: three static blocks with eps_G = 1.
    s = dp.FCFS()
    for b in range(3):
        s.add_block(dp.Block(1.0, block_id=b))
    a = dp.Claim({0: 0.9}, claim_id="A")
    b = dp.Claim({1: 0.8}, claim_id="B")
    c = dp.Claim({0: 0.21, 1: 0.21, 2: 0.21}, claim_id="C")
    d = dp.Claim({0: 0.10, 1: 0.10, 2: 0.10}, claim_id="D")
    for claim, t in ((a, 0.1), (b, 2), (c, 6), (d, 8)):
        s.submit(claim, now=t)
    assert [x.state for x in (a, b, c, d)] == ["allocated", "allocated", "rejected", "allocated"]


@pytest.mark.parametrize("scheduler", [lambda: dp.FCFS(), lambda: dp.DPF(n=100), lambda: dp.DPF(n=250),
                                       lambda: dp.DPF(t=50.0), lambda: dp.RoundRobin(n=100)])
def test_single_block_capacity_of_100_mice(scheduler):
    # Acceptance case 4: eps_G = 1, only eps = 0.01 mice: exactly 100 grants at most.
    s = scheduler()
    s.add_block(dp.Block(1.0, block_id=0), now=0)
    for i in range(300):
        for c in s.submit(dp.Claim({0: 0.01}, claim_id=i), now=float(i)):
            s.consume(c.claim_id)
    s.advance(1000.0)
    for c in s.granted[len(s.granted):]:
        s.consume(c.claim_id)
    granted = len(s.granted)
    if isinstance(s, dp.DPF) and s.n == 250:
        assert granted == 100  # N >= 100 and >= 100 arrivals
    assert granted <= 100
    if isinstance(s, (dp.FCFS, dp.DPF)):
        assert granted == 100
    s.check_invariants()


def test_renyi_capacity_14514_mice():
    # Acceptance case 10: eps_G = 1, delta_G = 1e-6, Gaussian mice at (0.01, 1e-9) on the simulator grid.
    sigma = math.sqrt(2 * math.log(1.25e9)) / 0.01
    curve = np.asarray(SIM_ORDERS) / (2 * sigma**2)
    s = dp.FCFS()
    s.add_block(dp.Block(1.0, 1e-6, orders=SIM_ORDERS, block_id=0))
    n = 0
    while s.submit(dp.Claim({0: curve}, claim_id=n)):
        n += 1
    assert n == 14514  # the notes' value (rdp_max_amount in the microbenchmark scripts)
    basic = dp.FCFS()
    basic.add_block(dp.Block(1.0, block_id=0))
    m = 0
    while basic.submit(dp.Claim({0: 0.01}, claim_id=m)):
        m += 1
    assert m == 100


def test_dpf_t_unlocks_linearly_and_retires():
    s = dp.DPF(t=100.0)
    s.add_block(dp.Block(1.0, block_id=0, created_at=0.0), now=0.0)
    s.advance(25.0)
    assert s.block(0).unlocked == pytest.approx(0.25)
    c = dp.Claim({0: 0.3}, claim_id="c", timeout=500)
    assert s.submit(c, now=26.0) == []
    assert [x.claim_id for x in s.advance(30.0)] == ["c"]
    big = dp.Claim({0: 0.9}, claim_id="big")
    s.submit(big, now=40.0)
    s.advance(100.0)  # fully unlocked and retired: 0.7 left < 0.9
    assert big.state == "rejected" and big.reason == "retired"
    s.check_invariants()


def test_timeouts_reject_waiting_claims():
    s = dp.DPF(n=10)
    s.add_block(dp.Block(1.0, block_id=0))
    c = dp.Claim({0: 0.5}, claim_id="slow", arrival=0.0, timeout=5.0)
    s.submit(c, now=0.0)
    s.advance(5.0)
    assert c.state == "rejected" and c.reason == "timeout"


def test_release_lets_waiting_claims_run():
    s = dp.DPF(n=1)
    s.add_block(dp.Block(1.0, block_id=0))
    a = dp.Claim({0: 0.8}, claim_id="a")
    b = dp.Claim({0: 0.5}, claim_id="b")
    s.submit(a, now=0)  # unlocks everything, granted
    s.submit(b, now=1)  # block retired with 0.2 < 0.5 left: rejected
    assert b.state == "rejected"
    s2 = dp.DPF(n=2)
    s2.add_block(dp.Block(1.0, block_id=0))
    x, y = dp.Claim({0: 0.5}, claim_id="x"), dp.Claim({0: 0.9}, claim_id="y")
    s2.submit(x, now=0)
    s2.submit(y, now=1)
    assert x.state == "allocated" and y.state == "rejected"  # retired after 2 arrivals, 0.5 < 0.9
    s3 = dp.DPF(n=3)
    s3.add_block(dp.Block(1.0, block_id=0))
    p, q = dp.Claim({0: 0.3}, claim_id="p"), dp.Claim({0: 0.5}, claim_id="q")
    s3.submit(p, now=0)
    s3.submit(q, now=1)  # 2/3 unlocked, 0.3 allocated: 0.3667 < 0.5
    assert q.state == "pending"
    assert [c.claim_id for c in s3.release("p")] == ["q"]
    s3.check_invariants()


# ----- properties -----------------------------------------------------------------------------------

_amount = st.sampled_from([0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.7])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 5),
    arrivals=st.lists(
        st.dictionaries(st.integers(0, 2), _amount, min_size=1, max_size=3), min_size=1, max_size=25
    ),
)
def test_sharing_incentive(n, arrivals):
    """Theorem 1: under DPF-N, a claim among the first N on all its blocks with demand <= eps_G/N
    on each is granted in the round it arrives."""
    s = dp.DPF(n=n)
    for b in range(3):
        s.add_block(dp.Block(1.0, block_id=b), now=0)
    seen = {b: 0 for b in range(3)}
    for i, demand in enumerate(arrivals):
        fair = all(seen[b] < n and d <= 1.0 / n for b, d in demand.items())
        for b in demand:
            seen[b] += 1
        c = dp.Claim(demand, claim_id=i)
        granted = s.submit(c, now=float(i))
        if fair:
            assert c in granted
        for g in granted:
            s.consume(g.claim_id)
        s.check_invariants()


_ops = st.lists(
    st.tuples(st.sampled_from(["submit", "consume", "release", "advance", "unlock"]), st.integers(0, 3),
              st.dictionaries(st.integers(0, 2), _amount, min_size=1, max_size=3)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["fcfs", "dpf-n", "dpf-t", "rr-n", "rr-t"]), ops=_ops)
def test_block_invariant_under_random_operations(kind, ops):
    s = {"fcfs": lambda: dp.FCFS(), "dpf-n": lambda: dp.DPF(n=3), "dpf-t": lambda: dp.DPF(t=5.0),
         "rr-n": lambda: dp.RoundRobin(n=3), "rr-t": lambda: dp.RoundRobin(t=5.0)}[kind]()
    for b in range(3):
        s.add_block(dp.Block(1.0, block_id=b), now=0)
    now = 0.0
    totals = {b: 0 for b in range(3)}
    for i, (op, k, demand) in enumerate(ops):
        now += 1.0
        held = [c for c in s.granted if c.state == "allocated"]
        if op == "submit":
            s.submit(dp.Claim(demand, claim_id=i, arrival=now, timeout=4.0), now=now)
        elif op == "consume" and held:
            c = held[k % len(held)]
            before = {b: (s.block(b)._a, s.block(b)._c) for b in range(3)}
            try:
                s.consume(c.claim_id, {b: a / 2 for b, a in c.demand.items()})
            except BudgetExceeded:  # more than the claim still holds: nothing may move
                assert before == {b: (s.block(b)._a, s.block(b)._c) for b in range(3)}
        elif op == "release" and held:
            s.release(held[k % len(held)].claim_id)
        elif op == "advance":
            s.advance(now)
        elif op == "unlock":
            s.block(k % 3).unlock(0.1)
        for b in range(3):
            blk = s.block(b)
            blk.check_invariant()
            parts = blk._l + blk._u + blk._a + blk._c
            assert parts == blk._g  # exact integer arithmetic
            assert blk._c >= totals[b]  # consumed never decreases
            totals[b] = blk._c


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["fcfs", "dpf-n", "dpf-t"]),
    ops=st.lists(st.tuples(st.sampled_from(["submit", "consume", "release", "advance"]), st.integers(0, 3),
                           st.dictionaries(st.integers(0, 1), st.floats(0.2, 30.0), min_size=1, max_size=2)),
                 min_size=1, max_size=30),
)
def test_renyi_block_invariant_under_random_operations(kind, ops):
    orders = np.array([1.5, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    s = {"fcfs": lambda: dp.FCFS(), "dpf-n": lambda: dp.DPF(n=3), "dpf-t": lambda: dp.DPF(t=5.0)}[kind]()
    for b in range(2):
        s.add_block(dp.Block(1.0, 1e-6, orders=orders, block_id=b), now=0)
    now = 0.0
    for i, (op, k, demand) in enumerate(ops):
        now += 1.0
        held = [c for c in s.granted if c.state == "allocated"]
        if op == "submit":
            # a Gaussian mechanism's curve alpha / (2 sigma^2), sigma from the generated value
            s.submit(dp.Claim({b: orders / (2 * sig**2) for b, sig in demand.items()}, claim_id=i, timeout=4.0),
                     now=now)
        elif op == "consume" and held:
            s.consume(held[k % len(held)].claim_id)
        elif op == "release" and held:
            s.release(held[k % len(held)].claim_id)
        elif op == "advance":
            s.advance(now)
        for b in range(2):
            blk = s.block(b)
            blk.check_invariant()
            # (eps_G, delta_G)-DP is kept: at some order, allocated + consumed <= eps_G(alpha)
            assert np.any(blk.allocated + blk.consumed <= blk.capacity + 1e-9)


def test_numpy_scalars_and_strings_are_exact_amounts():
    blk = dp.Block(np.float64(1.0), block_id=0, unlocked="all")
    for amount in (np.float64(0.25), np.float32(0.25), "0.25", 0.25):
        assert dp.allocate(dp.Claim({0: amount}), {0: blk})
    assert blk.unlocked == 0.0 and blk.allocated == 1.0
    blk.check_invariant()
