"""Shared helpers of the pet.sql tests: run both parties in one process, and the oracle
(DuckDB on the plaintext union of both parties' tables)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

import pet.mpc as mpc
import pet.sql as psql


def run_both(sql, t0, t1, **kw):
    """``[result_party0, result_party1]`` of pet.sql.query run by both parties."""
    def prog(session):
        return psql.query(session, sql, t0 if session.party == 0 else t1, **kw)
    return mpc.run_local(prog, timeout=300)


def oracle(sql, t0, t1):
    con = duckdb.connect(":memory:")
    for name, df in {**t0, **t1}.items():
        con.register(name, df)
    return con.execute(sql).df()


def _norm(df):
    out = df.copy()
    for c in range(out.shape[1]):
        col = out.iloc[:, c]
        if col.dtype.kind in "biuf" or str(col.dtype) in ("Int64", "boolean"):
            out.iloc[:, c] = col  # keep
    return out


def _sorted(df):
    if df.shape[0] == 0:
        return df.reset_index(drop=True)
    key = df.astype(object).where(df.notna(), None)
    tmp = df.copy()
    tmp.columns = [f"c{i}" for i in range(df.shape[1])]
    order = tmp.assign(**{f"c{i}": pd.Series([(_num(v) if v is not None else float("inf"))
                                               for v in key.iloc[:, i]], index=tmp.index, dtype=object)
                          for i in range(df.shape[1])})
    idx = sorted(range(len(df)), key=lambda r: tuple(_sortkey(order.iloc[r, i]) for i in range(df.shape[1])))
    return df.iloc[idx].reset_index(drop=True)


def _num(v):
    return v


def _sortkey(v):
    if isinstance(v, (int, float, np.integer, np.floating, bool, np.bool_)):
        return (0, round(float(v), 2), "")
    return (1, 0.0, str(v))


def assert_same(got, want, *, ordered=False, rtol=1e-3, atol=2e-3):
    """``got`` equals ``want`` (column names, row count, values within tolerance; strings
    and NULLs exactly). Row order matters only if ``ordered``."""
    assert got is not None
    assert list(got.columns) == list(want.columns), (list(got.columns), list(want.columns))
    assert len(got) == len(want), f"{len(got)} rows, expected {len(want)}\n{got}\n{want}"
    if not ordered:
        got, want = _sorted(got), _sorted(want)
    for i in range(want.shape[1]):
        g = got.iloc[:, i].tolist()
        w = want.iloc[:, i].tolist()
        for a, b in zip(g, w):
            a_null = a is None or a is pd.NA or (isinstance(a, float) and np.isnan(a))
            b_null = b is None or b is pd.NA or (isinstance(b, float) and np.isnan(b))
            assert a_null == b_null, f"column {want.columns[i]}: {a!r} vs {b!r}\n{got}\n{want}"
            if a_null:
                continue
            if isinstance(b, (str, bytes)):
                assert a == b, f"column {want.columns[i]}: {a!r} vs {b!r}"
            else:
                assert abs(float(a) - float(b)) <= atol + rtol * abs(float(b)), \
                    f"column {want.columns[i]}: {a!r} vs {b!r}\n{got}\n{want}"
