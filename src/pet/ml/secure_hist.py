"""Per-node gradient histograms: the owner's private 0/1 candidate matrix, described by bins.

The owner ``p`` of some features holds the cumulative indicator matrix ``C`` (n x m) of
its split candidates (:mod:`pet.ml.binning`). For shared columns ``Y`` (n x t; the
gradients and hessians masked by node membership) the histogram step needs shares of
``C.T @ Y`` -- the left-child sums of every candidate of every node at once. That product
is :class:`pet.mpc.PrivateMatrix` (reusable-mask matrix triple: the owner sends ``C.T - A``
once, then one message of ``n t`` ring elements per product) with
:class:`pet.mpc.PreparedProducts` serving all the products of one tree with one dealer
request per party. :class:`BinCodes` is the owner's side of it: ``C.T`` densely for the
one-time masked transfer, and the owner's local product ``C.T @ Y`` from per-bin sums
(``O(n * features * t)`` instead of ``O(m n t)``), passed as ``local_product``.

What each party learns: the shapes ``n, m, t`` (public) and nothing else; the dealer
learns the shapes and ``A`` (never ``C``).
"""

from __future__ import annotations

import numpy as np

from pet.ml import _kernels

__all__ = ["BinCodes"]


class BinCodes:
    """The owner's private description of ``C`` by bins: ``codes`` (n x F, global bin ids),
    the number of bins, and for every candidate the prefix-sum position and whether the
    missing bin is added. ``C.T @ Y`` = per-candidate sums of per-bin sums."""

    def __init__(self, binner, X: np.ndarray):
        offs, prefix, miss_bin = [], [], []
        codes = np.empty(X.shape, dtype=np.int64)
        off = 0
        for f in range(binner.n_features):
            sel = binner.feature == f
            cuts = np.unique(binner.cut[sel][np.isfinite(binner.cut[sel])])
            k = cuts.size
            col = X[:, f]
            b = np.searchsorted(cuts, col, side="right")
            b = np.where(np.isnan(col), k + 1, b)
            codes[:, f] = off + b
            for c, dl in zip(binner.cut[sel], binner.default_left[sel]):
                j = k + 1 if np.isinf(c) else int(np.searchsorted(cuts, c, side="left")) + 1
                # rows with bin < j (x < cut): prefix sum of bins off .. off + j - 1
                prefix.append(off + j - 1)
                miss_bin.append(off + k + 1 if dl else -1)
            offs.append(off)
            off += k + 2
        self.codes = codes
        self.n_bins = off
        self.prefix = np.asarray(prefix, dtype=np.int64)
        self.miss_bin = np.asarray(miss_bin, dtype=np.int64)
        self.feature_offsets = np.asarray(offs + [off], dtype=np.int64)

    def dense(self) -> np.ndarray:
        """``M = C.T`` as a 0/1 uint8 (m x n) array (for the one-time masked transfer)."""
        n, nf = self.codes.shape
        m = self.prefix.size
        out = np.zeros((m, n), dtype=np.uint8)
        # bin of each row for the feature of each candidate
        feat_of_bin = np.searchsorted(self.feature_offsets, self.prefix, side="right") - 1
        for j in range(m):
            f = feat_of_bin[j]
            codes = self.codes[:, f]
            left = codes <= self.prefix[j]
            if self.miss_bin[j] >= 0:
                left |= codes == self.miss_bin[j]
            out[j] = left
        return out

    def left_sums(self, y: np.ndarray) -> np.ndarray:
        """``C.T @ y`` modulo 2^64 for uint64 ``y`` (n x t), via per-bin sums."""
        t = y.shape[1]
        bins = np.zeros((self.n_bins, t), dtype=np.uint64)
        _kernels.bin_sums_u64(self.codes, np.ascontiguousarray(y, dtype=np.uint64), bins)
        cum = np.cumsum(bins, axis=0, dtype=np.uint64)
        # prefix sums restarted per feature: subtract the cumulative total before the feature
        starts = self.feature_offsets[:-1]
        before = np.zeros((len(starts), t), dtype=np.uint64)
        before[1:] = cum[starts[1:] - 1]
        feat = np.searchsorted(self.feature_offsets, self.prefix, side="right") - 1
        out = cum[self.prefix] - before[feat]
        has_miss = self.miss_bin >= 0
        out[has_miss] += bins[self.miss_bin[has_miss]]
        return out
