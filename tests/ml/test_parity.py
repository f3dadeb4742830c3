"""Parity of the secret-shared booster with plaintext xgboost (tree_method="hist", same
hyper-parameters and max_bin) on data split vertically between the two parties."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification, make_regression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from pet.ml import VerticalXGBClassifier, VerticalXGBRegressor
from tests.ml._util import PARAMS, rmse, vertical_fit_predict, xgb_oracle


def _split(X, y, seed=0):
    return train_test_split(X, y, test_size=0.3, random_state=seed)


def _classify(X, y, cut, label_party=0, params=PARAMS):
    Xtr, Xte, ytr, yte = _split(X, y)
    parts_tr, parts_te = [Xtr[:, :cut], Xtr[:, cut:]], [Xte[:, :cut], Xte[:, cut:]]
    ours, other, _ = vertical_fit_predict(VerticalXGBClassifier, dict(params, base_score=0.5),
                                          parts_tr, ytr, parts_te, label_party=label_party)
    assert other is None
    ref = xgb_oracle("classifier", params, Xtr, ytr, Xte, 0.5)
    return roc_auc_score(yte, ours), roc_auc_score(yte, ref)


def _regress(X, y, cut, params=PARAMS):
    Xtr, Xte, ytr, yte = _split(X, y)
    base = float(np.mean(ytr))
    ours, other, _ = vertical_fit_predict(VerticalXGBRegressor, dict(params, base_score=base),
                                          [Xtr[:, :cut], Xtr[:, cut:]], ytr, [Xte[:, :cut], Xte[:, cut:]])
    assert other is None
    ref = xgb_oracle("regressor", params, Xtr, ytr, Xte, base)
    return rmse(yte, ours), rmse(yte, ref)


def test_breast_cancer_auc_within_0005():
    X, y = load_breast_cancer(return_X_y=True)  # 30 features: 15 + 15, label at party 0
    ours, ref = _classify(X, y, 15)
    assert abs(ours - ref) <= 0.005, (ours, ref)


def test_make_classification_auc_within_0005():
    X, y = make_classification(n_samples=20000, random_state=0)  # 20 features: 10 + 10
    ours, ref = _classify(X, y, 10)
    assert abs(ours - ref) <= 0.005, (ours, ref)


def test_diabetes_rmse_within_2_percent():
    X, y = load_diabetes(return_X_y=True)  # 10 features: 5 + 5
    ours, ref = _regress(X, y, 5)
    assert abs(ours - ref) <= 0.02 * ref, (ours, ref)


def test_make_regression_rmse_within_2_percent():
    X, y = make_regression(n_samples=3000, n_features=10, noise=10.0, random_state=0)
    ours, ref = _regress(X, y, 5)
    assert abs(ours - ref) <= 0.02 * ref, (ours, ref)


def test_label_at_party_1():
    X, y = load_breast_cancer(return_X_y=True)
    ours, ref = _classify(X, y, 15, label_party=1, params=dict(PARAMS, n_estimators=5, max_depth=3))
    assert abs(ours - ref) <= 0.005, (ours, ref)


@pytest.mark.parametrize("cut", [1, 29])
def test_party_with_a_single_feature(cut):
    X, y = load_breast_cancer(return_X_y=True)
    ours, ref = _classify(X, y, cut, params=dict(PARAMS, n_estimators=5, max_depth=3))
    assert abs(ours - ref) <= 0.005, (ours, ref)


def test_missing_values_auc_within_0005():
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(5)  # not-secret: test data
    X = X.copy()
    X[rng.random(X.shape) < 0.1] = np.nan
    ours, ref = _classify(X, y, 15, params=dict(PARAMS, n_estimators=5, max_depth=3))
    assert abs(ours - ref) <= 0.005, (ours, ref)


def test_regression_beyond_65536_rows_uses_the_public_scale():
    """n + lambda > 2^16: g, h, lambda, min_child_weight are divided by a power of two."""
    X, y = make_regression(n_samples=70000, n_features=4, noise=5.0, random_state=1)
    params = dict(PARAMS, n_estimators=3, max_depth=2, max_bin=8)
    base = float(np.mean(y))
    ours, other, _ = vertical_fit_predict(VerticalXGBRegressor, dict(params, base_score=base),
                                          [X[:, :2], X[:, 2:]], y, [X[:, :2], X[:, 2:]])
    ref = xgb_oracle("regressor", params, X, y, X, base)
    assert other is None
    assert abs(rmse(y, ours) - rmse(y, ref)) <= 0.02 * rmse(y, ref), (rmse(y, ours), rmse(y, ref))
