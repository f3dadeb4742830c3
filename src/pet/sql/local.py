"""Plaintext work of one party in its embedded DuckDB (the pushed-down parts of a plan,
or a whole query over one party's tables). Nothing here talks to the peer."""

from __future__ import annotations

from pet.errors import PrecisionError
from pet.sql.errors import SqlError

__all__ = ["run_local_query", "frame_to_wire", "frame_from_wire"]


def run_local_query(con, sql: str):
    """``sql`` on this party's tables, as a pandas DataFrame."""
    try:
        return con.execute(sql).df()
    except Exception as exc:  # DuckDB raises its own exception classes
        text = str(exc)
        if _DECIMAL_TOO_WIDE in text:
            raise PrecisionError("a DECIMAL value of this party's tables, held as an exact integer at its "
                                 "scale, exceeds 2^63: no representation holds it (cast the column to DOUBLE "
                                 "for an approximate result; docs/sql.md, 'Precision and ranges'). "
                                 f"DuckDB: {text.splitlines()[0]}") from None
        raise SqlError(f"local query failed: {exc}") from None


# DuckDB's message when a DECIMAL scaled to its integer does not fit the BIGINT pet loads it as
_DECIMAL_TOO_WIDE = "Failed to cast decimal value"


def frame_to_wire(df) -> list:
    """Columns of ``df`` as wire-safe values: numeric/bool numpy arrays, or lists of
    str/None for everything else."""
    import numpy as np

    cols = []
    for i in range(df.shape[1]):
        s = df.iloc[:, i]
        if s.dtype.kind in "biuf":
            cols.append(np.ascontiguousarray(s.to_numpy()))
        else:
            cols.append([None if _isnull(v) else (v if isinstance(v, (int, float, bool)) else str(v))
                         for v in s.tolist()])
    return cols


def _isnull(v) -> bool:
    try:
        import pandas as pd
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def frame_from_wire(cols) -> list:
    import numpy as np

    out = []
    for c in cols:
        out.append(c if isinstance(c, np.ndarray) else np.asarray(c, dtype=object))
    return out
