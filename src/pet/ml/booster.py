"""Secret-shared training and prediction of vertical gradient-boosted trees.

Setting: two parties hold the same rows in the same order (``pet.psi.align``), each some
feature columns; one of them (the *label party*) also holds the label. Everything that
depends on more than one party's data is secret-shared over Z_2^64 (:mod:`pet.mpc`).

Training one tree (full binary tree of depth ``D``, nodes processed level by level, so
the MPC rounds per tree are O(D), independent of the number of rows and features):

1. gradients ``g``, hessians ``h`` (shared): squared error ``g = margin - y``, ``h = 1``;
   logistic ``p = sigmoid(margin)`` (the MPC sigmoid's piecewise form, 24 rounds,
   :func:`pet.mpc.sigmoid` with ``method="piecewise"``), ``g = p - y``, ``h = p (1 - p)``;
   both packed into one ring word per row, ``y = h + 2^T g`` (public layout
   :func:`_packing`: every sum of up to ``n`` rows stays exact in it); in the first tree
   the label party knows every margin (its base margin), computes ``g, h`` itself and
   shares them (:func:`_first_gradients`, 1 round);
2. per level, for the left child of each pair of nodes (the right one by subtraction
   from the parent): ``v * y`` (v = the node's 0/1 membership, an XOR-shared bit; one
   round for all nodes of a row, :func:`pet.mpc.bit_products.bits_times`: the B2A word and
   ``y - b`` opened, no ``n x nodes`` elements) and the
   left-child sums of every split candidate of both parties, ``C_p.T @ (v * y)``
   (:class:`pet.mpc.PrivateMatrix`: the party's private cumulative bin-indicator matrix
   times shared vectors, with a matrix-triple mask reused across nodes and trees; the
   owner's side from per-bin sums, :mod:`pet.ml.secure_hist`); the packed sums of the
   level are unpacked into ``G, H`` (:func:`_unpack`, 2 exact truncations, n-independent);
3. gains in MPC: ``G_L^2/(H_L+lambda) + G_R^2/(H_R+lambda) - G^2/(H+lambda)`` (MPC
   reciprocal); candidates with ``H_L`` or ``H_R`` below ``min_child_weight`` get gain
   -1; one-hot of the best candidate per node by MPC argmax; the shared *split flag*
   ``s = [best gain > max(gamma, 1e-6)]``, selected by the one-hot from the per-candidate
   bits ``valid * [gain > thr]`` (compared in the validity comparisons' batch);
4. the owner of the best candidate is revealed to both parties (one bit per node); the
   candidate itself (feature, threshold, default direction) is revealed only to its
   owner (the one-hot restricted to the owner's candidates);
5. memberships are XOR-shared bits, bit-packed (one word per row for up to 64 nodes); the
   owner holds ``q = [row goes right]`` for its nodes as its XOR share (the other party's
   share is 0; ``q`` only enters AND gates, whose openings the dealer's AND triples mask,
   so this costs no message); the split flag's XOR share is the low bit of its arithmetic
   share; the children's membership is ``v_R = v & s & q``, ``v_L = v ^ v_R`` (two AND
   rounds, two words per row and party each; a node with ``s = 0`` sends every row left,
   which reproduces xgboost's leaf at that node);
6. leaves, per node of the last split level rather than per row (:func:`_last_level`):
   ``w = -learning_rate * G / (H + lambda)`` (shared) is *selected* by the one-hot from the
   per-candidate ``G_L/(H_L + lambda)``, ``G_R/(H_R + lambda)`` the gains already computed
   (no leaf sums over the rows, no second division); the shared margins of the training
   rows grow by ``v w_left + (v & q) s (w_right - w_left)`` for their last-level node
   (``v`` its membership, ``q`` the row's direction; one AND, then the row's
   ``2 x nodes`` bits dotted with the per-node weights in one round,
   :func:`pet.mpc.bit_products.bits_dot`).

What each party learns (beyond its own data and the public parameters, ``n``, and each
party's number of features and of split candidates): per node, which party owns the best
candidate (1 bit, also for nodes whose split flag turns out 0); the owner additionally
learns its own best candidate, i.e. the feature and threshold. Nothing else is opened:
not the gradients, histograms, gains, split flags, node sizes, row partitions (not even
those of its own splits: the owner knows which rows satisfy its threshold, not which
rows reach the node), leaf weights or margins. The dealer learns only shapes.

Prediction: each party evaluates its own nodes' thresholds on its own columns and shares
``q`` as its XOR share; the leaf reached in every tree is selected in MPC on XOR-shared
bit words (for all trees at once: ``D`` AND rounds, one B2A round, and the matrix product
with the leaf weights); the margin sum is revealed to the label party only.

Numerics: fixed point with 16 fractional bits for g, h, sums and gains; the label party
divides regression targets by a private scale ``c = max|y - base|`` (so gains are in
units of ``c^2``; its gamma threshold is shared accordingly) and, when ``n * max(h) +
lambda`` exceeds 2^16 (more than 65,535 rows for squared error, 262,143 for logistic),
g, h, lambda and min_child_weight are divided by a public power of two, so that every
``H + lambda`` lies in the domain ``[2^-10, 2^17)`` of the MPC reciprocal. In the packed
histogram word, g and h keep all 16 fractional bits up to 32,767 rows (logistic; 8,191
squared error), one bit less per doubling of the rows beyond (14 at 10^5 logistic rows);
the gains work on the unpacked sums at 16 bits.

Cost per tree (``K`` candidates of both parties, ``n`` rows, depth ``D``; measured by phase
with ``benchmarks/_xgb_phases.py``): about 565 rounds at ``D = 5``, of which per level the
gains take about 97 (reciprocal 24 on 32-bit lanes, 28 without them, argmax over ``K`` at
most ``12 ceil(log4 K) - 1`` as a
4-ary tournament, :func:`pet.mpc.tournament`, one batched comparison of 8 rounds), the
unpacking 2, the memberships 2 (ANDs) and the bit products 1, the gradients' sigmoid 24 per
tree (not in the first); the set-up exchanges both parties' masked candidate matrices in one
round (``m_p x n`` ring elements each way).
Bytes between the parties: per row and tree about 0.5 kB for the gradients (none in the
first tree), about 0.4 kB for the histograms (each level: the masked membership word and
``y - b``, and the private-matrix product's exchange of ``n x 2^(l-1)`` ring elements),
64 bytes per level for the membership ANDs and about 0.3 kB for the last level (its ANDs
and one masked word per row), plus per tree about 48 MB at ``K = 640`` for the gains
(``(2 K + 1) x 2^l`` reciprocals per level), independent of ``n``; and once per tree a dense
``m_p x n x 2^(D-1)`` product at each party and at the dealer (the reusable-mask
correction). A tree is two prefetch blocks (the gradients, recorded in the second tree, then
the levels, recorded in the first): later trees request all their correlated randomness
at the blocks' starts and the dealer's corrections stream in while they compute.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import numpy as np

from pet.errors import InputError, ProtocolError
from pet.ml import _plain
from pet.ml.binning import Binner, goes_left
from pet.ml.secure_hist import BinCodes
from pet.mpc import (
    PreparedProducts,
    PrivateMatrix,
    Shared,
    concatenate,
    constant,
    reciprocal,
    sigmoid,
    stack,
    tournament,
)
from pet.mpc.arithmetic import mul_raw
from pet.mpc.bit_products import bits_dot, bits_times
from pet.mpc.boolean import and_words, b2a_bits, msb
from pet.mpc.correlated import B2AMul
from pet.mpc.prefetch import Prefetcher
from pet.mpc.private_matrix import setup_together
from pet.mpc.truncation import trunc

__all__ = ["train", "predict_margin", "candidate_matrix", "OBJECTIVES"]

OBJECTIVES = ("binary:logistic", "reg:squarederror")
#: fractional bits of gradients, sums, gains and leaf weights
F = 16
#: largest ``H + lambda`` the MPC reciprocal handles is 2^17; keep a margin of 2
_H_LIMIT = 2.0 ** 16
#: bound on ``|g|`` for squared error (targets scaled into [-1, 1]; margins stay in their hull)
_G_BOUND = 4.0


def _public_mul(x: Shared, c: float) -> Shared:
    """``x * c`` for a public real ``c`` (local product with ``round(c 2^F)``, one
    truncation round); independent of the session's default ``frac_bits``."""
    return x.scaled(int(round(float(c) * 2.0 ** F)), shift=F).rescale(x.frac)


def _at(x: Shared, frac: int) -> Shared:
    return x if x.frac == frac else x.rescale(frac)


def _interleave(session, left: Shared, right: Shared) -> Shared:
    """Columns ``l0, r0, l1, r1, ...`` (children of node k at 2k, 2k+1) along the last axis."""
    return stack([left, right], axis=-1).reshape(left.shape[:-1] + (-1,))


def _ones(session, shape) -> Shared:
    return constant(session, np.ones(shape, dtype=np.int64), 0)


def candidate_matrix(session, owner: int, codes: BinCodes, m: int, n: int, defer_setup: bool = False) -> PrivateMatrix:
    """Party ``owner``'s candidate matrix ``C.T`` (m x n, public shape, integer) as a
    :class:`pet.mpc.PrivateMatrix` whose owner multiplies through per-bin sums
    (``defer_setup``: its mask travels later, see :func:`candidate_matrices`)."""
    mine = session.party == owner
    return PrivateMatrix(session, codes.dense() if mine else None, owner, frac_bits=0, shape=(m, n),
                         local_product=codes.left_sums if mine else None, defer_setup=defer_setup)


def candidate_matrices(session, codes: BinCodes, ms, n: int) -> list:
    """Both parties' candidate matrices, their masked copies exchanged in ONE round
    (:func:`pet.mpc.private_matrix.setup_together`): each party's ``m_p x n`` ring elements
    travel in both directions at once (at 10^5 rows and 320 candidates each, 256 MB each
    way: about 20 s over 100 Mbit/s instead of 40 s one after the other)."""
    pms = [candidate_matrix(session, p, codes, ms[p], n, defer_setup=True) for p in (0, 1)]
    setup_together(pms)
    return pms


def _handshake(session, info: dict) -> dict:
    """Exchange the public facts of the two parties; both must agree on ``info["params"]``."""
    peer = session.exchange("ml.xgb.hello", info)
    if not isinstance(peer, dict) or "params" not in peer:
        raise ProtocolError("the peer did not start the same pet.ml operation")
    if peer["params"] != info["params"]:
        diff = {k: (info["params"].get(k), peer["params"].get(k))
                for k in set(info["params"]) | set(peer["params"])
                if info["params"].get(k) != peer["params"].get(k)}
        raise InputError(f"the two parties constructed the estimator with different parameters "
                         f"(this party, peer): {diff}")
    if peer.get("n_rows") != info["n_rows"]:
        raise InputError(f"the parties have different numbers of rows ({info['n_rows']} here, "
                         f"{peer.get('n_rows')} at the peer): align them with pet.psi.align first")
    return peer


def _gains(session, hist: Shared, tot: Shared, lam: float, hmin: float, thr: Shared, leaf_check: bool = False,
           h_upper: float | None = None):
    """One-hot of the best valid candidate per node, the shared split flags, and the
    weights ``G/(H + lambda)`` of every candidate's left and right child and of the node
    ((2K + 1, nodes), rows: K left, K right, the node), from which the leaves are selected
    at the last level without another division.

    ``hist``: (K, nodes, 2) left sums (G_L, H_L); ``tot``: (nodes, 2). One batched
    reciprocal, two products, *one* batched comparison for ``[H_L >= hmin]``,
    ``[H_R >= hmin]`` and ``[gain > thr]`` of every candidate, the validity product, one
    round for the masked gains and ``e = valid * [gain > thr]``, the argmax tournament
    (one-hot only), and the split flag ``s = sum_k onehot_k e_k`` (1 round): the winner is
    the best valid candidate (or an invalid one when none is valid, then ``e = 0``), so
    ``s = [best gain > thr]`` exactly, without a comparison after the tournament.

    ``leaf_check`` (pet.ml.ranges.leaf_check_needed; issue 21): the same comparison also
    takes the signs of ``2^12 (H + lambda) -+ G`` of every weight, and the number of
    weights with ``|w| >= 2^12`` is opened to both (1 round): if any, both raise
    PrecisionError before anything else is opened (pet.ml.ranges.refuse_large_leaves)."""
    K = hist.shape[0]
    GL, HL = hist[:, :, 0], hist[:, :, 1]
    G, H = tot[:, 0].reshape(1, -1), tot[:, 1].reshape(1, -1)
    GR, HR = G - GL, H - HL
    num = concatenate([GL, GR, G], axis=0)
    den = concatenate([HL, HR, H], axis=0) + lam
    # frac 2F; 0 <= H + lambda, and below ``h_upper`` when that is set (_recip_upper): then the
    # reciprocal finds the leading one on 32-bit lanes (2 rounds less, ~40% of its AND words)
    r = reciprocal(den, positive=True, upper=h_upper)
    w = _at(num * r, F)  # G / (H + lambda)
    term = num * w
    chg = term[:K] + term[K:2 * K] - term[2 * K:]
    low = concatenate([HL, HR], axis=0) - hmin  # < 0: child too light
    above = thr - chg  # < 0: gain above the threshold (same scale as ``best > thr``)
    nk = K * chg.shape[1]
    extra = []
    if leaf_check:  # |G| < 2^12 (H + lambda): no product above wraps (pet.ml.ranges.LEAF_BITS)
        from pet.ml.ranges import LEAF_BITS
        lim = den.scaled(1 << LEAF_BITS)
        extra = [(lim - num).share.reshape(-1), (lim + num).share.reshape(-1)]
    bits = msb(session, np.concatenate([low.share.reshape(-1), above.share.reshape(-1), *extra]))
    if leaf_check:
        from pet.ml.ranges import refuse_large_leaves
        refuse_large_leaves(session, bits[3 * nk:])
    ok = _ones(session, (2 * nk,)) - Shared.from_shares(session, bits[:2 * nk], 0)
    valid = ok[:nk] * ok[nk:]
    lifted = (chg + 1.0).share.reshape(-1)  # masked = valid (chg + 1) - 1
    prod = mul_raw(session, np.concatenate([valid.share, valid.share]), np.concatenate([lifted, bits[2 * nk:3 * nk]]))
    masked = Shared.from_shares(session, prod[:nk].reshape(chg.shape), chg.frac) - 1.0
    e = Shared.from_shares(session, prod[nk:].reshape(chg.shape), 0)
    onehot = tournament(masked, axis=0, outputs=("one_hot",), arity=4).one_hot  # (K, nodes)
    split = (onehot * e).sum(axis=0)
    return onehot, split, w


def _reveal_choice(session, onehot: Shared, m0: int):
    """Open each party's own segment of the best-candidate one-hot to that party only
    (:meth:`pet.mpc.Session.reveal_split`, one round: each party sends its share of the
    *other's* segment).

    Party p learns, per node, which of its candidates won, or that none did (so the
    other party's did): the owner of every node and its own winning candidates, nothing
    about the other party's. Returns ``(owner per node, {node: own candidate index})``."""
    me = session.party
    to = (np.arange(onehot.shape[0]) >= m0).astype(np.int64)  # candidate rows: party 0's, then 1's
    mine = session.reveal_split(onehot, to, axis=0)
    won = mine.sum(axis=0)
    if not (np.all((mine == 0) | (mine == 1)) and np.all((won == 0) | (won == 1))):
        raise ProtocolError("the revealed split choice is not one-hot")
    owner = np.where(won == 1, me, 1 - me).astype(np.int64)
    nodes = np.flatnonzero(won == 1)
    if nodes.size == 0:
        return owner, {}
    return owner, {int(k): int(j) for k, j in zip(nodes, np.argmax(mine[:, nodes], axis=0))}


def _scale_power(n: int, hmax: float, lam: float) -> float:
    """Public power of two dividing g, h so that every ``H + lambda`` stays below 2^16."""
    need = (n * hmax + lam) / _H_LIMIT
    return float(2.0 ** max(0, math.ceil(math.log2(need)))) if need > 1 else 1.0


@dataclass
class _Setup:
    """What both parties agreed on and the label party's private scaling (see :func:`_agree`
    and :func:`_prepare_targets`)."""

    label_party: int
    model_id: str
    ms: list  # candidates per party
    logistic: bool
    S: float  # public power of two dividing g and h
    lam: float
    hmin: float
    pack_frac: int = F  # fractional bits of g, h in the packed histogram word
    pack_shift: int = 40  # T: the packed word is h + 2^T g
    base_margin: float = 0.0
    scale: float = 1.0
    leaf_check: bool = False  # pet.ml.ranges.leaf_check_needed (issue 21)
    h_upper: float | None = None  # public bound on (H + lambda) / S for the reciprocal (_recip_upper)

    @property
    def K(self) -> int:
        return self.ms[0] + self.ms[1]


def _agree(session, binner, params: dict, n: int, has_label: bool, objective: str) -> _Setup:
    """Setup: exchange the public facts (parameters, rows, candidate counts, who has the
    label, party 0's model id) in one round and derive the public scaling."""
    model_id = os.urandom(16).hex()  # public tag agreed below (party 0's), not a secret
    info = {"params": params, "n_rows": n, "m": binner.n_candidates, "has_label": has_label,
            "model_id": model_id}
    peer = _handshake(session, info)
    if has_label == bool(peer["has_label"]):
        raise InputError("exactly one party must pass y to fit (the label party); "
                         f"{'both' if has_label else 'neither'} did")
    label_party = session.party if has_label else 1 - session.party
    if session.party == 1:
        model_id = peer["model_id"]
    ms = [binner.n_candidates, int(peer["m"])] if session.party == 0 else [int(peer["m"]), binner.n_candidates]
    if ms[0] + ms[1] == 0:
        raise InputError("no split candidates: every feature of both parties is constant")
    logistic = objective == "binary:logistic"
    S = _scale_power(n, 0.25 if logistic else 1.0, params["reg_lambda"])
    lam = params["reg_lambda"] / S
    hmin = max(params["min_child_weight"], _plain.HESS_EPS) / S
    pack_frac, pack_shift = _packing(n / S, 0.25 if logistic else 1.0, 1.0 if logistic else _G_BOUND)
    return _Setup(label_party, model_id, ms, logistic, S, lam, hmin, pack_frac, pack_shift,
                  h_upper=_recip_upper(n, 0.25 if logistic else 1.0, params["reg_lambda"], S))


def _recip_upper(n: int, hmax: float, lam: float, S: float) -> float | None:
    """A public bound ``U = 2^16`` on every node's ``(H + lambda) / S`` when the data-independent
    worst case ``(n hmax + lambda) / S`` (plus 1% and one unit for the fixed-point rounding of
    each ``h`` and the sigmoid's error) stays below it, else None. With ``U`` the gains'
    reciprocal reduces ``H + lambda`` mod 2^32 at 16 fractional bits exactly
    (:func:`pet.mpc.reciprocal`'s ``upper``); ``S`` (:func:`_scale_power`) only guarantees
    ``<= 2^16``, so at the scaling boundaries the 64-bit path is kept."""
    worst = 1.01 * (n * hmax + lam) / S + 1.0
    return _H_LIMIT if worst < _H_LIMIT else None


def _packing(n_eff: float, hmax: float, gmax: float):
    """Public layout of the packed histogram word ``h + 2^T g`` (g, h at ``fp`` fractional
    bits): the largest ``fp <= F`` such that every sum ``H`` over up to ``n_eff`` rows lies
    in ``[0, 2^(T-1))`` and every ``|G| 2^T`` below ``2^61`` (the truncation's range), so
    the sums of packed words are the packed sums, exactly. ``fp = F`` up to 32,767 rows
    (logistic; 8,191 squared error), then one bit less per doubling of the rows (14 at
    10^5 logistic rows)."""
    for fp in range(F, F - 24, -1):
        T = math.ceil(math.log2(n_eff * hmax * 2.0 ** fp + 1)) + 1
        if math.log2(n_eff * gmax * 2.0 ** fp + 1) + T <= 61:
            return fp, T
    raise InputError("too many rows for the packed histograms")  # unreachable: n is bounded


def _prepare_targets(session, setup: _Setup, y, n: int, base_score, gamma: float):
    """Label party's private preparation, then shares of the split threshold, the targets
    and the initial margins (``session.share`` from the label party: 3 rounds)."""
    is_label = session.party == setup.label_party
    if is_label:
        y = np.asarray(y, dtype=np.float64)
        if setup.logistic:
            p0 = float(np.mean(y)) if base_score is None else float(base_score)
            p0 = min(max(p0, 1e-6), 1 - 1e-6)
            setup.base_margin = math.log(p0 / (1 - p0))
        else:
            setup.base_margin = float(np.mean(y)) if base_score is None else float(base_score)
            setup.scale = float(np.max(np.abs(y - setup.base_margin))) or 1.0
    owner = setup.label_party
    thr_value = np.array([max(gamma, _plain.KRT_EPS) / (setup.scale * setup.scale * setup.S)])
    thr = session.share(thr_value if is_label else None, owner=owner, frac_bits=2 * F)
    if setup.logistic:
        yv = session.share(y.astype(np.int64) if is_label else None, owner=owner)
        margin = session.share(np.full(n, setup.base_margin) if is_label else None, owner=owner, frac_bits=F)
    else:
        yv = session.share((y - setup.base_margin) / setup.scale if is_label else None, owner=owner,
                           frac_bits=F)
        margin = constant(session, np.zeros(n, dtype=np.int64), F)
    return thr, yv, margin


def _gradients(session, setup: _Setup, margin: Shared, yv: Shared, n: int) -> Shared:
    """Step 1: the shared gradients and hessians, divided by the public ``S``, packed into
    one ring word per row, ``h + 2^T g`` at ``setup.pack_frac`` fractional bits (returned
    as an integer Shared of shape (n,)): every later product and sum is linear, so one
    word carries both statistics (half the openings and the histogram messages)."""
    if setup.logistic:
        p = _at(sigmoid(margin, method="piecewise"), F)
        g = p - yv
        h = p - p * p
    else:
        g = margin - yv
        h = constant(session, np.ones(n, dtype=np.int64), F)
    gh = concatenate([g.reshape(1, n), h.reshape(1, n)], axis=0)
    if setup.S != 1.0:
        gh = _public_mul(gh, 1.0 / setup.S)
    gh = _at(gh, setup.pack_frac)
    return Shared.from_shares(session, gh.share[1] + (gh.share[0] << np.uint64(setup.pack_shift)), 0)


def _first_gradients(session, setup: _Setup, y, n: int) -> Shared:
    """Step 1 for the first tree, without MPC: every margin is still the label party's base
    margin, so the label party computes ``g, h`` of every row from its own labels (logistic:
    ``p = sigmoid(base margin)`` exactly, ``g = p - y``, ``h = p (1 - p)``; squared error:
    ``g = -(y - base) / scale``, ``h = 1``), divides them by ``S`` and shares them at the
    packing's precision (:meth:`pet.mpc.Session.share`: 1 round, 16 bytes per row from the
    label party; instead of the piecewise sigmoid's 24 rounds and about 0.7 kB per row).
    Packed as :func:`_gradients` packs. What each party learns: the other party a uniform
    share, nothing else (the values are functions of the label party's own data)."""
    values = None
    if session.party == setup.label_party:
        yl = np.asarray(y, dtype=np.float64).reshape(n)
        if setup.logistic:
            p = 1.0 / (1.0 + math.exp(-setup.base_margin))
            g, h = p - yl, np.full(n, p * (1.0 - p))
        else:
            g, h = -(yl - setup.base_margin) / setup.scale, np.ones(n)
        values = np.stack([g, h]) / setup.S
    gh = session.share(values, owner=setup.label_party, frac_bits=setup.pack_frac)
    return Shared.from_shares(session, gh.share[1] + (gh.share[0] << np.uint64(setup.pack_shift)), 0)


def _unpack(session, setup: _Setup, packed: Shared) -> Shared:
    """``(..., 2)`` shares of ``G, H`` at ``F`` fractional bits from packed sums
    ``P = H + 2^T G`` (``H`` in ``[0, 2^(T-1))``), 2 rounds on the (n-independent) sums,
    both truncations exact (:func:`pet.mpc.truncation.trunc` drops only a borrow of the
    low bits, and those are zero here):

    1. ``H``: ``(P - 2^(T-2)) << (64 - T)`` (local) is ``(H - 2^(T-2)) 2^(64-T)`` modulo
       2^64 -- ``G`` shifted out --, inside the truncation's range ``[-2^62, 2^62)`` and
       with zero low ``64 - T`` bits; truncated by ``64 - T`` and ``2^(T-2)`` added back;
    2. ``G``: ``P - H = 2^T G`` truncated by ``T`` (zero low bits again).

    Only dealer-masked values are opened (the truncations' ``x + r``): the parties learn
    nothing about the sums. (The dealer-free truncation may add one ulp to ``H`` and
    subtract one from ``G``.)"""
    T = setup.pack_shift
    raw = packed.share.reshape(-1)
    off = np.uint64(1 << (T - 2)) if session.party == 0 else np.uint64(0)
    lo = trunc(session, (raw - off) << np.uint64(64 - T), 64 - T) + off
    hi = trunc(session, raw - lo, T)
    up = np.uint64(F - setup.pack_frac)
    g = hi << up
    h = lo << up
    return Shared.from_shares(session, np.stack([g, h], axis=-1).reshape(packed.shape + (2,)), F)


def _level_histograms(session, setup: _Setup, products, y: Shared, V, packed, n: int, nodes: int):
    """Step 2: per-candidate left sums and per-node totals of every node of the level, as
    packed words (fresh for the left children or the root: ``C_p.T @ (v * y)`` on ``n x L``,
    the right ones by subtraction), then unpacked for the gains. ``V``: the level's
    XOR-shared membership words (:func:`_children_words`; ``None`` at the root); the left
    children's bits become arithmetic 0/1 shares by one B2A (1 round, one opened word per
    row and ``ceil(nodes / 64)``). Returns
    ``((hist (K, nodes), tot (nodes,)) packed, hist (K, nodes, 2), tot (nodes, 2))``."""
    if V is None:
        yv = y.reshape(n, 1)
    else:
        nw = V.shape[1]  # words per row (one up to 64 nodes)
        y_words = y if nw == 1 else Shared.from_shares(session, np.repeat(y.share.reshape(n), nw), y.frac)
        # (n, L): the left children's bits times the packed words, exact (one round)
        yv = bits_times(session, V.reshape(-1), tuple(range(0, min(nodes, 64), 2)), y_words).reshape(n, -1)
    hL = products.matmul(yv)  # (K, L)
    tL = yv.sum(axis=0)  # (L,)
    if V is not None:
        hist, tot = packed
        hL = _interleave(session, hL, hist - hL)
        tL = _interleave(session, tL, tot - tL)
    K = hL.shape[0]
    both = _unpack(session, setup, concatenate([hL.reshape(-1), tL.reshape(-1)]))
    return (hL, tL), both[:K * nodes].reshape(K, nodes, 2), both[K * nodes:].reshape(nodes, 2)


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """(n, k) 0/1 -> (n, ceil(k / 64)) uint64 words, column ``j`` at bit ``j % 64`` of word
    ``j // 64`` (XOR-linear, so it applies to XOR shares)."""
    n, k = bits.shape
    padded = np.zeros((n, -(-k // 64) * 64), dtype=np.uint8)
    padded[:, :k] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64)


def _unpack_bits(words: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`_pack_bits`: (n, nw) uint64 -> (n, k) uint8."""
    raw = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :k]


def _right_words(session, owner: np.ndarray, left_own: np.ndarray, n: int) -> np.ndarray:
    """This party's XOR share of the directions ``q = [row goes right]`` of the level's
    nodes as bit-packed words (n, ceil(nodes / 64)): the owner of node ``k`` holds ``q_k``
    at bit ``k``, the other party 0 there (no message). Such a
    sharing hides nothing by itself, so it only enters AND gates, whose openings are
    masked by the dealer's fresh AND triples."""
    owner = np.asarray(owner, dtype=np.int64)
    bits = np.zeros((n, owner.size), dtype=np.uint8)
    bits[:, owner == session.party] = 1 - np.asarray(left_own, dtype=np.uint8).reshape(n, -1)
    return _pack_bits(bits)


def _flag_words(split: Shared, n: int) -> np.ndarray:
    """This party's XOR share of the split flags as words (n, ceil(nodes / 64)), the same
    for every row: for a 0/1 value ``s = s_0 + s_1`` (mod 2^64) the low bit of the sum
    is the XOR of the shares' low bits, so ``lsb(s_p)`` is an XOR share of ``s`` (local)."""
    low = (split.share & np.uint64(1)).astype(np.uint8).reshape(1, -1)
    return np.ascontiguousarray(np.broadcast_to(_pack_bits(low), (n, -(-low.shape[1] // 64))))


def _all_ones(session, n: int, nodes: int) -> np.ndarray:
    """XOR shares of the all-ones membership of ``nodes`` nodes (party 0 holds it)."""
    return _pack_bits(np.full((n, nodes), 1 if session.party == 0 else 0, dtype=np.uint8))


def _children_words(session, V, Q: np.ndarray, split: Shared, n: int, nodes: int) -> np.ndarray:
    """Step 5 on XOR-shared bits: ``v_R = v & s & q``, ``v_L = v ^ v_R`` for every node
    (bit ``k``: node ``k`` of the level; ``V=None``: the root), laid out as the next
    level's words (children of node ``k`` at bits ``2k``, ``2k + 1``). Two AND rounds
    (one at the root), each party sending two words per row and ``ceil(nodes / 64)``
    words -- instead of ``n x nodes`` ring elements for a matrix triple and a Beaver
    product. Opened values: only AND-triple-masked words."""
    S = _flag_words(split, n)
    if V is None:
        V, VS = _all_ones(session, n, nodes), S
    else:
        (VS,) = and_words(session, V, [S])
    (VR,) = and_words(session, VS, [Q])
    VL = V ^ VR
    kids = np.stack([_unpack_bits(VL, nodes), _unpack_bits(VR, nodes)], axis=-1).reshape(n, 2 * nodes)
    return _pack_bits(kids)


def _choose_splits(session, binner, X, setup: _Setup, hist, tot, thr, n: int):
    """Steps 3-4 for one level and the owners' shared directions ``Q`` (n x nodes):
    gains and the best candidate (3), its owner opened to both and the candidate to its
    owner (4). Returns ``(Q, owner, own_nodes, cand, split, onehot, w)``."""
    onehot, split, w = _gains(session, hist, tot, setup.lam, setup.hmin, thr, setup.leaf_check, setup.h_upper)
    owner, mine = _reveal_choice(session, onehot, setup.ms[0])
    own_nodes = np.flatnonzero(owner == session.party)
    cand = np.array([mine[int(j)] for j in own_nodes], dtype=np.int64)
    left_own = binner.indicator(X, cand).astype(bool) if cand.size else np.zeros((n, 0), bool)
    Q = _right_words(session, owner, left_own, n)
    return Q, owner, own_nodes, cand, split, onehot, w


def _split_level(session, binner, X, setup: _Setup, hist, tot, thr, V, n: int):
    """Steps 3-5 for a level above the last: :func:`_choose_splits`, then the children's
    membership words (5, :func:`_children_words`). Returns ``(V, owner, own_nodes, cand, split)``."""
    Q, owner, own_nodes, cand, split, _, _ = _choose_splits(session, binner, X, setup, hist, tot, thr, n)
    nodes = owner.size
    return _children_words(session, V, Q, split, n, nodes), owner, own_nodes, cand, split


def _last_level(session, binner, X, setup: _Setup, hist, tot, thr, V, n: int, learning_rate: float):
    """Steps 3-6 for the last split level, per node instead of per row: the leaves'
    weights are *selected* from the gains' per-candidate weights (no per-row sums, no
    second division) and the rows' margin increments come from the parents' membership
    and the owners' directions, without forming the leaves' membership.

    For node ``k`` with split flag ``s``, best candidate's child weights ``w_L, w_R``
    (selected by the one-hot: one product round on K x nodes) and own weight ``w_P``:
    left leaf ``w_P + s (w_L - w_P)`` (a node that does not split passes every row left,
    as xgboost's leaf), right leaf ``s w_R`` (empty when ``s = 0``), both times
    ``-learning_rate`` (one truncation round); the products with ``s`` share one round.
    A row of node ``k`` (membership ``v``, direction ``q``) gets
    ``v left_k + (v & q) s (w_R - w_L)``: one AND round for ``v & q`` on the XOR-shared
    bits, one B2A round for the ``2 x nodes`` bits of a row (one opened word per row and
    64 bits), and one matrix product ``[v, v & q] @ [left; delta]`` (n x 2 nodes times a
    vector: opens the ``n x 2 nodes`` masked bits, no truncation).

    Returns ``(owner, own_nodes, cand, split, leaves (2 nodes,), increment (n,))``."""
    Q, owner, own_nodes, cand, split, onehot, w = _choose_splits(session, binner, X, setup, hist, tot, thr, n)
    K, nodes = onehot.shape
    picked = (stack([onehot, onehot]) * w[:2 * K].reshape(2, K, nodes)).sum(axis=1)  # (2, nodes)
    wl, wr, wp = picked[0], picked[1], w[2 * K]
    with_s = split.reshape(1, nodes) * stack([wl - wp, wr, wr - wl])  # one round, exact (s is 0/1)
    scaled = _public_mul(concatenate([wp.reshape(1, nodes), with_s]), -learning_rate)
    left, right, delta = scaled[0] + scaled[1], scaled[2], scaled[3]
    if V is None:
        V, VQ = _all_ones(session, n, nodes), Q
    else:
        (VQ,) = and_words(session, V, [Q])
    both = _pack_bits(np.concatenate([_unpack_bits(V, nodes), _unpack_bits(VQ, nodes)], axis=1))
    if both.shape[1] == 1:  # up to 32 nodes: the row's bits dotted with the weights, one round
        inc = bits_dot(session, both.reshape(-1), tuple(range(2 * nodes)), concatenate([left, delta]))
    else:
        bits = b2a_bits(session, both, tuple(range(64)), element_major=True).reshape(n, 2 * nodes)
        inc = Shared.from_shares(session, bits, 0) @ concatenate([left, delta])
    return owner, own_nodes, cand, split, _interleave(session, left, right), inc


def _row_product_specs(n: int, D: int) -> list:
    """The ``n``-row bit-product requests of one tree, in the order the tree makes them:
    :func:`pet.mpc.bit_products.bits_times` of the histograms of levels ``1 .. D-1``
    (:func:`_level_histograms`) and :func:`pet.mpc.bit_products.bits_dot` of the last level
    (:func:`_last_level`, up to 32 nodes)."""
    specs = []
    for d in range(1, D):
        nodes = 2 ** d
        specs.append(B2AMul((n * -(-nodes // 64),), tuple(range(0, min(nodes, 64), 2)), 0))
    if 2 ** D <= 64:
        specs.append(B2AMul((n,), tuple(range(2 ** D)), 1))
    return specs


def _prefetch_first_tree(session, n: int, D: int) -> None:
    """First tree only (later trees prefetch the plan it records): request the tree's
    large bit-product material now (:func:`_row_product_specs`, ``2 n (2^D + 2^(D-1))``
    ring elements of corrections at depth ``D``), so that it streams in over the dealer
    link while the tree computes instead of being waited for at each level. A source
    serves a prefetched request to the next ``get`` with exactly its specs, whatever was
    fetched in between, so the other requests of the tree are unaffected. No extra round
    or byte: the same requests, sent earlier."""
    prefetch = getattr(session.source, "prefetch", None)
    if prefetch is not None:
        for spec in _row_product_specs(n, D):
            prefetch([spec])


def _own_splits(binner, own_cand: np.ndarray):
    """This party's own splits (feature, threshold, default direction) of every tree."""
    feat = np.full(own_cand.shape, -1, dtype=np.int64)
    cut = np.full(own_cand.shape, np.nan)
    dleft = np.zeros(own_cand.shape, dtype=bool)
    sel = own_cand >= 0
    feat[sel] = binner.feature[own_cand[sel]]
    cut[sel] = binner.cut[own_cand[sel]]
    dleft[sel] = binner.default_left[own_cand[sel]]
    return feat, cut, dleft


def train(session, X: np.ndarray, y, *, objective: str, n_estimators: int, max_depth: int,
          learning_rate: float, reg_lambda: float, gamma: float, min_child_weight: float,
          max_bin: int, base_score, callback=None) -> dict:
    """Train on this party's columns ``X`` (and ``y`` at the label party); returns this
    party's model state (see :mod:`pet.ml.model_io` for its fields). The steps of the
    module docstring: :func:`_gradients` (1), :func:`_level_histograms` (2),
    :func:`_split_level` (3-5), :func:`_last_level` (3-4 and 6 at the last split level)."""
    n = X.shape[0]
    binner = Binner(max_bin).fit(X)
    params = {"objective": objective, "n_estimators": n_estimators, "max_depth": max_depth,
              "learning_rate": learning_rate, "reg_lambda": reg_lambda, "gamma": gamma,
              "min_child_weight": min_child_weight, "max_bin": max_bin}
    setup = _agree(session, binner, params, n, y is not None, objective)
    from pet.ml.ranges import check_training, leaf_check_needed  # issue 21: worst-case ranges
    check_training(n, params)
    setup.leaf_check = leaf_check_needed(n, params)
    thr, yv, margin = _prepare_targets(session, setup, y, n, base_score, gamma)
    # private matrices (one-time masked transfer of each party's indicator)
    codes = BinCodes(binner, X)
    pms = candidate_matrices(session, codes, setup.ms, n)

    D = max_depth
    n_inner = 2 ** D - 1
    owners = np.zeros((n_estimators, n_inner), dtype=np.int8)
    own_cand = np.full((n_estimators, n_inner), -1, dtype=np.int64)
    split_sh = np.zeros((n_estimators, n_inner), dtype=np.uint64)
    leaf_sh = np.zeros((n_estimators, 2 ** D), dtype=np.uint64)
    # every tree repeats the first one's requests (all shapes are public and fixed): later
    # trees ask the dealer for all of them at the tree's start, and its corrections stream
    # in over the dealer link while the tree computes (each is waited for only when used)
    prefetcher = Prefetcher(session)
    for t in range(n_estimators):
        # the first tree's gradients are the label party's own (:func:`_first_gradients`), so
        # the gradients are a block of their own (recorded in the second tree); the products'
        # dealer request goes first, so its dense correction overlaps the gradients
        with prefetcher.block("gradients") if t else contextlib.nullcontext():
            products = PreparedProducts(pms, 2 ** (D - 1))  # columns: 1 at the root, 2^(d-1) at level d >= 1
            if t == 0:  # after the products' request, whose corrections the root needs first
                _prefetch_first_tree(session, n, D)
            gh = _gradients(session, setup, margin, yv, n) if t else _first_gradients(session, setup, y, n)
        with prefetcher.block("tree"):
            V = None  # membership words at the current level (None: root, all ones)
            packed = None
            k = 0
            for d in range(D):
                nodes = 2 ** d
                packed, hist, tot = _level_histograms(session, setup, products, gh, V, packed, n, nodes)
                if d < D - 1:
                    V, owner, own_nodes, cand, split = _split_level(session, binner, X, setup, hist, tot, thr,
                                                                    V, n)
                else:
                    owner, own_nodes, cand, split, w, inc = _last_level(session, binner, X, setup, hist, tot,
                                                                        thr, V, n, learning_rate)
                owners[t, k:k + nodes] = owner
                own_cand[t, k + own_nodes] = cand
                split_sh[t, k:k + nodes] = split.share
                k += nodes
        leaf_sh[t] = _at(w, F).share
        margin = margin + _at(inc, F)
        if callback is not None:
            callback(t + 1, n_estimators)

    feat, cut, dleft = _own_splits(binner, own_cand)
    state = {
        "model_id": setup.model_id, "party": session.party, "label_party": setup.label_party,
        "params": params, "n_features": X.shape[1], "owner": owners, "feature": feat,
        "cut": cut, "default_left": dleft, "split_share": split_sh, "leaf_share": leaf_sh,
        "frac": F,
    }
    if session.party == setup.label_party:
        state["base_margin"] = setup.base_margin
        state["scale"] = setup.scale
    return state


def _leaf_bits(session, owner: np.ndarray, left_own: np.ndarray, split_share: np.ndarray, n: int, T: int,
               D: int) -> Shared:
    """Prediction: arithmetic 0/1 shares (n, T 2^D) of the leaf each row reaches in each
    tree (column ``t 2^D + leaf``), from the owners' directions and the split flags as
    XOR-shared bit words (as in training, :func:`_children_words`): ``r = q & s`` for every
    inner node of every tree (1 AND round), then per depth ``v_R = v & r``, ``v_L = v ^ v_R``
    (``D - 1`` AND rounds), one B2A round. Each party sends a few words per row per round
    instead of ``n x T (2^D - 1)`` Beaver products; only dealer-masked words are opened."""
    n_inner = 2 ** D - 1
    Q = _right_words(session, owner, left_own, n)  # column t * n_inner + node
    S = _flag_words(Shared.from_shares(session, split_share, 0), n)
    (R,) = and_words(session, Q, [S])
    Rb = _unpack_bits(R, T * n_inner).reshape(n, T, n_inner)
    V = None
    k = 0
    for d in range(D):
        cols = T * 2 ** d  # column t 2^d + node: its children are at t 2^(d+1) + 2 node (+1)
        Rd = _pack_bits(np.ascontiguousarray(Rb[:, :, k:k + 2 ** d]).reshape(n, cols))
        if V is None:
            V, VR = _all_ones(session, n, cols), Rd
        else:
            (VR,) = and_words(session, V, [Rd])
        VL = V ^ VR
        V = _pack_bits(np.stack([_unpack_bits(VL, cols), _unpack_bits(VR, cols)], axis=-1).reshape(n, 2 * cols))
        k += 2 ** d
    total = T * 2 ** D
    bits = b2a_bits(session, V, tuple(range(min(total, 64))), element_major=True).reshape(n, -1)[:, :total]
    return Shared.from_shares(session, np.ascontiguousarray(bits), 0)


def predict_margin(session, state: dict, X: np.ndarray):
    """Margins of the rows ``X`` (this party's columns, aligned as at fit): the label party
    gets a float array, the other party ``None``."""
    n = X.shape[0]
    params = state["params"]
    info = {"params": params, "n_rows": n, "model_id": state["model_id"]}
    peer = _handshake(session, info)
    if peer.get("model_id") != state["model_id"]:
        raise InputError("the two parties loaded different models (model ids differ)")
    if X.shape[1] != state["n_features"]:
        raise InputError(f"X has {X.shape[1]} columns, the model was trained on {state['n_features']}")
    T, n_inner = state["owner"].shape
    D = int(params["max_depth"])
    owner = state["owner"].reshape(-1)
    mine = np.flatnonzero(owner == session.party)
    left = goes_left(X, state["feature"].reshape(-1)[mine], state["cut"].reshape(-1)[mine],
                     state["default_left"].reshape(-1)[mine])
    leaves = _leaf_bits(session, owner, left, state["split_share"].reshape(-1), n, T, D)
    w = Shared.from_shares(session, state["leaf_share"], state["frac"])
    total = leaves @ w.reshape(T * 2 ** D)
    out = session.reveal(total, to=state["label_party"])
    if out is None:
        return None
    return state["base_margin"] + state["scale"] * np.asarray(out, dtype=np.float64)
