"""Reading graph inputs: the reference system's JSON fixtures and CSV files.

The reference system (PETML federated Leiden) gives each party two JSON files:

* ``local_nodes``: a JSON list of the node ids this party owns;
* ``user_weights``: a JSON adjacency ``{"node": {"neighbor": weight}}`` (string keys),
  symmetric, holding every edge that touches an owned node; a cross-party edge appears in
  both parties' files with that party's additive share of its weight.

:func:`read_petml_json` turns them into the ``(nodes, edges)`` that
:func:`pet.graph.leiden` takes (each undirected edge once). :func:`read_csv_input` reads the
CLI's CSV files.
"""

from __future__ import annotations

import json
import math
import re

import pandas as pd

from pet._io import atomic_output
from pet.graph.inputs import GraphError, canonical_key

__all__ = ["read_petml_json", "read_csv_input", "write_communities"]

_INT_RE = re.compile(r"^-?(0|[1-9][0-9]*)$")


def _load_json(path, what):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise GraphError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise GraphError(f"{what}: {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def read_petml_json(user_weights, local_nodes):
    """Read a PETML fixture pair; returns ``(nodes, edges)``.

    ``user_weights`` and ``local_nodes`` are paths (or already-parsed objects). The adjacency
    must be symmetric (``w[u][v] == w[v][u]``), else :class:`~pet.graph.inputs.GraphError`.
    Keys that are decimal integers become ``int`` node ids when the node list holds ints.
    """
    adj = user_weights if isinstance(user_weights, dict) else _load_json(user_weights, "user_weights")
    nodes = local_nodes if isinstance(local_nodes, list) else _load_json(local_nodes, "local_nodes")
    if not isinstance(adj, dict):
        raise GraphError("user_weights: expected a JSON object {node: {neighbor: weight}}")
    if not isinstance(nodes, list):
        raise GraphError("local_nodes: expected a JSON list of node ids")
    ints = all(isinstance(n, int) and not isinstance(n, bool) for n in nodes)

    def node_id(key):
        k = canonical_key(key)
        return int(k) if ints and _INT_RE.match(k) else k

    own = {canonical_key(n) for n in nodes}
    weights = {}
    for u, row in adj.items():
        if not isinstance(row, dict):
            raise GraphError(f"user_weights: the entry of node {u!r} is not an object")
        for v, w in row.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise GraphError(f"user_weights: weight of ({u}, {v}) is not a finite number: {w!r}")
            ku, kv = canonical_key(u), canonical_key(v)
            pair = (ku, kv) if ku <= kv else (kv, ku)
            if pair in weights and weights[pair][2] != float(w):
                raise GraphError(f"user_weights: asymmetric weights for ({u}, {v}): "
                                 f"{weights[pair][2]!r} and {w!r}")
            weights.setdefault(pair, (ku, kv, float(w)))
    rows = []
    for (a, b), (_, _, w) in sorted(weights.items()):
        if a not in own and b not in own:
            continue  # an edge between two foreign nodes is not this party's business
        rows.append((node_id(a), node_id(b), w))
    edges = pd.DataFrame(rows, columns=["source", "target", "weight"])
    return list(nodes), edges


def read_csv_input(edges_path, nodes_path):
    """Read ``edges.csv`` (columns ``source,target,weight``) and ``nodes.csv`` (one column,
    header optional ``node``/``id``). Ids stay as written: decimal integers become ints."""
    try:
        edges = pd.read_csv(edges_path, dtype={"source": str, "target": str})
    except OSError as exc:
        raise GraphError(f"--edges: cannot read {edges_path}: {exc.strerror or exc}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GraphError(f"--edges: {edges_path} is not a CSV file: {exc}") from None
    try:
        nodes_df = pd.read_csv(nodes_path, dtype=str, header=None)
    except OSError as exc:
        raise GraphError(f"--nodes: cannot read {nodes_path}: {exc.strerror or exc}") from None
    except pd.errors.EmptyDataError:
        nodes_df = pd.DataFrame({0: []})
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise GraphError(f"--nodes: {nodes_path} is not a CSV file: {exc}") from None
    if nodes_df.shape[1] < 1:
        raise GraphError("--nodes: expected one column of node ids")
    col = nodes_df.iloc[:, 0].dropna().astype(str).str.strip().tolist()
    if col and col[0].lower() in ("node", "id", "node_id", "user_id"):
        col = col[1:]

    def conv(x):
        return int(x) if _INT_RE.match(x) else x

    nodes = [conv(x) for x in col]
    for c in ("source", "target"):
        if c in edges.columns:
            edges[c] = [conv(str(x).strip()) for x in edges[c]]
    return nodes, edges


def write_communities(series: pd.Series, path) -> None:
    """Write ``node,community`` rows to ``path`` atomically (temp file + rename)."""
    with atomic_output(path) as tmp:
        series.rename("community").rename_axis("node").reset_index().to_csv(tmp, index=False)
