"""The plaintext reference of the algorithm against xgboost, and binning against
xgboost's own cuts; the secure booster against the reference (same splits)."""

from __future__ import annotations

import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import pet.mpc as mpc
from pet.ml._plain import fit_reference, predict_reference
from pet.ml.binning import Binner, quantile_cuts
from pet.ml.booster import train
from tests.ml._util import PARAMS


def test_cuts_equal_xgboost_for_few_distinct_values():
    rng = np.random.default_rng(1)  # not-secret: test data
    col = rng.integers(0, 20, size=500).astype(float)
    d = xgb.QuantileDMatrix(col.reshape(-1, 1), label=np.zeros(500), max_bin=32)
    _, values = d.get_quantile_cut()
    # xgboost: [lower bound, cuts..., upper bound]; "x < cut" splits
    np.testing.assert_allclose(quantile_cuts(col, 32), values[1:-1])


def test_quantile_cuts_close_to_xgboost():
    rng = np.random.default_rng(2)  # not-secret: test data
    col = rng.normal(size=5000)
    d = xgb.QuantileDMatrix(col.reshape(-1, 1), label=np.zeros(5000), max_bin=16)
    _, values = d.get_quantile_cut()
    ours = quantile_cuts(col, 16)
    assert len(ours) == 15 and len(values) - 2 == 15
    # same bins up to one quantile step: compare the ranks of the cuts
    ranks_ours = np.searchsorted(np.sort(col), ours) / col.size
    ranks_xgb = np.searchsorted(np.sort(col), values[1:-1]) / col.size
    assert np.max(np.abs(ranks_ours - ranks_xgb)) < 0.02


def _breast():
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0)


def test_reference_matches_xgboost_with_missing_values():
    Xtr, Xte, ytr, yte = _breast()
    rng = np.random.default_rng(3)  # not-secret: test data
    Xtr, Xte = Xtr.copy(), Xte.copy()
    Xtr[rng.random(Xtr.shape) < 0.15] = np.nan
    Xte[rng.random(Xte.shape) < 0.15] = np.nan
    b = Binner(32).fit(Xtr)
    trees, _ = fit_reference(b.indicator(Xtr), ytr, objective="binary:logistic", base_margin=0.0,
                             **{k: v for k, v in PARAMS.items() if k != "max_bin"})
    ours = roc_auc_score(yte, predict_reference(b.indicator(Xte), trees, PARAMS["max_depth"], 0.0))
    ref = xgb.XGBClassifier(**PARAMS, tree_method="hist", base_score=0.5, n_jobs=1).fit(Xtr, ytr)
    assert abs(ours - roc_auc_score(yte, ref.predict_proba(Xte)[:, 1])) <= 0.01


def _separated_data(n=300, seed=5):
    """Two parties' columns (3 + 3 independent features, 10 distinct values each) and a
    label driven by a few of them with different strengths: best splits are well separated
    from the runners-up (checked by :func:`_gain_gaps`), so fixed-point noise cannot flip a
    choice."""
    rng = np.random.default_rng(seed)  # not-secret: test data
    X = rng.integers(0, 10, size=(n, 6)).astype(float)
    logit = 1.6 * (X[:, 4] - 4.5) - 0.8 * (X[:, 0] - 4.5) + 0.35 * (X[:, 2] - 4.5)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(float)
    return [X[:, :3], X[:, 3:]], y


def _node_gains(C, y, trees, kw):
    """{(tree, node): (rows of the node, loss change of every candidate)} for every split
    node of the reference, recomputed here with explicit per-node loops (not with
    pet.ml._plain's matrix code)."""
    lam, hmin = kw["reg_lambda"], max(kw["min_child_weight"], 1e-6)
    out = {}
    for t, tree in enumerate(trees):
        _, margin = fit_reference(C, y, **dict(kw, n_estimators=t)) if t else (None, np.zeros(len(y)))
        p = 1.0 / (1.0 + np.exp(-margin))
        g, h = p - y, p * (1.0 - p)
        rows = [np.ones(len(y), bool)]
        for node, (cand, split) in enumerate(zip(tree["cand"], tree["split"])):
            r = rows[node]
            G, H = g[r].sum(), h[r].sum()
            chg = []
            for j in range(C.shape[1]):
                left = r & (C[:, j] == 1)
                GL, HL = g[left].sum(), h[left].sum()
                ok = HL >= hmin and H - HL >= hmin
                chg.append(GL ** 2 / (HL + lam) + (G - GL) ** 2 / (H - HL + lam) - G ** 2 / (H + lam)
                           if ok else -np.inf)
            if split:
                out[t, node] = (r, np.array(chg))
                assert int(np.argmax(out[t, node][1])) == cand
            goes_left = (C[:, cand] == 1) if split else np.ones(len(y), bool)
            rows += [r & goes_left, r & ~goes_left]
    return out


def _gain_gaps(C, y, trees, kw):
    """Per split node, (best - second best loss change) / best over the candidates."""
    gaps = []
    for _, chg in _node_gains(C, y, trees, kw).values():
        best, second = np.sort(chg)[::-1][:2]
        gaps.append((best - second) / best)
    return gaps


def _assert_secure_splits(st, trees, binners, C, node_gains, *, ties_ok):
    """Every split flag, every split node's owner/feature/threshold and every leaf weight
    (in place) of the secure booster's state ``st`` against the reference. With
    ``ties_ok``, a split node may instead use another candidate with exactly the same
    loss change (an exact tie, resolved either way: e.g. two cuts whose partitions differ
    only by rows of equal gradient and hessian); where that partition differs from the
    reference's, the node's descendants (splits and leaves) and the later trees (whose
    gradients then differ) are not compared. Returns the number of tie nodes."""
    m0 = binners[0].n_candidates
    split = (st[0]["split_share"] + st[1]["split_share"]).view(np.int64)
    leaves = mpc.ring.decode(st[0]["leaf_share"] + st[1]["leaf_share"], st[0]["frac"])
    ties = 0
    for t, tree in enumerate(trees):
        inner = len(tree["cand"])
        diverged = np.zeros(inner + len(tree["leaf"]), bool)  # level order, leaves last
        for node, cand in enumerate(tree["cand"]):
            if node and diverged[(node - 1) // 2]:
                diverged[node] = True
                continue
            assert split[t, node] == tree["split"][node], f"tree {t} node {node}: split flag"
            if not tree["split"][node]:
                continue  # a pass-through node: its candidate is never used
            where = f"tree {t} node {node}"
            owner = int(st[0]["owner"][t, node])
            assert st[1]["owner"][t, node] == owner, where
            b = binners[owner]
            feature, cut = st[owner]["feature"][t, node], st[owner]["cut"][t, node]
            assert st[1 - owner]["feature"][t, node] == -1 and np.isnan(st[1 - owner]["cut"][t, node]), where
            got = int(np.flatnonzero((b.feature == feature) & (b.cut == cut))[0]) + (m0 if owner else 0)
            if got != cand:
                rows, chg = node_gains[t, node]
                assert ties_ok and abs(chg[got] - chg[cand]) <= 1e-9 * abs(chg[cand]), \
                    f"{where}: candidate {got} instead of the reference's {cand}"
                ties += 1
                diverged[node] = not np.array_equal(C[rows, got], C[rows, cand])
        keep = ~np.array([diverged[(inner + leaf - 1) // 2] for leaf in range(len(tree["leaf"]))])
        assert keep.sum() >= len(keep) // 2, f"tree {t}: too few leaves left to compare"
        np.testing.assert_allclose(leaves[t][keep], tree["leaf"][keep], atol=2e-3, err_msg=f"tree {t} leaves")
        if diverged.any():
            # a tie resolved the other way with a different partition: the rows' margins,
            # hence every later tree's gradients, differ from the reference's from here on
            break
    return ties


def _assert_same_tree(ref, node, k, depth, max_depth, binner, where):
    """xgboost's dumped ``node`` equals the reference's node ``k`` (level order): a split on
    the same feature and threshold with "x < cut" going left (``yes``), or, where the
    reference passes through (all rows left) or has reached ``max_depth``, a leaf with the
    weight of the reference's left-most descendant leaf."""
    if depth == max_depth or not ref["split"][k]:
        assert "leaf" in node, f"{where}: xgboost splits where the reference does not"
        while depth < max_depth:
            k, depth = 2 * k + 1, depth + 1
        assert abs(node["leaf"] - ref["leaf"][k - (2 ** max_depth - 1)]) <= 1e-5, where
        return
    cand = ref["cand"][k]
    assert node.get("split") == f"f{binner.feature[cand]}", f"{where}: {node.get('split')} vs {binner.feature[cand]}"
    assert node["split_condition"] == binner.cut[cand], where
    kids = {c["nodeid"]: c for c in node["children"]}
    _assert_same_tree(ref, kids[node["yes"]], 2 * k + 1, depth + 1, max_depth, binner, f"{where}.L")
    _assert_same_tree(ref, kids[node["no"]], 2 * k + 2, depth + 1, max_depth, binner, f"{where}.R")


def test_reference_trees_equal_xgboost_trees():
    """Every split (feature, threshold) and every leaf of every tree of the plaintext
    reference equals xgboost's dumped trees (``tree_method="hist"``, same hyper-parameters).
    Features with 10 distinct values, so the quantile cuts are exactly xgboost's (see
    :func:`test_cuts_equal_xgboost_for_few_distinct_values`)."""
    import json

    parts, y = _separated_data()
    X = np.hstack(parts)
    kw = dict(objective="binary:logistic", n_estimators=3, max_depth=3, learning_rate=0.3, reg_lambda=1.0,
              gamma=0.0, min_child_weight=1.0)
    b = Binner(16).fit(X)
    trees, _ = fit_reference(b.indicator(X), y, base_margin=0.0, **kw)
    model = xgb.XGBClassifier(**kw, max_bin=16, tree_method="hist", base_score=0.5, n_jobs=1).fit(X, y)
    dumps = [json.loads(d) for d in model.get_booster().get_dump(dump_format="json")]
    assert len(dumps) == len(trees)
    for t, (ref, dump) in enumerate(zip(trees, dumps)):
        _assert_same_tree(ref, dump, 0, 0, kw["max_depth"], b, f"tree {t}")


def test_secure_booster_takes_every_split_of_the_reference():
    """Every node of every tree: owner, feature and threshold of each split, the split /
    pass-through flag, and every leaf weight in place (not sorted), against the float64
    plaintext reference ``pet.ml._plain.fit_reference``.

    The reference is independent of the secure booster's protocol code: plain numpy float64
    on the joint candidate matrix in one process (no shares, no fixed point, no tournament,
    no private-matrix products); only the binning (``Binner``, itself checked against
    xgboost's cuts above) is shared, and the reference's own trees are checked against
    xgboost's by :func:`test_reference_matches_xgboost_with_missing_values` and
    :func:`test_reference_trees_equal_xgboost_trees`. On this data every best split beats
    the runner-up by a wide relative margin (asserted), so the comparison is exact.
    """
    parts, y = _separated_data()
    kw = dict(objective="binary:logistic", n_estimators=3, max_depth=3, learning_rate=0.3, reg_lambda=1.0,
              gamma=0.0, min_child_weight=1.0)

    def prog(session):
        return train(session, parts[session.party], y if session.party == 0 else None, max_bin=16,
                     base_score=0.5, **kw)

    st = mpc.run_local(prog)
    b = [Binner(16).fit(p) for p in parts]
    C = np.hstack([b[0].indicator(parts[0]), b[1].indicator(parts[1])])
    trees, _ = fit_reference(C, y, base_margin=0.0, **kw)
    gaps = _gain_gaps(C, y, trees, dict(kw, base_margin=0.0))
    assert len(gaps) >= 10 and min(gaps) > 0.005, gaps  # no near ties (fixed-point noise in a gain: ~1e-4 relative)

    assert _assert_secure_splits(st, trees, b, C, _node_gains(C, y, trees, dict(kw, base_margin=0.0)),
                                 ties_ok=False) == 0


def test_secure_booster_on_correlated_features_takes_the_reference_split_or_an_exact_tie():
    """The breast-cancer features are strongly correlated: at some nodes two candidates
    (of different features, even of different parties) have exactly the same loss change
    (relative gap 0: their partitions differ only by rows with equal gradient and hessian).
    Fixed-point truncation noise then decides between them, so runs may differ there (and
    generalise differently on new rows); any such choice must be an exact tie, everything
    else equal to the reference."""
    Xtr, _, ytr, _ = _breast()
    Xtr, ytr = Xtr[:200], ytr[:200].astype(float)
    kw = dict(objective="binary:logistic", n_estimators=2, max_depth=3, learning_rate=0.3, reg_lambda=1.0,
              gamma=0.0, min_child_weight=1.0)
    parts = [Xtr[:, :15], Xtr[:, 15:]]

    def prog(session):
        return train(session, parts[session.party], ytr if session.party == 0 else None, max_bin=16,
                     base_score=0.5, **kw)

    st = mpc.run_local(prog)
    b = [Binner(16).fit(p) for p in parts]
    C = np.hstack([b[0].indicator(parts[0]), b[1].indicator(parts[1])])
    trees, _ = fit_reference(C, ytr, base_margin=0.0, **kw)
    gains = _node_gains(C, ytr, trees, dict(kw, base_margin=0.0))
    # every non-tie is well separated here too, so only exact ties can go either way
    gaps = [(best - second) / best for best, second in (np.sort(c)[::-1][:2] for _, c in gains.values())]
    assert all(g == 0 or g > 0.005 for g in gaps), gaps
    _assert_secure_splits(st, trees, b, C, gains, ties_ok=True)
