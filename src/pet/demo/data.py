"""The demo's data: public data sets split between two fictional organisations.

Everything here is derived deterministically from data that ships with pet or scikit-learn
(no download), so every run and every machine sees the same tables:

- **customers** -- scikit-learn's breast-cancer data (569 rows, 30 features) as two
  organisations' customer tables: party 0 (a clinic) holds 480 of the patients with the
  first 15 features and the diagnosis label; party 1 (a lab) holds 470 patients, with an
  overlap of about 400, the other 15 features and a ``region`` code. Customer ids are strings
  like ``"c00042"``; each table is in its own shuffled order.
- **karate** -- Zachary's karate club, split as in the reference system's fixtures.

The random choices below only shape public demo data: ``# not-secret``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pet.data import reference_path

__all__ = ["customer_tables", "karate_split"]

_SEED = 20261122


def customer_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(party 0's table, party 1's table), each with an ``id`` column."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x, y = data.data, data.target
    n = len(y)
    rng = np.random.default_rng(_SEED)  # not-secret: public demo data
    ids = np.array([f"c{i:05d}" for i in range(n)])
    rows0 = rng.permutation(n)[:480]
    rows1 = np.concatenate([rng.permutation(rows0)[:400],
                            rng.permutation(np.setdiff1d(np.arange(n), rows0))[:70]])
    rng.shuffle(rows1)
    names = [f"f{j:02d}" for j in range(30)]
    t0 = pd.DataFrame(x[rows0, :15], columns=names[:15])
    t0.insert(0, "id", ids[rows0])
    t0["label"] = y[rows0]
    t1 = pd.DataFrame(x[rows1, 15:], columns=names[15:])
    t1.insert(0, "id", ids[rows1])
    t1.insert(1, "region", rng.integers(0, 4, size=len(rows1)))
    t1["spend"] = np.round(rng.gamma(2.0, 50.0, size=len(rows1)), 2)
    return t0, t1


def karate_split(party: int) -> tuple[list, pd.DataFrame]:
    """(this party's node ids, its edges ``source, target, weight``) from the reference
    fixture: own edges with weight 1, cross-party edges with this party's 0.5 share."""
    from pet.graph.io import read_petml_json

    return read_petml_json(reference_path("PETML", f"karate_club_user_weight{party + 1}.json"),
                           reference_path("PETML", f"karate_club_local_nodes{party + 1}.json"))
