"""One party's view of one level of the split graph, its community labels, and aggregation.

Nodes a party *knows* at a level: the **public** nodes (level 0: the endpoints of cross-party
edges; later: aggregate nodes containing a public node), indexed ``0 .. n_pub-1`` in the
same order on both sides, then its **own private** nodes (``n_pub ..``). The peer's private
nodes are invisible to it. Edges are this party's *shares* of edge weights between known
nodes (an internal edge: the whole weight at its owner, 0 at the peer; a cross edge: a share
at each), as integers in fixed point. A node's degree share is the sum of its edge shares
(self-loops twice), so the two degree shares of a node add up to its degree.

Community labels are ``int64``: ``>= 0`` is a *public* label (both parties know its id;
every public node's community is public), ``< 0`` is this party's private label
``-1 - j``. :class:`LabelStore` keeps this party's share of every label's degree total
``K`` (the sum of its members' degree shares; both shares add up to the true total).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LevelGraph", "LabelStore", "build_csr", "aggregate", "group_of"]


@dataclass
class LevelGraph:
    """Known nodes, CSR adjacency with this party's weight shares, degree shares."""

    n_pub: int
    n_known: int
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray  # int64 shares
    deg: np.ndarray  # int64 shares

    @property
    def n_priv(self) -> int:
        return self.n_known - self.n_pub


def build_csr(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray):
    """Symmetric CSR (both directions) of the undirected edges ``src-dst`` (no self-loops),
    duplicates summed; neighbours of each node in ascending order."""
    keep = src != dst
    s = np.concatenate([src[keep], dst[keep]]).astype(np.int64)
    d = np.concatenate([dst[keep], src[keep]]).astype(np.int64)
    ww = np.concatenate([w[keep], w[keep]]).astype(np.int64)
    if s.size:
        key = s * np.int64(n) + d
        order = np.argsort(key, kind="stable")
        key, ww = key[order], ww[order]
        first = np.ones(key.size, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(first)
        ww = np.add.reduceat(ww, starts) if starts.size else ww
        key = key[starts]
        s, d = key // n, key % n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, s + 1, 1)
    indptr = np.cumsum(indptr)
    return indptr, d.astype(np.int64), ww.astype(np.int64)


class LabelStore:
    """This party's shares of the degree totals of public and private labels, and member
    counts used by the refinement (public: public members + 1 if the label was promoted
    from a private one; private: this party's members)."""

    def __init__(self):
        self.K_pub = np.zeros(0, dtype=np.int64)
        self.K_priv = np.zeros(0, dtype=np.int64)
        self.cnt_pub = np.zeros(0, dtype=np.int64)
        self.cnt_priv = np.zeros(0, dtype=np.int64)

    @property
    def n_pub(self) -> int:
        return self.K_pub.size

    def new_public(self, count: int) -> np.ndarray:
        start = self.K_pub.size
        self.K_pub = np.concatenate([self.K_pub, np.zeros(count, dtype=np.int64)])
        self.cnt_pub = np.concatenate([self.cnt_pub, np.zeros(count, dtype=np.int64)])
        return np.arange(start, start + count, dtype=np.int64)

    def new_private(self, count: int) -> np.ndarray:
        start = self.K_priv.size
        self.K_priv = np.concatenate([self.K_priv, np.zeros(count, dtype=np.int64)])
        self.cnt_priv = np.concatenate([self.cnt_priv, np.zeros(count, dtype=np.int64)])
        return -1 - np.arange(start, start + count, dtype=np.int64)

    def K(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels, dtype=np.int64)
        out = np.zeros(labels.shape, dtype=np.int64)
        pub = labels >= 0
        out[pub] = self.K_pub[labels[pub]]
        out[~pub] = self.K_priv[-1 - labels[~pub]]
        return out

    def add_K(self, labels: np.ndarray, amounts: np.ndarray) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        pub = labels >= 0
        np.add.at(self.K_pub, labels[pub], amounts[pub])
        np.add.at(self.K_priv, -1 - labels[~pub], amounts[~pub])

    def count(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels, dtype=np.int64)
        out = np.zeros(labels.shape, dtype=np.int64)
        pub = labels >= 0
        out[pub] = self.cnt_pub[labels[pub]]
        out[~pub] = self.cnt_priv[-1 - labels[~pub]]
        return out


def group_of(seed: int, level: int, salt: int, ids: np.ndarray, n_groups: int) -> np.ndarray:
    """Public, seed-derived batch group of each node id (splitmix64 of seed, level, id).

    Not secret: both parties derive the same groups for public nodes from the agreed seed.
    """
    with np.errstate(over="ignore"):
        z = (np.asarray(ids, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(level + 1)
             + np.uint64((int(seed) * 0x632BE59BD9B4E019 + salt * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_groups)).astype(np.int64)


def aggregate(g: LevelGraph, ref: np.ndarray, comm: np.ndarray):
    """Collapse the refined communities ``ref`` into the nodes of the next level.

    Public refined labels (those of public nodes) become the public nodes of the next level,
    in ascending label order (the same on both sides); this party's private refined labels
    of its private nodes become its private nodes. Returns ``(next graph, node map, next
    community labels)`` where ``node map[i]`` is the next-level node of known node ``i``.
    All local: each party sums its own shares.
    """
    pub_labels = np.unique(ref[: g.n_pub])
    priv_mask = ref < 0
    priv_labels = np.unique(ref[priv_mask])[::-1]  # -1, -2, ... : ascending private index
    n_pub2 = pub_labels.size
    n2 = n_pub2 + priv_labels.size
    mapping = np.empty(g.n_known, dtype=np.int64)
    pubsel = ~priv_mask
    mapping[pubsel] = np.searchsorted(pub_labels, ref[pubsel])
    if priv_labels.size:
        order = -1 - priv_labels  # ascending private indices
        mapping[priv_mask] = n_pub2 + np.searchsorted(order, -1 - ref[priv_mask])
    src = np.repeat(np.arange(g.n_known, dtype=np.int64), np.diff(g.indptr))
    s2, d2 = mapping[src], mapping[g.indices]
    half = src < g.indices  # each undirected edge once
    indptr, indices, weights = build_csr(n2, s2[half], d2[half], g.weights[half])
    deg = np.zeros(n2, dtype=np.int64)
    np.add.at(deg, mapping, g.deg)
    comm2 = np.empty(n2, dtype=np.int64)
    comm2[mapping] = comm
    return LevelGraph(n_pub2, n2, indptr, indices, weights, deg), mapping, comm2
