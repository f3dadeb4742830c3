"""What the parties see: the traffic a party receives depends only on the public sizes
(row counts, intersection, number of groups), not on the peer's values, on which rows
pass a cross-party WHERE, on group sizes or on HAVING outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd

import pet.mpc as mpc
import pet.sql as psql

SQL = ("select a.k, count(*) n, sum(a.u * b.y) s, max(a.u - b.y) m from ta a join tb b on a.id = b.id "
       "where a.u > b.y group by a.k having sum(a.u) > 1")


def _traffic(a, b, reveal_to):
    def prog(session):
        before = session.channel.stats.snapshot()
        res = psql.query(session, SQL, {"ta": a} if session.party == 0 else {"tb": b}, reveal_to=reveal_to)
        st = session.channel.stats.snapshot() - before
        return res, st.bytes_received, st.messages_received
    return mpc.run_local(prog, timeout=120)


def test_traffic_is_independent_of_secret_values():
    ids = np.arange(12)
    b = pd.DataFrame({"id": ids, "y": np.linspace(-1, 1, 12)})
    k = ["p", "q", "r"] * 4
    a_all = pd.DataFrame({"id": ids, "u": np.full(12, 5.0), "k": k})        # every row passes, all groups kept
    a_none = pd.DataFrame({"id": ids, "u": np.full(12, -5.0), "k": k})      # no row passes, no group kept
    a_mixed = pd.DataFrame({"id": ids, "u": np.where(ids % 2 == 0, 3.0, -3.0), "k": k})
    runs = [_traffic(a, b, 0) for a in (a_all, a_none, a_mixed)]
    assert [len(r[0][0]) for r in runs] == [3, 0, 3]      # the results differ ...
    assert all(r[1][0] is None for r in runs)              # ... party 1 gets none of them ...
    party1_view = {(r[1][1], r[1][2]) for r in runs}
    party0_view = {(r[0][1], r[0][2]) for r in runs}
    assert len(party1_view) == 1 and len(party0_view) == 1  # ... and sees the same traffic
