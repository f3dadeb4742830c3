"""Per-node gradient histograms: a party's fixed private 0/1 matrix times shared vectors.

The owner ``p`` of some features holds the cumulative indicator matrix ``C`` (n x m) of
its split candidates (:mod:`pet.ml.binning`). For shared columns ``Y`` (n x t; the
gradients and hessians masked by node membership) the histogram step needs shares of
``C.T @ Y`` -- the left-child sums of every candidate of every node at once.

Protocol (reusable-mask matrix triple, correlated kinds ``reuse_setup`` / ``reuse_mul``
of :mod:`pet.mpc.correlated`; ``M = C.T`` is m x n):

setup, once per training:
    the dealer gives the owner a uniform ``A`` (m x n); the owner sends ``D = M - A`` to
    the other party (one message, ``8 m n`` bytes). ``D`` is a one-time pad of ``M``: the
    other party learns nothing (``A`` is never reused as a pad of anything else).
per product (one message, other -> owner, ``8 n t`` bytes):
    the dealer gives the other party a fresh uniform ``B`` (n x t) and shares of
    ``A @ B`` (``S_owner + S_other``); the other sends ``Z = Y_other - B`` (uniform, so the
    owner learns nothing); the owner's share is ``M @ (Y_owner + Z) + S_owner``
    (computed from per-bin sums, ``O(n * features * t)``), the other's is
    ``D @ B + S_other`` (dense, ``O(m n t)``). Sum: ``M @ Y_owner + M @ Y_other``.

What each party learns: the shapes ``n, m, t`` (public) and nothing else; the dealer
learns the shapes and ``A`` (never ``M``).
"""

from __future__ import annotations

import threading

import numpy as np

from pet.errors import ProtocolError
from pet.ml import _kernels
from pet.mpc import Shared

__all__ = ["PrivateMatrix", "BinCodes", "TreeProducts"]

#: dealer-side handles of the reusable masks (one per owner party)
_HANDLE_BASE = 0x6D6C0000


class BinCodes:
    """The owner's private description of ``C`` by bins: ``codes`` (n x F, global bin ids),
    the number of bins, and for every candidate the prefix-sum position and whether the
    missing bin is added. ``C.T @ Y`` = per-candidate sums of per-bin sums."""

    def __init__(self, binner, X: np.ndarray):
        offs, prefix, miss_bin, dls = [], [], [], []
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
        """``M = C.T`` as a uint64 (m x n) array (for the one-time masked transfer)."""
        n, nf = self.codes.shape
        m = self.prefix.size
        out = np.zeros((m, n), dtype=np.uint64)
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


class PrivateMatrix:
    """Party ``owner``'s fixed private matrix ``M = C.T`` (m x n) for products with shared
    ``Y`` (n x t). Both parties construct it (the owner passes ``codes``, the other
    ``None``) with the public ``m, n``; construction runs the setup step."""

    def __init__(self, session, owner: int, codes: BinCodes | None, m: int, n: int):
        self.session = session
        self.owner = int(owner)
        self.m, self.n = int(m), int(n)
        self.codes = codes
        self.handle = _HANDLE_BASE + self.owner
        (mat,) = session.correlated([("reuse_setup", self.owner, self.m, self.n, self.handle)])
        op = f"ml.private_matrix.setup{(self.owner, self.m, self.n)}"
        if session.party == self.owner:
            if codes is None:
                raise ProtocolError("the owner of a private matrix must pass its codes")
            session.send_to_peer(op, codes.dense() - mat["A"])
            self._D = None
        else:
            D = session.recv_from_peer(op)
            if not isinstance(D, np.ndarray) or D.shape != (self.m, self.n):
                raise ProtocolError(f"malformed private-matrix setup message (expected {(self.m, self.n)})")
            self._D = np.ascontiguousarray(D, dtype=np.uint64)

    def left_sums(self, Y: Shared) -> Shared:
        """Shares of ``M @ Y`` (m x t) for shared ``Y`` (n x t); one message."""
        session = self.session
        n, t = Y.shape
        if n != self.n:
            raise ProtocolError(f"private matrix has {self.n} rows, got {n}")
        (mat,) = session.correlated([("reuse_mul", self.handle, self.owner, self.m, self.n, t)])
        op = f"ml.private_matrix.mul{(self.owner, self.m, self.n, t)}"
        if session.party == self.owner:
            Z = session.recv_from_peer(op)
            if not isinstance(Z, np.ndarray) or Z.shape != (n, t):
                raise ProtocolError("malformed private-matrix product message")
            share = self.codes.left_sums(Y.share + np.asarray(Z, dtype=np.uint64)) + mat["s"]
        else:
            session.send_to_peer(op, Y.share - mat["b"])
            share = np.empty((self.m, t), dtype=np.uint64)
            _kernels.dense_matmul_u64(self._D, np.ascontiguousarray(mat["b"]), share)
            share += mat["s"]
        return Shared(session, share, Y.frac)



class TreeProducts:
    """All histogram products of one tree with one reusable-mask triple per party.

    One ``reuse_mul`` spec per private matrix with ``t_total`` columns (all the columns the
    tree will need) is fetched at the start of the tree; each product then uses a fresh,
    disjoint slice of the columns of ``B`` (so every mask column is used once, as in
    separate products). The dense part ``D @ B`` does not depend on data and is computed once
    per tree with a long inner loop instead of once per level. Per product: one exchange
    round (each party sends ``Y_self - B[:, cols]`` for the matrix it does not own); the
    owner adds its per-bin sums. Views are those of :meth:`PrivateMatrix.left_sums`.
    """

    def __init__(self, pms, t_total: int):
        if [pm.owner for pm in pms] != [0, 1]:
            raise ProtocolError("TreeProducts needs the matrices of party 0 and party 1")
        self.pms = pms
        session = pms[0].session
        self.session = session
        me = session.party
        self.me = me
        mats = session.correlated([("reuse_mul", pm.handle, pm.owner, pm.m, pm.n, int(t_total)) for pm in pms])
        self.s_own = mats[me]["s"]
        other = pms[1 - me]
        self.b = np.ascontiguousarray(mats[1 - me]["b"])
        self.dense = np.empty((other.m, int(t_total)), dtype=np.uint64)
        self.used = 0
        self.t_total = int(t_total)
        # D @ B needs no data: run it (numba, GIL released) beside the gradient computation
        self._error = None
        s_other = mats[1 - me]["s"]

        def work():
            try:
                _kernels.dense_matmul_u64(other._D, self.b, self.dense)
                self.dense += s_other
            except BaseException as exc:  # re-raised in the caller's thread by _wait
                self._error = exc

        self._worker = threading.Thread(target=work, name="pet.ml.dense-product", daemon=True)
        self._worker.start()

    def _wait(self):
        if self._worker is not None:
            self._worker.join()
            self._worker = None
            if self._error is not None:
                raise self._error

    def left_sums(self, Y: Shared) -> Shared:
        """``[M_0 @ Y; M_1 @ Y]`` (party 0's candidates first) for shared ``Y`` (n x t)."""
        n, t = Y.shape
        lo, hi = self.used, self.used + t
        if hi > self.t_total:
            raise ProtocolError("TreeProducts: more product columns than prepared")
        self.used = hi
        pms, me = self.pms, self.me
        self._wait()
        got = self.session.exchange(f"ml.hist{(pms[0].m, pms[1].m, n, t)}", Y.share - self.b[:, lo:hi])
        if not isinstance(got, np.ndarray) or got.shape != (n, t):
            raise ProtocolError("malformed private-matrix product message")
        mine = pms[me].codes.left_sums(Y.share + np.asarray(got, dtype=np.uint64)) + self.s_own[:, lo:hi]
        theirs = self.dense[:, lo:hi]
        parts = [mine, theirs] if me == 0 else [theirs, mine]
        return Shared(self.session, np.concatenate(parts, axis=0), Y.frac)
