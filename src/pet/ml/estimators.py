"""scikit-learn style estimators: :class:`VerticalXGBClassifier`, :class:`VerticalXGBRegressor`.

Both parties construct the estimator with the same parameters and their own
:class:`pet.mpc.Session` (the session's peer is the other party; it needs a dealer), then
call ``fit(X_own)`` with the rows aligned by :func:`pet.psi.align`; the label party passes
``y``. Predictions land on the label party; the other party gets ``None``. The protocol
and what each party learns are in :mod:`pet.ml.booster`.
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from pet._validate import check_int, check_real
from pet.errors import InputError, PetTypeError
from pet.ml import booster, model_io
from pet.ml.binning import as_float_matrix

__all__ = ["VerticalXGBClassifier", "VerticalXGBRegressor"]


def _check_int(name, value, lo, hi=None):
    return check_int(value, name, lo=lo, hi=hi)


def _check_real(name, value, lo, *, open_lo=False):
    return check_real(value, name, lo=lo, open_lo=open_lo)


class _VerticalXGB(BaseEstimator):
    _objective = ""
    _kind = ""

    def __init__(self, session=None, *, n_estimators=100, max_depth=6, learning_rate=0.3,
                 reg_lambda=1.0, gamma=0.0, min_child_weight=1.0, max_bin=32, base_score=None,
                 verbose=False, callback=None):
        self.session = session
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.reg_lambda = reg_lambda
        self.gamma = gamma
        self.min_child_weight = min_child_weight
        self.max_bin = max_bin
        self.base_score = base_score
        self.verbose = verbose
        self.callback = callback

    # -- parameter validation (at fit, scikit-learn style) ------------------------------
    def _validated(self) -> dict:
        if self.session is None or not hasattr(self.session, "party"):
            raise PetTypeError("session must be a pet.mpc.Session (with a dealer)")
        fb = getattr(self.session, "frac_bits", 16)
        if not 16 <= fb <= 24:
            raise InputError(f"the session's frac_bits must be in [16, 24] for pet.ml (got {fb}): "
                             "the MPC sigmoid runs at the session's precision")
        p = {
            "n_estimators": _check_int("n_estimators", self.n_estimators, 1),
            "max_depth": _check_int("max_depth", self.max_depth, 1, 12),
            "learning_rate": _check_real("learning_rate", self.learning_rate, 0.0, open_lo=True),
            "reg_lambda": _check_real("reg_lambda", self.reg_lambda, 0.0),
            "gamma": _check_real("gamma", self.gamma, 0.0),
            "min_child_weight": _check_real("min_child_weight", self.min_child_weight, 0.0),
            "max_bin": _check_int("max_bin", self.max_bin, 2, 1024),
        }
        if self.base_score is not None:
            b = _check_real("base_score", self.base_score, -np.inf)
            if self._objective == "binary:logistic" and not 0.0 < b < 1.0:
                raise InputError(f"base_score of a classifier is a probability in (0, 1), got {b}")
        if self.callback is not None and not callable(self.callback):
            raise PetTypeError("callback must be callable(trees_done, n_estimators) or None")
        return p

    def _progress(self):
        cb, verbose = self.callback, self.verbose

        def report(done, total):
            if verbose:
                print(f"pet.ml: tree {done}/{total}", file=sys.stderr, flush=True)
            if cb is not None:
                cb(done, total)
        return report

    def _check_y(self, y, n):
        yv = np.asarray(y)
        if yv.ndim != 1 or yv.shape[0] != n:
            raise InputError(f"y must be 1-D with one value per row of X ({n}), got shape {yv.shape}")
        return yv

    def fit(self, X, y=None):
        """Train with this party's columns ``X``; the label party passes ``y``. Both
        parties call ``fit`` (same parameters, same rows in the same order). Returns self."""
        p = self._validated()
        names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        X = as_float_matrix(X)
        yy = None
        if y is not None:
            yy = self._encode_y(self._check_y(y, X.shape[0]))
        state = booster.train(self.session, X, yy, objective=self._objective, base_score=self.base_score,
                              callback=self._progress(), **p)
        if y is not None:
            state.update(self._label_extras())
        if names is not None:
            state["feature_names"] = names
        self._set_state(state)
        return self

    def _encode_y(self, y):
        return y.astype(np.float64)

    def _label_extras(self) -> dict:
        return {}

    def _set_state(self, state):
        self.model_ = state
        self.n_features_in_ = int(state["n_features"])
        self.label_party_ = int(state["label_party"])
        self.is_label_party_ = self.label_party_ == int(state["party"])
        if "feature_names" in state:
            self.feature_names_in_ = np.asarray(state["feature_names"], dtype=object)

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise InputError(f"this {type(self).__name__} is not fitted: call fit or load first")
        if self.session is None:
            raise PetTypeError("set a session (set_params(session=...)) before predicting")
        if int(self.session.party) != int(self.model_["party"]):
            raise InputError(f"this model belongs to party {self.model_['party']}, the session is party "
                             f"{self.session.party}")

    def _margin(self, X):
        self._check_fitted()
        names = self.model_.get("feature_names")
        if names is not None and hasattr(X, "columns"):
            missing = [c for c in names if c not in X.columns]
            if missing:
                raise InputError(f"X lacks the columns {missing} seen at fit")
            X = X[names]
        X = as_float_matrix(X)
        return booster.predict_margin(self.session, self.model_, X)

    # -- persistence -------------------------------------------------------------------
    def save(self, path, *, key=None) -> None:
        """Write this party's half of the model to ``path`` (atomically; AES-GCM encrypted
        with ``key`` if given)."""
        if not hasattr(self, "model_"):
            raise InputError("nothing to save: the estimator is not fitted")
        model_io.save_state(path, self._kind, self.model_, key=key)

    @classmethod
    def load(cls, path, session=None, *, key=None):
        """An estimator with this party's model from ``path`` (``session`` for predicting)."""
        kind, state = model_io.load_state(path, key=key)
        if kind != cls._kind:
            raise InputError(f"{path} holds a {kind} model, not a {cls._kind}")
        est = cls(session, **{k: v for k, v in state["params"].items() if k != "objective"})
        est._set_state(state)
        if "classes" in state:
            est.classes_ = np.asarray(state["classes"])
        return est


class VerticalXGBClassifier(ClassifierMixin, _VerticalXGB):
    """Vertical federated XGBoost for binary classification (``binary:logistic``).

    Parameters are xgboost's (``n_estimators, max_depth, learning_rate, reg_lambda, gamma,
    min_child_weight, max_bin, base_score``; ``base_score=None``: the label mean) plus
    ``session`` (this party's :class:`pet.mpc.Session`), ``verbose`` and ``callback``
    (``callback(trees_done, n_estimators)`` after every tree).

    Attributes after fit: ``model_`` (this party's half), ``n_features_in_``,
    ``label_party_``, ``is_label_party_``, and ``classes_`` at the label party.
    """

    _objective = "binary:logistic"
    _kind = "classifier"

    def _encode_y(self, y):
        if np.asarray(y).dtype.kind == "f" and np.isnan(y).any():
            raise InputError("y contains missing values")
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size != 2:
            raise InputError(f"VerticalXGBClassifier needs exactly 2 classes in y, got {classes.size}")
        self.classes_ = classes
        return codes.astype(np.float64)

    def _label_extras(self) -> dict:
        return {"classes": self.classes_}

    def predict_proba(self, X):
        """``(n, 2)`` class probabilities at the label party, ``None`` at the other."""
        m = self._margin(X)
        if m is None:
            return None
        p1 = 1.0 / (1.0 + np.exp(-m))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X):
        """Predicted classes at the label party, ``None`` at the other."""
        proba = self.predict_proba(X)
        if proba is None:
            return None
        return self.classes_[(proba[:, 1] > 0.5).astype(int)]


class VerticalXGBRegressor(RegressorMixin, _VerticalXGB):
    """Vertical federated XGBoost regression (``reg:squarederror``); parameters as
    :class:`VerticalXGBClassifier` (``base_score=None``: the label mean)."""

    _objective = "reg:squarederror"
    _kind = "regressor"

    def _encode_y(self, y):
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise InputError("y must be finite")
        return y

    def predict(self, X):
        """Predictions at the label party, ``None`` at the other."""
        return self._margin(X)
