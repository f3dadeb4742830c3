"""Deterministic test graphs (planted partitions) split between two parties.

numpy's seeded generator is used for *public test data* only, never for secrets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def planted_partition(n_blocks, block_size, p_in, n_out_edges, seed=0):
    """Edges (int array (E, 2), u < v) of a planted-partition graph: each block an
    Erdos-Renyi graph with ``p_in``, plus ``n_out_edges`` uniformly random edges between
    different blocks (duplicates removed)."""
    rng = np.random.default_rng(seed)  # not-secret: public test data
    iu = np.triu_indices(block_size, 1)
    parts = []
    for b in range(n_blocks):
        keep = rng.random(iu[0].size) < p_in
        parts.append(np.stack([iu[0][keep], iu[1][keep]], 1) + b * block_size)
    n = n_blocks * block_size
    u = rng.integers(0, n, 2 * n_out_edges)
    v = rng.integers(0, n, 2 * n_out_edges)
    ok = (u // block_size) != (v // block_size)
    out = np.stack([np.minimum(u, v), np.maximum(u, v)], 1)[ok][:n_out_edges]
    edges = np.unique(np.concatenate(parts + [out]), axis=0)
    return n, edges


def split(n, edges, owner, weights=None, shares=None):
    """Each party's ``(nodes, edges DataFrame)``: internal edges with their weight, cross
    edges with the share ``shares`` (default half) to party 0 and the rest to party 1."""
    w = np.ones(len(edges)) if weights is None else np.asarray(weights, dtype=float)
    cross = owner[edges[:, 0]] != owner[edges[:, 1]]
    s0 = w * 0.5 if shares is None else np.asarray(shares, dtype=float)
    out = []
    for p in (0, 1):
        nodes = np.flatnonzero(owner == p).tolist()
        mine = (owner[edges[:, 0]] == p) | (owner[edges[:, 1]] == p)
        ww = np.where(cross, s0 if p == 0 else w - s0, w)[mine]
        e = edges[mine]
        out.append((nodes, pd.DataFrame({"source": e[:, 0], "target": e[:, 1], "weight": ww})))
    return out
