"""Where the rounds and bytes of one vertical XGBoost tree go, by phase (a diagnostic, not a
benchmark): party 0's MPC rounds, bytes between the parties (both directions) and bytes
from the dealer (both parties), per phase of :mod:`pet.ml.booster`, averaged per tree.

The set-up phases (once per fit) are divided by the number of trees like the others.

Run:  PYTHONPATH=src python benchmarks/_xgb_phases.py [rows] [trees] [link]
e.g.  ... benchmarks/_xgb_phases.py 10000 2 rtt=20ms,bw=100mbit
"""

from __future__ import annotations

import sys
import threading
import time
from collections import defaultdict

import numpy as np

from pet import mpc
from pet.ml import booster
from pet.transport import Link

PHASES = [("setup: agree", "_agree"), ("setup: targets", "_prepare_targets"),
          ("setup: candidate matrix", "candidate_matrix"),
          ("setup: both matrices", "candidate_matrices"), ("first gradients", "_first_gradients"),
          ("gradients", "_gradients"), ("histograms", "_level_histograms"), ("histograms: unpack", "_unpack"),
          ("gain: reciprocal", "reciprocal"),
          ("gain: argmax tournament", "tournament"), ("gain: all", "_gains"), ("reveal choice", "_reveal_choice"),
          ("share directions", "_right_words"), ("membership", "_children_words"), ("split level: all", "_split_level"),
          ("last level: all", "_last_level"), ("leaf weights (old)", "_leaf_weights")]


def _instrument(acc):
    local = threading.local()

    def wrap(label, fn):
        def inner(session, *a, **k):
            if getattr(local, "party", None) is None:
                local.party = session.party if hasattr(session, "party") else session.session.party
            s = session if hasattr(session, "channel") else session.session
            before = (s.rounds, s.channel.stats.bytes_sent + s.channel.stats.bytes_received,
                      s.source.channel.stats.bytes_received, time.perf_counter())
            out = fn(session, *a, **k)
            after = (s.rounds, s.channel.stats.bytes_sent + s.channel.stats.bytes_received,
                     s.source.channel.stats.bytes_received, time.perf_counter())
            acc[s.party][label] += np.array(after) - np.array(before)
            return out
        return inner

    for label, name in PHASES:
        fn = getattr(booster, name, None)
        if fn is None:
            continue
        setattr(booster, name, wrap(label, fn) if name not in ("reciprocal", "tournament") else _wrap_x(acc, label, fn))


def _wrap_x(acc, label, fn):
    def inner(x, *a, **k):
        s = x.session
        before = (s.rounds, s.channel.stats.bytes_sent + s.channel.stats.bytes_received,
                  s.source.channel.stats.bytes_received, time.perf_counter())
        out = fn(x, *a, **k)
        after = (s.rounds, s.channel.stats.bytes_sent + s.channel.stats.bytes_received,
                 s.source.channel.stats.bytes_received, time.perf_counter())
        acc[s.party][label] += np.array(after) - np.array(before)
        return out
    return inner


def main(rows=10_000, trees=2, link=None):
    from sklearn.datasets import make_classification

    from pet.ml import VerticalXGBClassifier

    X, y = make_classification(n_samples=rows, n_features=20, n_informative=10, random_state=7)
    acc = [defaultdict(lambda: np.zeros(4)), defaultdict(lambda: np.zeros(4))]
    _instrument(acc)
    params = dict(n_estimators=trees, max_depth=5, learning_rate=0.3, max_bin=32, base_score=0.5)

    def prog(s):
        stamps = [time.perf_counter()]
        r0 = s.rounds
        b0 = s.channel.stats.bytes_sent + s.channel.stats.bytes_received
        d0 = s.source.channel.stats.bytes_received
        marks = []

        def cb(done, total):
            stamps.append(time.perf_counter())
            marks.append((s.rounds, s.channel.stats.bytes_sent + s.channel.stats.bytes_received,
                          s.source.channel.stats.bytes_received))

        est = VerticalXGBClassifier(s, **params, callback=cb)
        cols = slice(0, 10) if s.party == 0 else slice(10, 20)
        est.fit(X[:, cols], y if s.party == 0 else None)
        fit_acc = {k: v.copy() for k, v in acc[s.party].items()}
        proba = est.predict_proba(X[:, cols])
        return stamps, marks, (r0, b0, d0), proba, fit_acc

    t0 = time.perf_counter()
    res = mpc.run_local(prog, link=link, timeout=7200)
    wall = time.perf_counter() - t0
    stamps, marks, start, proba, fit_acc = res[0]
    acc = [res[0][4], res[1][4]]
    from sklearn.metrics import roc_auc_score
    per_tree = np.diff(np.array([start] + marks, dtype=float), axis=0)[1:] if len(marks) > 1 else \
        np.diff(np.array([start] + marks, dtype=float), axis=0)
    dealer1 = res[1][1]
    import os
    print(f"rows {rows}, trees {trees}, link {link}, wall {wall:.1f} s, train AUC {roc_auc_score(y, proba[:, 1]):.5f}, "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    steady = np.median(np.diff(stamps[1:])) if len(stamps) > 2 else stamps[1] - stamps[0]
    print(f"seconds per tree (steady): {steady:.2f}  first tree: {stamps[1] - stamps[0]:.2f}")
    print(f"per tree (steady trees): rounds {per_tree[:, 0].mean():.0f}, MB between parties "
          f"{per_tree[:, 1].mean() / 1e6:.2f}, MB from dealer (party 0) {per_tree[:, 2].mean() / 1e6:.2f}, "
          f"(party 1) {_dealer_mb(dealer1):.2f}")
    print(f"{'phase (party 0, per tree)':28s} {'rounds':>8s} {'MB peer':>9s} {'MB dealer0':>11s} {'sec':>7s}")
    for label, _ in PHASES:
        if label not in acc[0]:
            continue
        v = acc[0][label] / trees
        d1 = acc[1][label][2] / trees
        print(f"{label:28s} {v[0]:8.0f} {v[1] / 1e6:9.2f} {(v[2]) / 1e6:11.2f} {v[3]:7.2f}"
              f"   (dealer->1 {d1 / 1e6:.2f})")


def _dealer_mb(marks):
    """Mean MB from the dealer per steady tree, from one party's per-tree counters."""
    if len(marks) < 2:
        return float("nan")
    return float(np.diff(np.array([list(m) for m in marks], dtype=float), axis=0)[:, 2].mean() / 1e6)


if __name__ == "__main__":
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    trees = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    link = Link.parse(sys.argv[3]) if len(sys.argv) > 3 else None
    main(rows, trees, link)
