"""Local quantile binning of one party's features and its split candidates.

Each party bins only its own columns, locally, before any MPC: nothing here crosses the
wire. The cut points follow xgboost's ``hist`` convention: a split ``(feature, cut)``
sends a row left iff ``x < cut``; with at most ``max_bin`` distinct values the cuts are
the distinct values above the minimum (so every distinct value is its own bin), else
they are ``max_bin - 1`` quantiles of the non-missing values.

A *split candidate* is ``(feature, cut, default_left)``: missing values (NaN) go left iff
``default_left``. Features without missing values have one candidate per cut with
``default_left=True`` (xgboost's choice for them); features with missing values have
both directions for every cut plus the "non-missing left, missing right" split.

The candidates are the columns of the party's private *cumulative indicator matrix*
``C`` (n x m, 0/1): ``C[i, j] = 1`` iff row ``i`` goes left under candidate ``j``. Then
``C.T @ (g * v)`` is, for every candidate at once, the left-child gradient sum of the
node whose membership vector is ``v``. ``C`` is fixed for the whole training, which is
what lets its MPC mask be reused across nodes and trees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pet.errors import InputError

__all__ = ["Binner", "quantile_cuts", "as_float_matrix", "goes_left"]


def as_float_matrix(X, name: str = "X") -> np.ndarray:
    """``X`` (array-like or DataFrame) as a 2-D float64 array; NaN marks missing values."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric (float or int columns), got {exc}") from None
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (rows x features), got {arr.ndim}-D")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} must have at least one row and one column, got shape {arr.shape}")
    if np.isinf(arr).any():
        raise InputError(f"{name} contains infinite values (use NaN for missing)")
    return arr


def quantile_cuts(col: np.ndarray, max_bin: int) -> np.ndarray:
    """Sorted cut points of one column (``x < cut`` goes left), excluding the minimum."""
    vals = col[~np.isnan(col)]
    if vals.size == 0:
        return np.empty(0)
    uniq = np.unique(vals)
    if uniq.size <= max_bin:
        return uniq[1:]
    qs = np.quantile(vals, np.arange(1, max_bin) / max_bin, method="inverted_cdf")
    cuts = np.unique(qs)
    # "x < cut" must leave something on the left: a cut at the minimum is useless
    return cuts[cuts > uniq[0]]


@dataclass
class Binner:
    """The split candidates of one party's features (learned by :meth:`fit`).

    Attributes
    ----------
    feature, cut, default_left : arrays of length ``m`` (one entry per candidate).
    n_features : number of columns seen at fit.
    """

    max_bin: int
    feature: np.ndarray | None = None
    cut: np.ndarray | None = None
    default_left: np.ndarray | None = None
    n_features: int = 0

    def fit(self, X: np.ndarray) -> Binner:
        feats, cuts, dls = [], [], []
        for f in range(X.shape[1]):
            col = X[:, f]
            c = quantile_cuts(col, self.max_bin)
            if np.isnan(col).any():
                both = np.concatenate([c, [np.inf]])
                feats += [f] * (2 * len(both) - 1)
                cuts += list(c) + list(both)
                dls += [True] * len(c) + [False] * len(both)
            else:
                feats += [f] * len(c)
                cuts += list(c)
                dls += [True] * len(c)
        self.feature = np.asarray(feats, dtype=np.int64)
        self.cut = np.asarray(cuts, dtype=np.float64)
        self.default_left = np.asarray(dls, dtype=bool)
        self.n_features = X.shape[1]
        return self

    @property
    def n_candidates(self) -> int:
        return int(self.feature.size)

    def indicator(self, X: np.ndarray, idx=None) -> np.ndarray:
        """The 0/1 matrix ``C`` (n x m, uint8) of candidates ``idx`` (default: all)."""
        if idx is None:
            idx = np.arange(self.n_candidates)
        return goes_left(X, self.feature[idx], self.cut[idx], self.default_left[idx]).astype(np.uint8)


def goes_left(X: np.ndarray, feature, cut, default_left) -> np.ndarray:
    """Boolean n x k: row goes left under split ``(feature[j], cut[j], default_left[j])``."""
    cols = X[:, np.asarray(feature, dtype=np.int64)]
    with np.errstate(invalid="ignore"):
        left = cols < np.asarray(cut, dtype=np.float64)[None, :]
    miss = np.isnan(cols)
    return np.where(miss, np.asarray(default_left, dtype=bool)[None, :], left)
