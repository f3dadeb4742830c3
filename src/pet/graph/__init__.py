"""Privacy-preserving graph analytics.

- :func:`leiden` ``(session, nodes, edges, *, resolution=1.0, seed=0, ...) -> pandas.Series``:
  Leiden community detection on a graph whose nodes are split between two parties, with
  every quantity that depends on the other party's private edges computed in MPC
  (:mod:`pet.graph.leiden`; leakage in its docstring and ``docs/graph.md``).
- :func:`read_petml_json`: the reference system's JSON fixtures as ``(nodes, edges)``.

Module map: ``inputs`` (local validation) -> ``state`` (a party's view of a level,
aggregation) -> ``tournament`` (segmented secure argmax) -> ``rounds`` (one batched round
of secure moves) -> ``setup`` (joint checks, level 0) -> ``leiden`` (the algorithm);
``io`` (readers, atomic writer).
"""

from pet.graph.inputs import GraphError
from pet.graph.io import read_csv_input, read_petml_json, write_communities
from pet.graph.leiden import leiden

__all__ = ["leiden", "read_petml_json", "read_csv_input", "write_communities", "GraphError"]
