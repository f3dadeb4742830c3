"""File helpers shared by the command line and job tasks: atomic output, table I/O.

Every output file pet writes goes through :func:`atomic_output`: the data is written to a
temporary file in the target's directory and renamed over the target only when complete,
so a failed run leaves either the old file or nothing, never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from pet.errors import InputError

__all__ = ["atomic_output", "atomic_write_bytes", "read_table", "write_table", "is_parquet"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Context manager yielding a temporary path next to ``path``; on success the temporary
    file replaces ``path`` (``os.replace``), on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)  # the data is on disk before the name points at it
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def is_parquet(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in (".parquet", ".pq")


def read_table(path: str | os.PathLike, *, what: str = "input", dtype=None):
    """Read a CSV or Parquet file (by extension) into a DataFrame, with a clear error if missing."""
    import pandas as pd

    if not Path(path).is_file():
        raise InputError(f"{what}: no such file {str(path)!r}")
    if is_parquet(path):
        return pd.read_parquet(path)
    try:
        return pd.read_csv(path, dtype=dtype)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        # pandas counts lines from 1, the header included ("Expected 2 fields in line 3")
        raise InputError(f"{what} {str(path)!r} is not a valid CSV file: {str(exc).strip()}") from None


def write_table(df, path: str | os.PathLike, *, header: bool = True) -> None:
    """Write a DataFrame as CSV or Parquet (by extension), atomically."""
    with atomic_output(path) as tmp:
        if is_parquet(path):
            if df.attrs:  # pandas stores attrs as JSON in the file; pet's (e.g. pet.sql's sizes) are not all JSON
                df = df.copy(deep=False)
                df.attrs = {}
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False, header=header)
