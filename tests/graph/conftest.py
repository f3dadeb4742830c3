"""Shared helpers for the pet.graph tests."""

from __future__ import annotations

import igraph as ig
import numpy as np
import pandas as pd
import pytest

from pet.data import reference_path
from pet.graph import read_petml_json
from pet.mpc import Session
from pet.mpc import dealer as _dealer
from pet.transport import run_parties

DATA = reference_path("PETML")  # shipped copy of the reference fixtures


@pytest.fixture(scope="session")
def karate():
    """The PETML karate split: [(nodes, edges) of party 0, of party 1]."""
    return [read_petml_json(DATA / f"karate_club_user_weight{i}.json", DATA / f"karate_club_local_nodes{i}.json")
            for i in (1, 2)]


def run_both(fn0, fn1, timeout=600):
    """Run ``fn0(session)`` and ``fn1(session)`` with a dealer; return both outcomes, each
    either the result or the exception that party raised (so errors are checked on both
    sides)."""

    def party(p, fn):
        def body(chans):
            try:
                with Session(p, chans[1 - p], dealer=chans[2]) as s:
                    return fn(s)
            except Exception as exc:  # noqa: BLE001 - returned to the test
                return exc
        return body

    def dealer(chans):
        try:
            return _dealer.serve(chans[0], chans[1])
        except Exception as exc:  # noqa: BLE001 - the parties' errors are what we check
            return exc

    return run_parties(party(0, fn0), party(1, fn1), dealer, timeout=timeout,
                       names=["party0", "party1", "dealer"])[:2]


def union_membership(r0: pd.Series, r1: pd.Series, order) -> np.ndarray:
    both = pd.concat([r0, r1])
    assert not both.index.duplicated().any()
    return both.loc[list(order)].to_numpy()


def graph_of(n, edges, weights=None) -> ig.Graph:
    g = ig.Graph(n=n, edges=[tuple(map(int, e)) for e in edges])
    g.es["weight"] = list(np.ones(len(edges)) if weights is None else weights)
    return g


def communities_connected(g: ig.Graph, membership) -> bool:
    membership = np.asarray(membership)
    for c in np.unique(membership):
        sub = g.induced_subgraph(np.flatnonzero(membership == c).tolist())
        if not sub.is_connected():
            return False
    return True
