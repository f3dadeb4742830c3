"""Dealer-free vs dealer vertical XGBoost per tree, in one process (two party threads).

    .venv/bin/python benchmarks/_xgb_dealer_free.py ROWS TREES ot|dealer

10 + 10 features (sklearn ``make_classification``, 10 informative), depth 5, max_bin 32,
learning rate 0.3; prints the fit time of party 0 and the process's CPU seconds. Both
parties share one interpreter, so SEAL calls (which hold the GIL) of the two parties do
not overlap: two processes would be faster for the dealer-free run.
"""

import resource
import sys
import time

from sklearn.datasets import make_classification

import pet.mpc as mpc
from pet.ml import VerticalXGBClassifier


def main(n: int, trees: int, correlations: str) -> None:
    X, y = make_classification(n_samples=n, n_features=20, n_informative=10, random_state=3)
    parts = [X[:, :10], X[:, 10:]]

    def prog(session):
        t = time.perf_counter()
        VerticalXGBClassifier(session, n_estimators=trees, max_depth=5, max_bin=32, learning_rate=0.3).fit(
            parts[session.party], y if session.party == 0 else None)
        return time.perf_counter() - t

    fit = mpc.run_local(prog, correlations=correlations, timeout=7200)[0]
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{correlations} n={n} trees={trees}: fit {fit:.1f} s ({fit / trees:.2f} s per tree), "
          f"CPU {ru.ru_utime + ru.ru_stime:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
