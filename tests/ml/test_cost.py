"""Rounds and bytes per tree of the secure booster: the WAN-designed steps stay in place.

Measured at 2,000 rows, 3 + 3 features, depth 4, max_bin 16 (exact counts: every shape is
public). Before the per-node last level and the message-free directions a tree took 483
rounds and 5.39 MB sent by party 0; after them 448 and 4.52 MB; with the piecewise sigmoid
(``pet.mpc.sigmoid(method="piecewise")``: 24 rounds instead of 41, half the bytes) 431 and
3.85 MB; with the split flag selected from per-candidate bits by the one-hot instead of a
comparison after the argmax (8 rounds less per level) 399 and 3.93 MB; with g and h packed
into one ring word for the histograms (half the per-row openings and histogram messages,
9 rounds more per level to unpack the n-independent sums) 435 and 3.63 MB (at 10^5 rows
the packing saves about 70 MB per tree for 45 rounds); with the node memberships kept as
XOR-shared bit-packed words (ANDs and B2A instead of matrix-triple and Beaver products on
``n x nodes`` ring elements) and the packed sums unpacked by two exact truncations instead
of a truncation and an MSB (7 rounds less per level) 411 and 3.42 MB (at 10^5 rows: 346 ->
285 MB per tree between the parties); with the gains' reciprocal of the non-negative
``H + lambda`` without sign handling (``reciprocal(positive=True)``, 2 rounds less per
level) 403 and 3.33 MB; with the memberships' bits multiplied by the gradients and by the
leaf weights in one round each (:mod:`pet.mpc.bit_products`: B2A and product in one opening,
no ``n x bits`` ring elements opened; at 10^5 rows 286 -> 194 MB per tree) 399 and 2.90 MB."""

import numpy as np

import pet.mpc as mpc
from pet.ml import VerticalXGBClassifier


def _data():
    """2,000 rows, 6 features (3 per party), a label from features 0 and 4."""
    rng = np.random.default_rng(0)  # not-secret: test data
    X = rng.normal(size=(2000, 6))
    return X, (X[:, 0] + X[:, 4] > 0).astype(float)


def test_rounds_and_bytes_per_tree():
    X, y = _data()

    def prog(s):
        marks = []
        est = VerticalXGBClassifier(s, n_estimators=3, max_depth=4, max_bin=16,
                                    callback=lambda d, t: marks.append((s.rounds, s.channel.stats.bytes_sent)))
        est.fit(X[:, :3] if s.party == 0 else X[:, 3:], y if s.party == 0 else None)
        return np.diff(np.array(marks), axis=0)  # trees 2 and 3

    for per_tree in mpc.run_local(prog, timeout=600):
        rounds, sent = per_tree[:, 0], per_tree[:, 1]
        assert np.all(rounds <= 393), rounds  # 391: the gains' reciprocal on 32-bit lanes (399 before)
        assert np.all(sent <= 2.55e6), sent  # 2.50 MB (2.90 before)


def test_setup_and_first_tree():
    """The set-up and the first tree: both parties' masked candidate matrices in one exchange
    (:func:`pet.mpc.private_matrix.setup_together`; over a link, both directions at once)
    and the first tree's gradients computed by the label party, which knows every margin
    then (no sigmoid in MPC): 408 rounds and 4.08 MB sent by party 0 before, 379 and 2.96 MB
    after, 371 and 2.56 MB with the gains' reciprocal on 32-bit lanes (same data as above, up
    to the first tree's callback)."""
    X, y = _data()

    def prog(s):
        marks = []
        r0, b0 = s.rounds, s.channel.stats.bytes_sent
        est = VerticalXGBClassifier(s, n_estimators=1, max_depth=4, max_bin=16,
                                    callback=lambda d, t: marks.append((s.rounds, s.channel.stats.bytes_sent)))
        est.fit(X[:, :3] if s.party == 0 else X[:, 3:], y if s.party == 0 else None)
        return marks[0][0] - r0, marks[0][1] - b0

    for rounds, sent in mpc.run_local(prog, timeout=600):
        assert rounds <= 373, rounds  # 371 with the reciprocal on lanes
        assert sent <= 2.6e6, sent  # 2.56 MB


def test_prediction_bytes():
    """Prediction selects the reached leaves on XOR-shared bit words (one AND per depth, a
    B2A, one matrix product): 0.91 MB sent by each party for 2,000 rows x 3 trees of depth 4
    (3.55 MB with Beaver products on ``n x T (2^D - 1)`` ring elements before), 8 rounds."""
    X, y = _data()

    def prog(s):
        est = VerticalXGBClassifier(s, n_estimators=3, max_depth=4, max_bin=16)
        cols = slice(0, 3) if s.party == 0 else slice(3, 6)
        est.fit(X[:, cols], y if s.party == 0 else None)
        r0, b0 = s.rounds, s.channel.stats.bytes_sent
        est.predict_proba(X[:, cols])
        return s.rounds - r0, s.channel.stats.bytes_sent - b0

    for rounds, sent in mpc.run_local(prog, timeout=600):
        assert rounds <= 8, rounds
        assert sent <= 1.0e6, sent


def test_first_tree_prefetch_is_consumed_in_order():
    """The first tree's prefetched bit-product material (pet.ml.booster._prefetch_first_tree)
    is exactly what the tree asks for: nothing is left over in the dealer client after the
    fit (a mismatch would leave it at the head of the queue, and every later prefetched
    request would then be fetched again on demand)."""
    from pet.ml import booster

    rng = np.random.default_rng(1)  # not-secret: test data
    n = 500
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] - X[:, 3] > 0).astype(float)

    def prog(s):
        asked = []
        original = s.source.prefetch
        s.source.prefetch = lambda specs: (asked.append(list(specs)), original(specs))[1]
        est = VerticalXGBClassifier(s, n_estimators=2, max_depth=3, max_bin=8)
        est.fit(X[:, :2] if s.party == 0 else X[:, 2:], y if s.party == 0 else None)
        return asked[:3], list(s.source._ready)

    for asked, left in mpc.run_local(prog, timeout=600):
        assert asked == [[spec] for spec in booster._row_product_specs(n, 3)]
        assert left == []
