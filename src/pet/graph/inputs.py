"""One party's graph input: canonical node keys, local validation, and the split into
internal and cross-party edges.

A node id may be an ``int`` or a ``str``; both parties compare ids by their *canonical key*
``str(id)`` (so ``7`` and ``"7"`` are the same node, as in the reference system's JSON
fixtures, whose adjacency keys are strings and whose node lists are ints).

``edges`` has columns ``source, target, weight``. An edge whose two endpoints are this
party's nodes is *internal*: this party knows its whole weight. An edge with exactly one
endpoint among this party's nodes is a *cross-party* edge: the peer lists the same edge and
``weight`` is this party's additive share. An edge with no endpoint among this party's nodes
is an error. Each undirected edge is listed once per party (``(u, v)`` and ``(v, u)`` together
are a duplicate). Self-loops are allowed on internal nodes (they count twice in the degree).

Everything here is local: nothing is sent. The joint checks (cross edges listed by both,
nodes claimed by both, non-negative total cross weights) are in :mod:`pet.graph.setup`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pet.errors import InputError, PetTypeError

__all__ = ["GraphError", "LocalInput", "canonical_key", "prepare_input"]


class GraphError(InputError):
    """Invalid graph input (this party's or, as reported by it, the peer's)."""


def canonical_key(node) -> str:
    """The key two parties compare node ids by: ``str(id)`` for int and str ids."""
    if isinstance(node, (bool, np.bool_)):
        raise PetTypeError(f"node ids must be int or str, got bool {node!r}")
    if isinstance(node, (int, np.integer)):
        return str(int(node))
    if isinstance(node, str):
        if node == "":
            raise GraphError("node ids must not be empty strings")
        return node
    if isinstance(node, (float, np.floating)) and float(node).is_integer():
        # pandas turns an int column with missing values into floats; accept exact integers
        return str(int(node))
    raise PetTypeError(f"node ids must be int or str, got {type(node).__name__} {node!r}")


@dataclass
class LocalInput:
    """This party's validated input.

    ``node_ids``: the caller's ids in input order; ``keys``: their canonical keys.
    ``int_src/int_dst/int_w``: internal edges as positions into ``keys`` (``src <= dst``).
    ``cross_own/cross_foreign/cross_w``: cross edges as (own position, foreign key, share).
    """

    node_ids: list
    keys: list
    int_src: np.ndarray
    int_dst: np.ndarray
    int_w: np.ndarray
    cross_own: np.ndarray
    cross_foreign: list
    cross_w: np.ndarray


def _nodes_list(nodes) -> list:
    if isinstance(nodes, (str, bytes)) or nodes is None:
        raise PetTypeError("nodes must be a sequence of node ids (list, array, Series, Index)")
    if isinstance(nodes, pd.DataFrame):
        if nodes.shape[1] != 1:
            raise PetTypeError("nodes as a DataFrame must have exactly one column")
        nodes = nodes.iloc[:, 0]
    try:
        return list(nodes)
    except TypeError:
        raise PetTypeError(f"nodes must be a sequence of node ids, got {type(nodes).__name__}") from None


def prepare_input(nodes, edges) -> LocalInput:
    """Validate one party's ``nodes`` and ``edges`` and split the edges (local, no messages)."""
    node_ids = _nodes_list(nodes)
    keys = [canonical_key(n) for n in node_ids]
    pos = {}
    for i, k in enumerate(keys):
        if k in pos:
            raise GraphError(f"nodes: node {node_ids[i]!r} is listed twice")
        pos[k] = i
    if not isinstance(edges, pd.DataFrame):
        raise PetTypeError("edges must be a pandas DataFrame with columns source, target, weight")
    missing = [c for c in ("source", "target", "weight") if c not in edges.columns]
    if missing:
        raise GraphError(f"edges: missing column(s) {missing}; expected source, target, weight")
    try:
        w = np.asarray(edges["weight"], dtype=np.float64)
    except (TypeError, ValueError):
        raise GraphError("edges: column weight must be numeric") from None
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GraphError(f"edges: weight of data row {i + 1} is not finite ({w[i]!r})")
    src_keys = [canonical_key(x) for x in edges["source"].tolist()]
    dst_keys = [canonical_key(x) for x in edges["target"].tolist()]
    int_s, int_d, int_w = [], [], []
    cr_own, cr_for, cr_w = [], [], []
    seen = set()
    for i, (a, b) in enumerate(zip(src_keys, dst_keys)):
        pa, pb = pos.get(a), pos.get(b)
        pair = (a, b) if a <= b else (b, a)
        if pair in seen:
            raise GraphError(f"edges: edge ({a}, {b}) is listed twice (data row {i + 1}); list each undirected "
                             "edge once")
        seen.add(pair)
        if pa is not None and pb is not None:
            if w[i] < 0:
                raise GraphError(f"edges: internal edge ({a}, {b}) has a negative weight {w[i]!r}")
            int_s.append(min(pa, pb))
            int_d.append(max(pa, pb))
            int_w.append(w[i])
        elif pa is not None or pb is not None:
            own, foreign = (pa, b) if pa is not None else (pb, a)
            cr_own.append(own)
            cr_for.append(foreign)
            cr_w.append(w[i])
        else:
            raise GraphError(f"edges: neither endpoint of edge ({a}, {b}) (data row {i + 1}) is one of this party's "
                             "nodes; an edge must touch at least one own node")
    return LocalInput(
        node_ids=node_ids,
        keys=keys,
        int_src=np.asarray(int_s, dtype=np.int64),
        int_dst=np.asarray(int_d, dtype=np.int64),
        int_w=np.asarray(int_w, dtype=np.float64),
        cross_own=np.asarray(cr_own, dtype=np.int64),
        cross_foreign=cr_for,
        cross_w=np.asarray(cr_w, dtype=np.float64),
    )


def check_resolution(resolution) -> float:
    """``resolution`` must be a finite number > 0."""
    try:
        r = float(resolution)
    except (TypeError, ValueError):
        raise PetTypeError(f"resolution must be a number, got {resolution!r}") from None
    if not math.isfinite(r) or r <= 0:
        raise InputError(f"resolution must be a finite number > 0, got {resolution!r}")
    return r
