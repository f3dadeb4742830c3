"""Differentially private secure SQL (issue 18): API, clamping, noise distribution,
refusals, budgets on both parties' ledgers (also after kills), the CLI over TLS."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pet.dp as pdp
import pet.mpc as mpc
import pet.sql as psql
from pet.errors import BudgetExceeded, InputError
from pet.sql import SqlMismatch, SqlNotSupported
from pet.sql.dp import laplace_std, zcdp_budget
from tests.sql.helpers import oracle, run_both

SALES = pd.DataFrame({"uid": np.arange(60), "amount": np.linspace(0.5, 30.0, 60)})
USERS = pd.DataFrame({"uid": np.arange(20, 80), "w": np.linspace(-2.0, 2.0, 60),
                      "region": ["eu", "us", "asia"] * 20})
T0, T1 = {"sales": SALES}, {"users": USERS}
Q = ("SELECT u.region, COUNT(*) AS n, SUM(s.amount) AS total FROM sales s JOIN users u ON s.uid = u.uid "
     "GROUP BY u.region")
REGIONS = {"region": ["eu", "us", "asia", "mars"]}


def outcomes(sql, t0, t1, kw0, kw1=None):
    """Each party's result or exception."""
    kw1 = kw0 if kw1 is None else kw1

    def prog(session):
        kw = kw0 if session.party == 0 else kw1
        try:
            return psql.query(session, sql, t0 if session.party == 0 else t1, **kw)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return exc
    return mpc.run_local(prog, timeout=300)


# -- 1. API --------------------------------------------------------------------------------------

def test_dp_result_carries_attrs_and_public_groups():
    dp = psql.DP(2.0, bounds={"total": (0, 40)}, public_groups=REGIONS)
    r0, r1 = run_both(Q, T0, T1, dp=dp)
    for r in (r0, r1):
        assert list(r.columns) == ["region", "n", "total"]
        assert sorted(r["region"]) == ["asia", "eu", "mars", "us"]  # exactly the public groups
        a = r.attrs["dp"]
        assert a["epsilon"] == 2.0 and a["delta"] == 0.0 and a["mechanism"] == "discrete_laplace"
        # two measurements (count, sum), eps 1 each; per party discrete Laplace of scale S/eps
        assert a["noise_std"]["n"] == pytest.approx(math.sqrt(2) * laplace_std(1.0))
        f = a["frac_bits"]["total"]
        assert f == 30 - 6
        assert a["noise_std"]["total"] == pytest.approx(math.sqrt(2) * laplace_std(40 * 2 ** f) * 2 ** -f)
        assert a["accounted_epsilon"] == pytest.approx(2.0)
        assert r["n"].dtype.kind == "i"
    # the same noisy values at both receivers
    assert r0.sort_values("region").reset_index(drop=True).equals(r1.sort_values("region").reset_index(drop=True))


def test_noise_std_is_within_1_5x_of_the_central_mechanism():
    dp = psql.DP(1.0, 1e-5, bounds={"total": (0, 40)}, public_groups=REGIONS)
    r = run_both(Q, T0, T1, dp=dp, reveal_to=0)
    assert r[1] is None
    a = r[0].attrs["dp"]
    assert a["mechanism"] == "discrete_gaussian"
    # central: one discrete Gaussian per measurement at rho/2 -> sigma = S / sqrt(rho)
    rho = zcdp_budget(1.0, 1e-5)
    assert a["noise_std"]["n"] / (1 / math.sqrt(rho)) == pytest.approx(math.sqrt(2), rel=1e-3)
    assert a["noise_std"]["total"] / (40 / math.sqrt(rho)) == pytest.approx(math.sqrt(2), rel=1e-3)
    assert a["accounted_epsilon"] <= 1.0


@pytest.mark.parametrize("kw1", [
    {"epsilon": 1.5}, {"delta": 1e-6}, {"bounds": {"total": (0, 41)}},
    {"public_groups": {"region": ["eu", "us"]}},
])
def test_different_dp_parameters_are_a_mismatch_at_both(kw1):
    base = {"epsilon": 1.0, "delta": 0.0, "bounds": {"total": (0, 40)}, "public_groups": REGIONS}
    other = {**base, **kw1}
    r = outcomes(Q, T0, T1, {"dp": psql.DP(**base)}, {"dp": psql.DP(**other)})
    assert all(isinstance(x, SqlMismatch) and "dp" in str(x) for x in r), r
    r = outcomes(Q, T0, T1, {"dp": psql.DP(**base)}, {})
    assert all(isinstance(x, SqlMismatch) for x in r), r


def test_dp_argument_validation():
    with pytest.raises(InputError, match="epsilon"):
        psql.DP(0)
    with pytest.raises(InputError, match="delta"):
        psql.DP(1.0, 1.0)
    with pytest.raises(InputError, match="lo must be < hi"):
        psql.DP(1.0, bounds={"t": (5, 1)})
    with pytest.raises(InputError, match="block"):
        psql.DP(1.0, ledger="x.db")
    with pytest.raises(InputError, match="repeated"):
        psql.DP(1.0, public_groups={"r": ["a", "a"]})
