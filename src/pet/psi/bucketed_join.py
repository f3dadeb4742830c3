"""The bucketed join of ``pet sql`` / ``pet run``: :func:`align_frame` aligns an in-memory
DataFrame with the peer's through :func:`~pet.psi.bucketed.align_dataset`.

:func:`pet.sql.query` (with ``psi_options={"buckets": B, "cluster": ...}``), ``pet sql
--buckets B --cluster SPEC`` and the job tasks ``psi`` / ``sql`` with a ``buckets``
parameter run the PSI step of the join in ``B`` buckets on this party's Dask cluster, one
PSI per bucket pair (:mod:`pet.psi.bucketed` for the steps, the failure handling and what
each party learns beyond :func:`~pet.psi.align`: the peer's row count per bucket). What
comes after the PSI -- the MPC part of a query -- runs on the *union* of the aligned rows in
the joint order (bucket by bucket, each bucket in its PSI's joint order), exactly as after
:func:`~pet.psi.align`: the result is the same.

Steps of :func:`align_frame` (each party):

1. Write the key columns and the row positions (``_pos``) to ``<work>/input.parquet``
   (kept as is if an earlier run wrote the same bytes, so a rerun can resume).
2. :func:`~pet.psi.bucketed.align_dataset` on it, reveal to both, run state in
   ``<work>/state``, output ``<work>/aligned.parquet``.
3. Read the aligned rows back (keys + positions: about ``n x (key + 8)`` bytes).

``<work>`` is ``state_dir`` if given (a directory visible to the party's Dask workers; kept
on failure, so running the same query again resumes the finished buckets), else a fresh
temporary directory (removed at the end; for ``local:N`` clusters). Bytes per item: the
caller holds the DataFrame anyway; the spill and the aligned copy are on disk; the Dask
workers hold one bucket each (:mod:`pet.psi.bucketed`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from pet.errors import InputError, PetTypeError

__all__ = ["BUCKETED_OPTIONS", "align_frame", "port_range", "split_bucketed_options"]

#: Keyword arguments of :func:`align_frame` besides ``buckets``, passed on to
#: :func:`~pet.psi.bucketed.align_dataset`.
BUCKETED_OPTIONS = ("cluster", "state_dir", "max_retries", "listen_ports", "tls", "timeout", "pair_timeout",
                    "hash_suite", "chunk_size", "progress", "protocol", "spill_bytes")


def port_range(value, what: str = "--listen-ports"):
    """``(lo, hi)`` from ``"LO-HI"`` or a pair of ints (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        lo, sep, hi = value.partition("-")
        try:
            lo, hi = (int(lo), int(hi)) if sep else (-1, -1)
        except ValueError:
            lo = hi = -1
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        lo, hi = value
    else:
        lo = hi = -1
    if not (isinstance(lo, int) and 1 <= lo <= hi <= 65535):
        raise InputError(f"{what} {str(value)[:40]!r}: expected LO-HI with 1 <= LO <= HI <= 65535")
    return lo, hi


def split_bucketed_options(psi_options: dict) -> dict | None:
    """``None`` when ``psi_options`` does not ask for the bucketed join (no ``buckets`` or
    ``buckets=None``), else the options of :func:`align_frame`; an option that only the
    other path knows is an InputError naming it (``protocol`` serves both: the join's PSI
    protocol, or the per-bucket protocol)."""
    if psi_options.get("buckets") is None:
        extra = sorted(k for k in ("cluster", "state_dir", "max_retries", "listen_ports", "pair_timeout",
                                    "spill_bytes", "tls") if psi_options.get(k) is not None)
        if extra:
            raise InputError(f"psi_options {extra} need psi_options['buckets'] (the bucketed join)")
        return None
    bad = sorted(set(psi_options) - {"buckets", *BUCKETED_OPTIONS})
    if bad:
        raise InputError(f"psi_options {bad} do not apply to the bucketed join (buckets=...); allowed: "
                         f"{['buckets', *BUCKETED_OPTIONS]}")
    return {k: v for k, v in psi_options.items() if v is not None}


def _write_input(df, path: Path) -> None:
    """Step 1: ``df`` as Parquet at ``path``, leaving an identical earlier file untouched
    (same size and mtime: :func:`~pet.psi.bucketed.align_dataset` can resume its run)."""
    from pet._io import atomic_output

    with atomic_output(path.with_name(path.name + ".new")) as tmp:
        df.to_parquet(tmp, index=False)
    new = path.with_name(path.name + ".new")
    if path.is_file() and path.stat().st_size == new.stat().st_size and path.read_bytes() == new.read_bytes():
        new.unlink()
        return
    os.replace(new, path)


def align_frame(channel, df, on, *, party, buckets: int, state_dir=None, **options):
    """The rows of ``df`` whose key is in the intersection with the peer's, in the joint
    order (as :func:`pet.psi.align` with reveal to both), computed bucketed on Dask.

    Parameters
    ----------
    channel : :class:`pet.transport.Channel` to the peer (the control channel of the run).
    df : pandas.DataFrame with string column names; ``on`` its key column(s). Keys are
        compared as text (``str()`` of each value): equal to typed comparison when both
        parties' keys have the same type (``pet.sql`` casts join keys to BIGINT or VARCHAR
        at both).
    party : 0 or 1. buckets : ``B``, equal at both parties.
    state_dir : see the module docstring. options : :data:`BUCKETED_OPTIONS`, as
        :func:`~pet.psi.bucketed.align_dataset` (``cluster`` default ``"local:2"``).

    Returns
    -------
    pandas.DataFrame with ``df``'s columns (a fresh index). Raises
    :class:`~pet.psi.bucketed.BucketedRunFailed` at both parties when the run cannot finish.
    """
    import pandas as pd

    from pet.psi.bucketed import align_dataset

    if not isinstance(df, pd.DataFrame):
        raise PetTypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    bad = sorted(set(options) - set(BUCKETED_OPTIONS))
    if bad:
        raise InputError(f"align_frame: unknown option(s) {bad}; allowed: {list(BUCKETED_OPTIONS)}")
    if not all(isinstance(c, str) for c in df.columns):
        raise InputError("align_frame: the DataFrame's column names must be strings")
    temporary = state_dir is None
    work = Path(tempfile.mkdtemp(prefix="pet-bucketed-join-")) if temporary else Path(state_dir)
    try:
        work.mkdir(parents=True, exist_ok=True)
        source, output = work / "input.parquet", work / "aligned.parquet"
        _write_input(df, source)
        align_dataset(channel, source, on, output, party=party, buckets=buckets, reveal="both",
                      state_dir=work / "state", **options)
        aligned = pd.read_parquet(output)
        for c in df.columns:  # Parquet keeps the types; an empty result may lose them
            if c in aligned.columns and aligned[c].dtype != df[c].dtype and len(aligned) == 0:
                aligned[c] = aligned[c].astype(df[c].dtype)
        if not temporary:
            for f in (source, output):
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
        return aligned.reset_index(drop=True)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
