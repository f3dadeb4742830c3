"""Plaintext reference of exactly the boosting algorithm that :mod:`pet.ml.booster` runs
in MPC (float64, one process). Used by the tests as the bridge between the secure
booster and xgboost: it checks the algorithm against ``xgboost`` (``tree_method="hist"``)
without MPC noise, and the MPC booster against it.

Algorithm (level-wise, full binary tree of depth ``max_depth``):

* node statistics ``G = v.g``, ``H = v.h`` for membership vector ``v``;
* for every candidate ``j`` (columns of the joint cumulative indicator ``C``):
  ``G_L = C_j.(g*v)``, ``H_L = C_j.(h*v)``, ``G_R = G - G_L``, ``H_R = H - H_L`` and
  ``loss_chg = G_L^2/(H_L+lambda) + G_R^2/(H_R+lambda) - G^2/(H+lambda)``;
  a candidate is valid iff ``H_L >= max(mcw, eps)`` and ``H_R >= max(mcw, eps)``;
* the node splits on the valid candidate of largest ``loss_chg`` iff that is
  ``> max(gamma, 1e-6)``; otherwise it *passes through*: every row goes left (so its
  left-most descendant leaf holds exactly its rows and gets its weight, as xgboost's leaf);
* leaves: ``w = -learning_rate * G / (H + lambda)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_reference", "predict_reference", "KRT_EPS", "HESS_EPS"]

#: xgboost's minimum loss change for a split (``kRtEps``).
KRT_EPS = 1e-6
#: smallest child hessian of a valid split when ``min_child_weight`` is 0.
HESS_EPS = 1e-6


def _grad(objective, margin, y):
    if objective == "binary:logistic":
        p = 1.0 / (1.0 + np.exp(-margin))
        return p - y, np.maximum(p * (1.0 - p), 1e-16)
    return margin - y, np.ones_like(margin)


def fit_reference(C, y, *, objective, n_estimators, max_depth, learning_rate, reg_lambda,
                  gamma, min_child_weight, base_margin):
    """Train on the joint 0/1 candidate matrix ``C`` (n x m). Returns ``(trees, margin)``,
    each tree a dict with ``cand`` (best candidate per internal node, level order),
    ``split`` (bool per internal node) and ``leaf`` (weights, ``2^max_depth``)."""
    C = np.asarray(C, dtype=np.float64)
    n = C.shape[0]
    margin = np.full(n, float(base_margin))
    trees = []
    lam = float(reg_lambda)
    hmin = max(float(min_child_weight), HESS_EPS)
    thr = max(float(gamma), KRT_EPS)
    for _ in range(n_estimators):
        g, h = _grad(objective, margin, y)
        V = np.ones((n, 1))
        cands, splits = [], []
        for _d in range(max_depth):
            G, H = V.T @ g, V.T @ h
            GL, HL = C.T @ (V * g[:, None]), C.T @ (V * h[:, None])
            GR, HR = G[None] - GL, H[None] - HL
            chg = GL ** 2 / (HL + lam) + GR ** 2 / (HR + lam) - (G ** 2 / (H + lam))[None]
            valid = (HL >= hmin) & (HR >= hmin)
            chg = np.where(valid, chg, -np.inf)
            best = np.argmax(chg, axis=0)
            s = chg[best, np.arange(V.shape[1])] > thr
            ind = C[:, best]
            VR = V * (1.0 - ind) * s[None]
            VL = V - VR
            V = np.stack([VL, VR], axis=2).reshape(n, -1)
            cands.append(best)
            splits.append(s)
        G, H = V.T @ g, V.T @ h
        w = -learning_rate * G / (H + lam)
        margin = margin + V @ w
        trees.append({"cand": np.concatenate(cands), "split": np.concatenate(splits), "leaf": w})
    return trees, margin


def predict_reference(C, trees, max_depth, base_margin):
    """Margins of the rows of ``C`` (the candidate matrix of new rows)."""
    C = np.asarray(C, dtype=np.float64)
    n = C.shape[0]
    out = np.full(n, float(base_margin))
    for t in trees:
        V = np.ones((n, 1))
        k = 0
        for d in range(max_depth):
            width = 2 ** d
            ind = C[:, t["cand"][k:k + width]]
            s = t["split"][k:k + width]
            VR = V * (1.0 - ind) * s[None]
            V = np.stack([V - VR, VR], axis=2).reshape(n, -1)
            k += width
        out += V @ t["leaf"]
    return out
