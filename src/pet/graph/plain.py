"""Plaintext, sequential, deterministic Leiden for one party holding the whole graph.

:func:`leiden_plaintext` is the classic algorithm (Traag, Waltman & van Eck 2019) that the
two-party :func:`pet.graph.leiden` distributes: fast local moving with a queue (the empty
community is always a candidate), refinement inside every community (a node is considered
while it is a singleton and well connected to its community, ``w(v, S-v) >= gamma k_v
(K_S - k_v) / 2m``; it joins the well-connected sub-community ``T`` (``w(T, S-T) >= gamma
K_T (K_S - K_T) / 2m``) with the largest positive gain, the ``theta -> 0`` form of the
randomised merge), aggregation of the sub-communities with the local-moving partition as
the start, until a level changes nothing; ``n_iterations`` passes. Sub-communities grow only
along edges, so every community of the result is connected.

Node orders come from a splitmix64 hash of ``(seed, level, node)`` (public, reproducible on
every machine); ties go to staying, then to the smallest label. No cryptography: this is
for single-party use and as a reference for the two-party version.
"""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np

from pet.errors import InputError
from pet.graph.inputs import check_resolution
from pet.graph.state import group_of

__all__ = ["leiden_plaintext"]


class _Graph:
    def __init__(self, n, src, dst, w):
        self.n = n
        loops = src == dst
        self.loop = np.zeros(n)
        np.add.at(self.loop, src[loops], w[loops])
        s, d, ww = src[~loops], dst[~loops], w[~loops]
        self.adj = [dict() for _ in range(n)]
        for a, b, x in zip(s.tolist(), d.tolist(), ww.tolist()):
            self.adj[a][b] = self.adj[a].get(b, 0.0) + x
            self.adj[b][a] = self.adj[b].get(a, 0.0) + x
        self.k = np.array([sum(self.adj[i].values()) for i in range(n)]) + 2 * self.loop
        self.m2 = float(self.k.sum())


def _order(seed, level, salt, n):
    keys = group_of(seed, level, salt, np.arange(n), 1 << 62)
    return np.lexsort((np.arange(n), keys)).tolist()


def _local_moving(g, part, gamma, order):
    n, k, m2 = g.n, g.k, g.m2
    K = np.zeros(n)
    np.add.at(K, part, k)
    size = np.bincount(part, minlength=n)
    free = [c for c in range(n) if size[c] == 0]  # labels of empty communities
    heapq.heapify(free)
    queue, inq = deque(order), np.ones(n, dtype=bool)
    moved = 0
    while queue:
        v = queue.popleft()
        inq[v] = False
        c = int(part[v])
        wmap = {}
        for u, x in g.adj[v].items():
            lu = int(part[u])
            wmap[lu] = wmap.get(lu, 0.0) + x
        K[c] -= k[v]
        size[c] -= 1
        best, best_gain = c, wmap.get(c, 0.0) - gamma * k[v] * K[c] / m2
        for d in sorted(wmap):
            if d == c:
                continue
            gain = wmap[d] - gamma * k[v] * K[d] / m2
            if gain > best_gain:
                best, best_gain = d, gain
        if size[c] > 0 and free and best_gain < 0.0:  # the empty community has gain 0
            best, best_gain = heapq.heappop(free), 0.0
        K[best] += k[v]
        size[best] += 1
        if best != c and size[c] == 0:
            heapq.heappush(free, c)
        part[v] = best
        if best != c:
            moved += 1
            for u in g.adj[v]:
                if part[u] != best and not inq[u]:
                    inq[u] = True
                    queue.append(u)
    return moved


def _refine(g, part, gamma, order):
    n, k, m2 = g.n, g.k, g.m2
    KS = np.zeros(n)
    np.add.at(KS, part, k)
    ref = np.arange(n)
    KR = k.astype(float).copy()
    cnt = np.ones(n, dtype=np.int64)
    ext = np.array([sum(x for u, x in g.adj[v].items() if part[u] == part[v]) for v in range(n)])
    merges = 0
    for v in order:
        if cnt[ref[v]] != 1:
            continue
        s = part[v]
        if ext[v] < gamma * k[v] * (KS[s] - k[v]) / m2:
            continue  # not well connected to its community
        wmap = {}
        for u, x in g.adj[v].items():
            if part[u] == s and ref[u] != ref[v]:
                wmap[int(ref[u])] = wmap.get(int(ref[u]), 0.0) + x
        best, best_gain = -1, 0.0
        for t in sorted(wmap):
            if ext[t] < gamma * KR[t] * (KS[s] - KR[t]) / m2:
                continue  # the target is not well connected
            gain = wmap[t] - gamma * k[v] * KR[t] / m2
            if gain > best_gain:
                best, best_gain = t, gain
        if best < 0:
            continue
        old = ref[v]
        ext[best] = ext[best] + ext[old] - 2 * wmap[best]
        KR[best] += k[v]
        KR[old] = 0.0
        cnt[best] += 1
        cnt[old] = 0
        ref[v] = best
        merges += 1
    return ref, merges


def _aggregate(g, ref, part):
    labels, new = np.unique(ref, return_inverse=True)
    src, dst, w = [], [], []
    for a in range(g.n):
        for b, x in g.adj[a].items():
            if a < b:
                src.append(new[a])
                dst.append(new[b])
                w.append(x)
        if g.loop[a]:
            src.append(new[a])
            dst.append(new[a])
            w.append(g.loop[a])
    h = _Graph(labels.size, np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64),
               np.asarray(w, dtype=float))
    p2 = np.empty(labels.size, dtype=np.int64)
    p2[new] = part
    return h, new, np.unique(p2, return_inverse=True)[1].astype(np.int64)  # labels < n


def leiden_plaintext(n, edges, weights=None, *, resolution=1.0, seed=0, n_iterations=2, max_levels=50):
    """Membership (int64 array of length ``n``, labels ``0 .. c-1``) of
    the Leiden partition of the undirected graph with ``edges`` (pairs of node indices
    ``0 .. n-1``) and non-negative ``weights`` (default 1)."""
    gamma = check_resolution(resolution)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise InputError(f"edges must hold node indices in 0..{n - 1}")
    w = np.ones(len(edges)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(edges),) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError("weights must be finite, >= 0 and one per edge")
    g0 = _Graph(int(n), edges[:, 0], edges[:, 1], w)
    part0 = np.arange(n, dtype=np.int64)
    for it in range(20 if n_iterations == -1 else int(n_iterations)):
        g, part, map0, any_move = g0, part0.copy(), np.arange(n), False
        for level in range(max_levels):
            moved = _local_moving(g, part, gamma, _order(seed, level, 2 * it, g.n))
            any_move = any_move or moved > 0
            ref, merges = _refine(g, part, gamma, _order(seed, level, 2 * it + 1, g.n))
            if merges == 0:
                break
            g, mapping, part = _aggregate(g, ref, part)
            map0 = mapping[map0]
        part0 = part[map0]
        if not any_move:
            break
    return np.unique(part0, return_inverse=True)[1].astype(np.int64) if n else part0
