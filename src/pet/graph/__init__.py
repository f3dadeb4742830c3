"""Privacy-preserving graph analytics.

- :func:`leiden` ``(session, nodes, edges, *, resolution=1.0, seed=0, ...) -> pandas.Series``:
  Leiden community detection on a graph whose nodes are split between two parties, with
  every quantity that depends on the other party's private edges computed in MPC
  (:mod:`pet.graph.leiden`; leakage in its docstring and ``docs/graph.md``).
- :func:`read_petml_json`: the reference system's JSON fixtures as ``(nodes, edges)``.
- :func:`leiden_plaintext`: the sequential plaintext Leiden for one party holding the whole
  graph (deterministic; the reference the two-party version distributes).

Module map: ``inputs`` (local validation) -> ``state`` (a party's view of a level,
aggregation) -> ``rounds`` (one batched round of secure moves; the segmented secure argmax
is :func:`pet.mpc.argmax` with ``segments=``) -> ``setup`` (joint checks, level 0) -> ``leiden`` (the algorithm);
``io`` (readers, atomic writer), ``plain`` (plaintext Leiden).
"""

from pet.graph.inputs import GraphError
from pet.graph.io import read_csv_input, read_petml_json, write_communities
from pet.graph.leiden import leiden
from pet.graph.plain import leiden_plaintext

__all__ = ["leiden", "leiden_plaintext", "read_petml_json", "read_csv_input", "write_communities", "GraphError"]
