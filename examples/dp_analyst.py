"""DP budget as a shared resource: two processes (two analysts) charge the same durable
ledger at once; the block is never over-spent. Run together, in two terminals:

    python examples/dp_analyst.py --analyst 0 --ledger /tmp/budget.sqlite
    python examples/dp_analyst.py --analyst 1 --ledger /tmp/budget.sqlite
"""

import argparse

from pet.dp import BudgetLedger, laplace_mechanism
from pet.errors import InputError

parser = argparse.ArgumentParser()
parser.add_argument("--analyst", type=int, default=0)
parser.add_argument("--ledger", default="budget.sqlite")
args = parser.parse_args()

with BudgetLedger(args.ledger) as ledger:
    if "2026-11" not in ledger.block_ids():
        try:
            ledger.add_block("2026-11", 1.0)
        except InputError:  # the other analyst created it first
            pass
    granted = 0
    for i in range(10):  # ten queries at epsilon 0.1 each: the two analysts share 1.0
        if ledger.allocate(f"analyst{args.analyst}-q{i}", {"2026-11": 0.1}):
            print(f"analyst {args.analyst}, query {i}: noisy count {laplace_mechanism(1234.0, 1.0, 0.1):.1f}")
            ledger.consume(f"analyst{args.analyst}-q{i}")
            granted += 1
    ledger.check()
print(f"analyst {args.analyst}: {granted} queries granted")
