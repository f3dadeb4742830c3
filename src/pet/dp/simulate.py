"""A discrete-event simulator of PrivateKube's scheduling microbenchmarks (OSDI'21 §6.1).

Workloads (defaults from PrivateKube's microbenchmark scripts):

* ``"single-block"``: one block (ε_G = 1; δ_G = 1e-6 for Rényi) present from t = 0; Poisson
  arrivals at 1/s for 236 s (basic) or 34,289 s (Rényi); every claim demands the block;
  timeout 300 s.
* ``"multi-block"``: a new block every 10 s from t = 0; Poisson arrivals at 12.8/s (basic) or
  234.5/s (Rényi) for 300 s; a claim demands the latest block (w.p. 75 %) or the latest 10
  (capped at the number existing); no timeout; DPF-N blocks retire after 101 s.

Demands: mice ε = 0.01 with probability ``mice_percentage``/100, elephants ε = 0.1, each times a
U(0.9999999, 1) jitter (as the artifact, so exact ties do not occur). Rényi demands are the
Gaussian curve α/(2σ²) with σ = √(2 ln(1.25/10⁻⁹))/ε on the simulator's order grid. Granted
claims consume their budget at once. Time-based policies use T = N × arrival interval, as
the paper's sweeps.

The workload generator is a seeded numpy ``Generator`` (``default_rng``): it only draws the
public, synthetic workload (arrival times and demand sizes), never any privacy noise.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pet._io import atomic_output
from pet.dp.budget import Block, Claim, consume
from pet.dp.schedulers import DPF, FCFS, RoundRobin
from pet.errors import InputError

__all__ = ["SIM_ORDERS", "SimResult", "simulate", "sweep", "write_csv", "plot_sweep", "POLICIES", "PAPER_GRIDS"]

#: The simulator's RDP order grid (PrivateKube ``dpsched`` ``ALPHAS``).
SIM_ORDERS = (1.000001, 1.0001, 1.5, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 20480)
#: Policies understood by :func:`simulate`.
POLICIES = ("fcfs", "dpf-n", "dpf-t", "rr-n", "rr-t")
#: The paper's N grids (microbenchmark scripts).
PAPER_GRIDS = {
    ("single-block", "basic"): (1, 10, 50, 75, 100, 125, 175, 200, 225, 275, 325),
    ("single-block", "renyi"): (1, 1451, 7257, 10885, 14514, 18142, 25399, 29028, 32656, 39913, 47170),
    ("multi-block", "basic"): (1, 10, 50, 75, 100, 125, 175, 210, 275, 325, 375, 750, 1125, 1500, 3000, 6000, 10000),
    ("multi-block", "renyi"): (1, 1451, 7257, 10885, 14514, 18142, 25399, 30479),
}

_DEFAULTS = {
    # (workload, budget): (arrival_interval, duration, timeout)
    ("single-block", "basic"): (1.0, 236.0, 300.0),
    ("single-block", "renyi"): (1.0, 34289.0, 300.0),
    ("multi-block", "basic"): (0.078125, 300.0, None),
    ("multi-block", "renyi"): (0.004264781, 300.0, None),
}

_TASK_DELTA = 1e-9
_BLOCK_DELTA = 1e-6


@dataclass
class SimResult:
    """Outcome of one simulation run."""

    workload: str
    policy: str
    budget: str
    n: int | None
    t: float | None
    seed: int
    arrivals: int
    granted: int
    granted_mice: int
    granted_elephants: int
    rejected: int
    pending: int
    blocks: int
    mean_delay: float
    p99_delay: float
    wall_time: float


def _check_choice(name: str, v: str, options: Sequence[str]) -> str:
    if v not in options:
        raise InputError(f"{name} must be one of {', '.join(options)}; got {v!r}")
    return v


def _make_scheduler(policy: str, n: int | None, t: float | None, block_lifetime: float | None):
    if policy == "fcfs":
        return FCFS()
    if policy in ("dpf-n", "rr-n") and n is None:
        raise InputError(f"policy {policy} needs n")
    if policy in ("dpf-t", "rr-t") and t is None:
        raise InputError(f"policy {policy} needs t")
    if policy == "dpf-n":
        return DPF(n=n, block_lifetime=block_lifetime)
    if policy == "dpf-t":
        return DPF(t=t)
    if policy == "rr-n":
        return RoundRobin(n=n, block_lifetime=block_lifetime)
    return RoundRobin(t=t)


def simulate(
    workload: str = "single-block",
    policy: str = "dpf-n",
    *,
    n: int | None = None,
    t: float | None = None,
    budget: str = "basic",
    mice_percentage: float = 75.0,
    seed: int = 0,
    duration: float | None = None,
    arrival_interval: float | None = None,
    timeout: float | None | str = "default",
    block_interval: float = 10.0,
    elephant_blocks: int = 10,
    block_blocks_percentage: float = 75.0,
) -> SimResult:
    """Run one simulation and return its :class:`SimResult` (granted count etc.).

    Args:
        workload: ``"single-block"`` or ``"multi-block"``.
        policy: one of :data:`POLICIES`.
        n: N for ``dpf-n`` / ``rr-n`` (and, if ``t`` is None, T = N × arrival interval for ``-t``).
        t: T (seconds) for ``dpf-t`` / ``rr-t``.
        budget: ``"basic"`` (ε under basic composition) or ``"renyi"``.
        mice_percentage: share of ε = 0.01 claims (the rest ask ε = 0.1).
        seed: seed of the (public) workload generator.
        duration, arrival_interval, timeout: override the workload defaults (``timeout=None``
            disables timeouts).
    """
    _check_choice("workload", workload, ("single-block", "multi-block"))
    _check_choice("policy", policy, POLICIES)
    _check_choice("budget", budget, ("basic", "renyi"))
    if policy.startswith("rr") and budget == "renyi":
        raise InputError("RoundRobin supports basic budgets only (as in PrivateKube)")
    if not 0 <= float(mice_percentage) <= 100:
        raise InputError(f"mice_percentage must be in [0, 100], got {mice_percentage!r}")
    d_int, d_dur, d_to = _DEFAULTS[(workload, budget)]
    interval = float(arrival_interval) if arrival_interval is not None else d_int
    dur = float(duration) if duration is not None else d_dur
    to = d_to if timeout == "default" else timeout
    if policy.endswith("-t") and t is None and n is not None:
        t = n * interval
    lifetime = (block_interval * elephant_blocks * 1.01
                if (workload == "multi-block" and policy.endswith("-n")) else None)
    sched = _make_scheduler(policy, n, t, lifetime)
    orders = SIM_ORDERS if budget == "renyi" else None

    rng = np.random.default_rng(seed)  # not-secret: public synthetic workload only
    gaps = rng.exponential(interval, size=int(dur / interval * 1.5) + 100)  # not-secret
    arrivals = np.cumsum(gaps)
    arrivals = arrivals[arrivals < dur]
    m = len(arrivals)
    is_mouse = rng.random(m) < mice_percentage / 100.0  # not-secret
    jitter = rng.uniform(0.9999999, 1.0, size=m)  # not-secret
    eps = np.where(is_mouse, 0.01, 0.1) * jitter
    wide = rng.random(m) >= block_blocks_percentage / 100.0  # not-secret

    def new_block(k: int, at: float) -> None:
        blk = Block(1.0, _BLOCK_DELTA if orders else 0.0, orders=orders, block_id=k, created_at=at)
        sched.add_block(blk, at)

    if workload == "single-block":
        block_times = [0.0]
    else:
        block_times = list(np.arange(0.0, dur, block_interval))
    nb = 0
    sim_orders = np.asarray(SIM_ORDERS, dtype=np.float64)
    c_sigma = math.sqrt(2 * math.log(1.25 / _TASK_DELTA))
    started = time.perf_counter()
    blocks = sched._blocks
    for i in range(m):
        at = float(arrivals[i])
        while nb < len(block_times) and block_times[nb] <= at:
            new_block(nb, float(block_times[nb]))
            nb += 1
        k = elephant_blocks if (workload == "multi-block" and wide[i]) else 1
        ids = range(max(0, nb - k), nb)
        e = float(eps[i])
        if orders is None:
            demand = {b: e for b in ids}
        else:
            sigma = c_sigma / e
            curve = sim_orders / (2 * sigma * sigma)
            demand = {b: curve for b in ids}
        claim = Claim(demand, claim_id=i, arrival=at, timeout=to)
        claim.reason = "mouse" if is_mouse[i] else "elephant"
        for c in sched.submit(claim, at):
            consume(c, blocks)
    for c in sched.advance(dur):
        consume(c, blocks)
    wall = time.perf_counter() - started
    sched.check_invariants()
    granted = sched.granted
    delays = np.array([c.granted_at - c.arrival for c in granted]) if granted else np.zeros(1)
    mice = sum(1 for c in granted if is_mouse[c.claim_id])
    return SimResult(
        workload=workload,
        policy=policy,
        budget=budget,
        n=n,
        t=t,
        seed=seed,
        arrivals=m,
        granted=len(granted),
        granted_mice=mice,
        granted_elephants=len(granted) - mice,
        rejected=len(sched.rejected),
        pending=m - len(granted) - len(sched.rejected),
        blocks=nb,
        mean_delay=float(delays.mean()),
        p99_delay=float(np.quantile(delays, 0.99)),
        wall_time=wall,
    )


def sweep(
    workload: str = "single-block",
    policies: Iterable[str] = ("fcfs", "rr-n", "dpf-n"),
    values: Iterable[int] | None = None,
    *,
    budget: str = "basic",
    seed: int = 0,
    **kwargs,
) -> list[SimResult]:
    """Run :func:`simulate` for every policy and N in ``values`` (default: the paper's grid).

    FCFS does not depend on N: it runs once and its result is repeated for each N.
    """
    policies = [_check_choice("policy", p, POLICIES) for p in policies]
    vals = list(PAPER_GRIDS[(workload, budget)] if values is None else values)
    if not vals:
        raise InputError("values must not be empty")
    out = []
    for p in policies:
        if p == "fcfs":
            r = simulate(workload, p, budget=budget, seed=seed, **kwargs)
            for v in vals:
                out.append(SimResult(**{**asdict(r), "n": int(v)}))
            continue
        for v in vals:
            out.append(simulate(workload, p, n=int(v), budget=budget, seed=seed, **kwargs))
    return out



def write_csv(results: Sequence[SimResult], path: str | os.PathLike) -> None:
    """Write results as CSV atomically (temp file + rename)."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        fields = list(SimResult.__dataclass_fields__)
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in results:
            w.writerow(asdict(r))


def plot_sweep(results: Sequence[SimResult], path: str | os.PathLike, *, title: str | None = None) -> None:
    """Plot grants vs N per policy to a PNG, atomically. Needs matplotlib (``pip install pet[plot]``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'pet[plot]'") from None
    path = os.fspath(path)
    fig, ax = plt.subplots(figsize=(6, 4))
    for p in dict.fromkeys(r.policy for r in results):
        rows = sorted((r for r in results if r.policy == p), key=lambda r: r.n or 0)
        ax.plot([r.n for r in rows], [r.granted for r in rows], marker="o", label=p.upper())
    ax.set_xlabel("N (T = N x arrival interval for -t policies)")
    ax.set_ylabel("granted claims")
    if title is None and results:
        title = f"{results[0].workload}, {results[0].budget} budget"
    ax.set_title(title or "")
    ax.legend()
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
