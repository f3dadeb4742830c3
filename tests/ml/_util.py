"""Helpers of the pet.ml tests: run both parties in one process and the xgboost oracle."""

from __future__ import annotations

import numpy as np
import xgboost as xgb

import pet.mpc as mpc

PARAMS = dict(n_estimators=10, max_depth=4, learning_rate=0.3, reg_lambda=1.0, gamma=0.0,
              min_child_weight=1.0, max_bin=32)


def vertical_fit_predict(cls, params, parts_train, y_train, parts_test, *, label_party=0, timeout=900):
    """Fit ``cls`` with party ``p`` holding ``parts_train[p]`` and the label at
    ``label_party``; return ``(predictions at the label party, predictions at the other,
    [estimator_0, estimator_1])``. Classifier predictions are ``predict_proba[:, 1]``."""

    def prog(session):
        p = session.party
        est = cls(session, **params)
        est.fit(parts_train[p], y_train if p == label_party else None)
        if hasattr(est, "predict_proba"):
            out = est.predict_proba(parts_test[p])
            out = None if out is None else out[:, 1]
        else:
            out = est.predict(parts_test[p])
        return out, est

    r = mpc.run_local(prog, timeout=timeout)
    return r[label_party][0], r[1 - label_party][0], [r[0][1], r[1][1]]


def xgb_oracle(kind, params, X_train, y_train, X_test, base_score):
    kw = dict(params, tree_method="hist", base_score=base_score, n_jobs=1)
    if kind == "classifier":
        return xgb.XGBClassifier(**kw).fit(X_train, y_train).predict_proba(X_test)[:, 1]
    return xgb.XGBRegressor(**kw).fit(X_train, y_train).predict(X_test)


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))
