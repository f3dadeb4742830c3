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

    def tables(self):
        """The demo's two customer tables (loaded once; a party uses only its own)."""
        if "tables" not in self.state:
            self.state["tables"] = customer_tables()
        return self.state["tables"]


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

    tables = ctx.tables()
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


def _split(n: int):
    """Public 70/30 train/test split of the aligned rows (same on both sides)."""
    import numpy as np

    order = np.random.default_rng(7).permutation(n)  # not-secret: public split of aligned rows
    cut = int(0.7 * n)
    return np.sort(order[:cut]), np.sort(order[cut:])


def xgb_step(ctx: StepContext) -> StepOutcome:
    """Vertical XGBoost on the aligned rows: party 0 has 15 features and the label, party 1
    the other 15; 10 trees of depth 3 trained on shares; test AUC at party 0."""
    from sklearn.metrics import roc_auc_score

    from pet.ml import VerticalXGBClassifier

    aligned = ctx.state["aligned"]
    features = aligned[[c for c in aligned.columns if c.startswith("f")]].to_numpy(float)
    train, test = _split(len(aligned))
    y = aligned["label"].to_numpy()[train] if ctx.party == 0 else None
    model = VerticalXGBClassifier(ctx.session(), n_estimators=10, max_depth=3, learning_rate=0.3, max_bin=32)
    model.fit(features[train], y)
    proba = model.predict_proba(features[test])
    if ctx.party != 0:
        return StepOutcome(result="(scores go to the label party)",
                           learned="which party owns each node's split, and the thresholds of its own splits")
    y_test = aligned["label"].to_numpy()[test]
    auc = roc_auc_score(y_test, proba[:, 1])
    reference = _plaintext_xgb_auc(aligned, train, test)
    return StepOutcome(result=f"test AUC {auc:.4f} (plaintext xgboost on the joined data: {reference:.4f})",
                       learned="the test scores; per node, the split owner; its own splits' features and thresholds",
                       extra={"auc": auc, "plaintext_auc": reference})


def _plaintext_xgb_auc(aligned, train, test) -> float:
    """Demo-only reference: plaintext xgboost on the *public* demo data joined in the clear."""
    import xgboost
    from sklearn.metrics import roc_auc_score

    t0, t1 = customer_tables()  # demo-only reference: loads the public data again
    joined = aligned[["id"]].merge(t0, on="id").merge(t1.drop(columns=["region", "spend"]), on="id")
    x = joined[[c for c in joined.columns if c.startswith("f")]].to_numpy(float)
    y = joined["label"].to_numpy()
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3, learning_rate=0.3, max_bin=32,
                                  tree_method="hist", n_jobs=1)
    model.fit(x[train], y[train])
    return float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))


SQL_REPORT = """
SELECT l.region, COUNT(*) AS customers, SUM(c.label) AS positives, AVG(l.spend) AS avg_spend,
       MAX(l.spend) AS max_spend
FROM clinic AS c JOIN lab AS l ON c.id = l.id
WHERE c.f00 > 11
GROUP BY l.region
ORDER BY l.region
"""


def sql_step(ctx: StepContext) -> StepOutcome:
    """A report across both tables: join by PSI, filter at party 0, GROUP BY party 1's
    region, aggregates on shares; revealed to both."""
    from pet.sql import query

    tables = ctx.tables()
    own = {"clinic": tables[0][["id", "label", "f00"]]} if ctx.party == 0 else \
        {"lab": tables[1][["id", "region", "spend"]]}
    result = query(ctx.session(), SQL_REPORT, own)
    rows = "; ".join(f"region {int(r.region)}: {int(r.customers)} customers, {int(r.positives)} positive, "
                     f"avg spend {r.avg_spend:.1f}" for r in result.itertuples())
    return StepOutcome(result=rows, learned="the report; the join size after its own filter; the number of regions",
                       extra={"report": result.to_dict(orient="list")})


def leiden_step(ctx: StepContext) -> StepOutcome:
    """Leiden communities of the karate club, split as in the reference fixtures."""
    from pet.demo.data import karate_split
    from pet.graph import leiden

    nodes, edges = karate_split(ctx.party)
    labels = leiden(ctx.session(), nodes, edges, seed=0)
    return StepOutcome(result=f"{labels.nunique()} communities among its {len(nodes)} nodes",
                       learned="its own nodes' communities, the foreign endpoints' communities, the number "
                               "of communities",
                       extra={"labels": {str(k): int(v) for k, v in labels.items()}})


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
    "xgb": (xgb_step, True),
    "sql": (sql_step, True),
    "leiden": (leiden_step, True),
    "dp": (dp_step, False),
}


def step_names() -> list[str]:
    return list(STEPS)
