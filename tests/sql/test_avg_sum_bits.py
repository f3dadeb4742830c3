"""AVG under a count one party owns: its SUM is taken at the bits the division plans for it
(``Num.prep``), not at the average's own fractional bits. Summing products near 1e12 at
the average's 20 bits overflowed the ring (2^20 * 4e13 > 2^63): the average came back
wrapped by 2^44 (or, just under 2^63, wrong in about half of the runs through the
truncation's |x| < 2^62 precondition). Against DuckDB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pet.mpc as mpc
import pet.sql as psql
from tests.sql.helpers import oracle

SQL = ("select b.g, sum(a.x * b.y) sp, avg(a.x * b.y) ap, avg(a.x + b.y) aa, count(*) c "
       "from ta a join tb b on a.id = b.id group by b.g")


def _tables(n: int, groups: int):
    i = np.arange(n)
    a = pd.DataFrame({"id": i, "x": 9.0e5 + (i % 97) * 1031.25})
    b = pd.DataFrame({"id": i, "y": 9.9e5 - (i % 89) * 977.5, "g": i % groups})
    return a, b


@pytest.mark.parametrize("correlations", ["dealer", "ot"])
def test_average_of_large_products_under_an_owned_count(correlations):
    a, b = _tables(80, 2)  # 40 rows per group: each group's sum of products is about 3.6e13

    def prog(session):
        return psql.query(session, SQL, {"ta": a} if session.party == 0 else {"tb": b})

    want = oracle(SQL, {"ta": a}, {"tb": b}).sort_values("g").reset_index(drop=True)
    for got in mpc.run_local(prog, timeout=600, correlations=correlations):
        got = got.sort_values("g").reset_index(drop=True)
        assert list(got["c"]) == list(want["c"])
        np.testing.assert_allclose(got["sp"], want["sp"], rtol=1e-6)
        np.testing.assert_allclose(got["ap"], want["ap"], rtol=1e-6)
        np.testing.assert_allclose(got["aa"], want["aa"], rtol=1e-6)
