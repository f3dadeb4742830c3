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
from tests.ml._util import PARAMS, rmse


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


def test_secure_booster_follows_the_reference():
    """Same root splits and (nearly) the same training margins as the float64 reference."""
    Xtr, _, ytr, _ = _breast()
    Xtr, ytr = Xtr[:200], ytr[:200]
    kw = dict(objective="binary:logistic", n_estimators=2, max_depth=3, learning_rate=0.3, reg_lambda=1.0,
              gamma=0.0, min_child_weight=1.0, max_bin=16, base_score=0.5)
    parts = [Xtr[:, :15], Xtr[:, 15:]]

    def prog(session):
        st = train(session, parts[session.party], ytr if session.party == 0 else None, **kw)
        return st

    st0, st1 = mpc.run_local(prog)
    b = [Binner(16).fit(p) for p in parts]
    C = np.hstack([b[0].indicator(parts[0]), b[1].indicator(parts[1])])
    trees, margin = fit_reference(C, ytr, base_margin=0.0,
                                  **{k: v for k, v in kw.items() if k not in ("max_bin", "base_score")})
    m0 = b[0].n_candidates
    ref_owner = (trees[0]["cand"][0] >= m0).astype(int)
    assert st0["owner"][0, 0] == st1["owner"][0, 0] == ref_owner
    own = st0 if ref_owner == 0 else st1
    j = trees[0]["cand"][0] - (m0 if ref_owner else 0)
    assert own["feature"][0, 0] == b[ref_owner].feature[j]
    assert own["cut"][0, 0] == b[ref_owner].cut[j]
    other = st1 if ref_owner == 0 else st0
    assert other["feature"][0, 0] == -1 and np.isnan(other["cut"][0, 0])
    leaves = mpc.ring.decode(st0["leaf_share"] + st1["leaf_share"], st0["frac"])
    assert rmse(np.sort(leaves[0]), np.sort(trees[0]["leaf"])) < 1e-3
