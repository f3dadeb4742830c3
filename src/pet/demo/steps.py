"""The steps of ``pet demo``, each run by both parties in lock-step.

A step is ``fn(ctx) -> StepOutcome``; both parties call the same steps in the same order over
one peer channel (and, for MPC steps, a session with the dealer). Each outcome says what the
step computed and what this party learned beyond its own input.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

from pet.demo.data import customer_tables

__all__ = ["StepContext", "StepOutcome", "STEPS", "step_names"]


@dataclass
class StepContext:
    party: int
    channel: object                      # peer channel
    session: object = None               # () -> the party's pet.mpc.Session (created once, on first use)
    state: dict = field(default_factory=dict)  # results shared between steps of this party
    workdir: str = ""
    log: object = print


@dataclass
class StepOutcome:
    result: str
    learned: str
    extra: dict = field(default_factory=dict)


def link_step(ctx: StepContext) -> StepOutcome:
    """Check the link: a 16 MB array there and back, compared, with the throughput."""
    import time

    import numpy as np

    data = np.arange(2 << 20, dtype=np.uint64)  # public test pattern
    start = time.perf_counter()
    if ctx.party == 0:
        ctx.channel.send(data)
        echo = ctx.channel.recv()
        if not np.array_equal(echo, data):
            raise RuntimeError("the echoed array differs from the one sent")
    else:
        ctx.channel.send(ctx.channel.recv())
    seconds = time.perf_counter() - start
    rate = 2 * data.nbytes / seconds / 1e9
    return StepOutcome(result=f"16 MB round trip checked, {rate:.2f} GB/s", learned="nothing (public test data)",
                       extra={"GB/s": round(rate, 3)})


def psi_step(ctx: StepContext) -> StepOutcome:
    """Align the two customer tables on ``id`` by ECDH-PSI."""
    from pet.psi import align

    tables = customer_tables()
    own = tables[ctx.party]
    rows = align(ctx.channel, own, "id", party=ctx.party)
    ctx.state["aligned"] = rows
    other = len(tables[1 - ctx.party])
    return StepOutcome(
        result=f"{len(rows)} common customers aligned (tables of {len(tables[0])} and {len(tables[1])})",
        learned=f"which of its own {len(own)} ids are common ({len(rows)}), and the peer's table size ({other})",
        extra={"rows": len(rows)},
    )


def mpc_step(ctx: StepContext) -> StepOutcome:
    """Secret-shared statistic across the aligned rows: the average ``spend`` (party 1's
    column) of customers with a positive label (party 0's column), revealed to both."""
    import numpy as np

    import pet.mpc as mpc

    aligned = ctx.state["aligned"]
    session = ctx.session()
    label = session.share(aligned["label"].to_numpy(float) if ctx.party == 0 else None, owner=0)
    spend = session.share(aligned["spend"].to_numpy(float) if ctx.party == 1 else None, owner=1)
    average = mpc.divide((label * spend).sum(), label.sum())
    value = float(np.ravel(session.reveal(average))[0])
    return StepOutcome(result=f"average spend of positive customers: {value:.2f} (computed on shares)",
                       learned="the average only (no row's label or spend)", extra={"average": value})


def dp_step(ctx: StepContext) -> StepOutcome:
    """Party 0 releases DP counts charged to a durable budget ledger; the query that would
    over-spend the block is refused before anything is computed."""
    from pet.dp import BudgetLedger, discrete_laplace_mechanism

    if ctx.party != 0:
        return StepOutcome(result="(party 0's step)", learned="nothing")
    aligned = ctx.state.get("aligned")
    count = int(aligned["label"].sum()) if aligned is not None else 0
    path = f"{ctx.workdir or tempfile.mkdtemp(prefix='pet-demo-')}/budget.sqlite"
    with BudgetLedger(path) as ledger:
        ledger.add_block("2026-11", 1.0)
        answers, refused = [], 0
        for i, epsilon in enumerate((0.5, 0.4, 0.3)):
            claim = f"positives-{i}"
            if not ledger.allocate(claim, {"2026-11": epsilon}):
                refused += 1
                continue
            answers.append((epsilon, discrete_laplace_mechanism(count, 1, epsilon)))
            ledger.consume(claim)
        ledger.check()
    shown = ", ".join(f"{a} (eps={e})" for e, a in answers)
    return StepOutcome(
        result=f"noisy positives among common customers: {shown}; {refused} over-spending query refused",
        learned="the noisy counts it released (it holds the labels)",
        extra={"answers": [a for _, a in answers], "refused": refused, "true": count},
    )


#: Demo steps in order: name -> (function, needs an MPC session).
STEPS = {
    "link": (link_step, False),
    "psi": (psi_step, False),
    "mpc": (mpc_step, True),
    "dp": (dp_step, False),
}


def step_names() -> list[str]:
    return list(STEPS)
