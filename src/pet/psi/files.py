"""PSI on CSV/Parquet files without holding the table: keys streamed in, rows streamed out.

Two passes over the input, each a batch of rows at a time:

1. :func:`encode_file` reads the key column(s) and encodes them into an
   :class:`~pet.psi.store.EncodedItems` store (the only per-row state: see
   :mod:`pet.psi.store`).
2. After the PSI, :func:`write_rows` reads the input again and writes the rows the PSI
   selected, in the order it gives (the joint order), atomically. Rows come out in a
   different order than they are read, so the selected rows of each input batch are sorted
   by output position and spilled to a temporary Arrow IPC file next to the output; a
   k-way merge of these sorted runs then writes the output a window of rows at a time.
   Memory: about 32 bytes per output row (the row numbers in output order, a sorted copy,
   its argsort, each run's output positions), one input batch, and one window of rows
   (``batch_rows`` each) plus one cached piece per run (about one window in all).

Reading is the same as ``pandas.read_csv(path, dtype=str, keep_default_na=False,
na_values=[""])`` (an empty field is missing) or ``pandas.read_parquet(path)``, a batch at
a time; the output is what ``DataFrame.to_csv(index=False)`` / ``to_parquet(index=False)``
of those rows would write (an integer Parquet column with a missing value anywhere becomes
float, as pandas reads the whole file).

This is local file handling: nothing here is sent to the peer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pet._io import atomic_output, is_parquet
from pet._validate import NOT_GIVEN, check_party
from pet.errors import InputError, PetTypeError
from pet.psi.store import DEFAULT_BATCH, EncodedItems, StoreBuilder

__all__ = ["align_file", "encode_file", "file_columns", "iter_frames", "write_rows"]

CSV_OPTIONS = {"dtype": str, "keep_default_na": False, "na_values": [""]}


def _check_path(path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--input: no such file {str(path)!r}")
    return p


def _check_batch(batch_rows) -> int:
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InputError(f"batch_rows must be a positive int, got {batch_rows!r}")
    return batch_rows


def _csv_reader(path: Path, header: bool, batch_rows: int):
    import pandas as pd

    try:
        return pd.read_csv(path, header=0 if header else None, chunksize=batch_rows, **CSV_OPTIONS)
    except pd.errors.EmptyDataError:
        raise InputError(f"--input: {str(path)!r} is empty (no columns)") from None


def parquet_index_columns(pf) -> list[str]:
    meta = pf.schema_arrow.pandas_metadata or {}
    return [c for c in meta.get("index_columns", []) if isinstance(c, str)]


def file_columns(path, *, header: bool = True) -> list[str]:
    """The column names of a CSV (``"0", "1", ...`` without a header) or Parquet file,
    as :func:`iter_frames` gives them."""
    p = _check_path(path)
    if is_parquet(p):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(p)
        hidden = set(parquet_index_columns(pf))
        return [c for c in pf.schema_arrow.names if c not in hidden]
    with _csv_reader(p, header, 1) as reader:
        for frame in reader:
            return [str(c) for c in frame.columns]
    return []  # pragma: no cover - pandas yields one empty chunk for a header-only file


class _NullRules:
    """Per-column dtype fix-ups so each batch converts as the whole file would: a numpy
    int (bool) column with a missing value anywhere becomes float64 (object)."""

    def __init__(self, pf, columns):
        import pyarrow as pa

        self.to_float, self.to_object = set(), set()
        schema = pf.schema_arrow
        names = [n for n in schema.names if columns is None or n in columns]
        ints = [n for n in names if pa.types.is_integer(schema.field(n).type)]
        bools = [n for n in names if pa.types.is_boolean(schema.field(n).type)]
        for name in _with_nulls(pf, ints + bools):
            (self.to_float if name in ints else self.to_object).add(name)

    def apply(self, df):
        for c in self.to_float:
            if c in df.columns and df[c].dtype.kind in "iu":
                df[c] = df[c].astype("float64")
        for c in self.to_object:
            if c in df.columns and df[c].dtype.kind == "b":
                df[c] = df[c].astype(object)
        return df


def _with_nulls(pf, names: list[str]) -> set[str]:
    """The columns among ``names`` with a missing value (row-group statistics when every
    row group has them, else a scan of those columns)."""
    if not names:
        return set()
    meta = pf.metadata
    leaf = {pf.schema.column(i).path: i for i in range(len(pf.schema))}
    found, unknown = set(), []
    for name in names:
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(leaf[name]).statistics if name in leaf else None
            if stats is None or not stats.has_null_count:
                unknown.append(name)
                break
            if stats.null_count:
                found.add(name)
                break
    if unknown:
        for batch in pf.iter_batches(columns=unknown):
            found.update(n for n in unknown if batch.column(n).null_count)
    return found


def iter_frames(path, *, header: bool = True, columns: list[str] | None = None,
                batch_rows: int = DEFAULT_BATCH) -> Iterator[tuple[int, object]]:
    """``(first_row, DataFrame)`` for each batch of at most ``batch_rows`` rows of a CSV or
    Parquet file (``columns``: only these, Parquet only; CSV batches have all columns)."""
    p, batch_rows = _check_path(path), _check_batch(batch_rows)
    start = 0
    if is_parquet(p):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(p)
        rules = _NullRules(pf, columns)
        metadata = pf.schema_arrow.metadata
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            table = pa.Table.from_batches([batch]).replace_schema_metadata(metadata)
            df = rules.apply(table.to_pandas())
            yield start, df
            start += len(df)
        if start == 0:
            empty = pf.schema_arrow.empty_table()
            yield 0, empty.select(columns).to_pandas() if columns else empty.to_pandas()
        return
    with _csv_reader(p, header, batch_rows) as reader:
        for df in reader:
            if not header:
                df.columns = [str(c) for c in df.columns]
            yield start, df
            start += len(df)


def check_columns(have, columns: list[str]) -> None:
    missing = [c for c in columns if c not in have]
    if missing:
        raise InputError(f"--column: {missing} not in {list(have)}")


def data_row(index: int) -> str:
    """How messages name the row at 0-based ``index`` among the data rows: ``"data row N"``,
    1-based and not counting a header (with a header, it is line N + 1 of a CSV file)."""
    return f"data row {index + 1}"


def text_keys(df, columns: list[str], start: int) -> list[list]:
    """The key columns of one batch as lists of ``str`` (the CLI compares keys as text)."""
    out = []
    for c in columns:
        col = df[c]
        na = col.isna().to_numpy().nonzero()[0]
        if na.size:
            raise InputError(f"--column {c!r}: {data_row(start + int(na[0]))} has no value (keys must not be empty)")
        out.append(col.map(str).tolist())
    return out


def encode_file(path, columns, *, header: bool = True, as_text: bool = True,
                batch_rows: int = DEFAULT_BATCH) -> EncodedItems:
    """The PSI keys of a CSV or Parquet file, read ``batch_rows`` rows at a time, as an
    :class:`~pet.psi.store.EncodedItems` store to pass to :func:`~pet.psi.ecdh_psi` or
    :func:`~pet.psi.psi_cardinality` (``.indices`` are then 0-based data row numbers).

    ``columns``: a column name, or several for a composite key (without a header, CSV
    columns are named ``"0"``, ``"1"``, ...). ``as_text=True`` (as ``pet psi``) compares
    keys as text: ``str()`` of each value, so a CSV ``123`` matches a Parquet int ``123``;
    ``as_text=False`` encodes the values as read (Parquet ints as ints; CSV values are text).
    Missing keys raise :class:`~pet.errors.InputError` with the row number.
    """
    if isinstance(columns, str):
        columns = [columns]
    columns = [str(c) for c in columns]
    if not columns:
        raise InputError("columns: give at least one key column")
    if len(set(columns)) != len(columns):
        raise InputError(f"columns: repeated key column in {columns}")
    p = _check_path(path)
    wanted = None
    if is_parquet(p):
        check_columns(file_columns(p), columns)
        wanted = columns
    builder = StoreBuilder(f"key {columns}")
    names = [f"--column {c!r}" for c in columns]
    for start, df in iter_frames(p, header=header, columns=wanted, batch_rows=batch_rows):
        check_columns(df.columns, columns)
        if as_text:
            builder.add_columns(text_keys(df, columns, start), names)
        else:
            builder.add_columns([_values(df[c]) for c in columns], names)
    return builder.finish()


def _values(series) -> list:
    from pet.psi.encoding import to_list

    return to_list(series, str(series.name))


def align_file(channel, path, on, output, *, party, reveal_to=NOT_GIVEN, reveal=NOT_GIVEN, dedupe: bool = False,
               header: bool = True, as_text: bool = True, batch_rows: int = DEFAULT_BATCH, hash_suite: str = "NU",
               workers=None, chunk_size: int = 1 << 14, progress=None) -> int | None:
    """:func:`~pet.psi.align` for a CSV/Parquet file, streamed: write the rows of ``path``
    whose key is in the intersection to ``output``, in the joint order, with all columns.

    Keys as :func:`encode_file` (``as_text``); ``reveal_to`` (``reveal``: deprecated), ``dedupe``, ``hash_suite``,
    ``workers``, ``chunk_size``, ``progress`` as :func:`~pet.psi.align`. Returns the number
    of rows written, or None (and writes nothing) for a party that does not learn the
    intersection. Leakage: as :func:`~pet.psi.align` (the peer's row count; the
    intersection for a party that learns it).

    Missing keys raise :class:`~pet.errors.InputError` while reading, duplicate keys (unless
    ``dedupe``) after: both before anything is sent to the peer.
    """
    from pet.psi.ecdh import check_channel, check_options, check_reveal

    check_channel(channel)
    party = check_party(party)
    mode = check_reveal(reveal, reveal_to, deprecated_reveal=True)
    check_options(hash_suite, chunk_size, workers, progress)
    columns = [on] if isinstance(on, str) else list(on)
    store = encode_file(path, columns, header=header, as_text=as_text, batch_rows=batch_rows)
    return align_store(channel, store, path, output, party=party, mode=mode, arity=len(columns), dedupe=dedupe,
                       header=header, batch_rows=batch_rows, suite=hash_suite, workers=workers,
                       chunk_size=chunk_size, progress=progress)


def align_store(channel, store: EncodedItems, path, output, *, party: int, mode: str, arity: int, dedupe: bool,
                header: bool, batch_rows: int = DEFAULT_BATCH, **options) -> int | None:
    """The protocol and output steps of :func:`align_file` on the keys of ``path`` already
    encoded in ``store`` (``arity`` key columns; arguments validated by the caller;
    ``options`` go to :func:`~pet.psi.ecdh.run_protocol`)."""
    from pet.psi.ecdh import drop_duplicates, run_protocol

    n_rows = store.n_rows
    store, _ = drop_duplicates(store, dedupe=dedupe, name=store.name)
    out = run_protocol(channel, store, party=party, op="align", mode=mode, arity=arity, **options)
    if "matched" not in out:
        return None
    rows = store.rows_of(out["matched"])
    del store, out
    return write_rows(path, rows, output, header=header, batch_rows=batch_rows, total_rows=n_rows)


# --------------------------------------------------------------------------- output


def write_rows(path, rows, output, *, header: bool = True, batch_rows: int = DEFAULT_BATCH,
               total_rows: int | None = None) -> int:
    """Write the input rows ``rows`` (0-based data row numbers, in output order; each at
    most once) of the CSV/Parquet file ``path`` to ``output`` (CSV or Parquet, by
    extension), atomically, streaming both files (see the module docstring). Returns the
    number of rows written. ``total_rows`` (the input's row count, if known, e.g.
    ``EncodedItems.n_rows``) sizes the merge buffers; without it a CSV input uses
    1,024-row pieces."""
    rows = np.asarray(rows, dtype=np.int64)
    batch_rows = _check_batch(batch_rows)
    if rows.ndim != 1:
        raise PetTypeError(f"rows must be one-dimensional, got shape {rows.shape}")
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        spill_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix=".pet-psi-spill-", suffix=".tmp",
                                                                     dir=target.parent))
        runs = _spill(path, rows, header, batch_rows, os.path.join(spill_dir, "runs.arrow"), total_rows)
        tmp = stack.enter_context(atomic_output(target))
        fh = None if is_parquet(target) else stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
        out = _TableWriter(tmp, fh, header)
        stack.callback(out.close)
        for frame in runs.merge(rows.size, batch_rows):
            out.write(frame)
        if out.empty:
            out.write(runs.empty_frame())
    return int(rows.size)


class _Runs:
    """Sorted runs of selected rows in one Arrow IPC file; ``merge`` yields the rows in
    output order, ``window`` rows at a time, as DataFrames."""

    def __init__(self, file: str, schema, metadata, rules, sizes, ranks, run_rows: int):
        self.file, self.schema, self.metadata, self.rules = file, schema, metadata, rules
        self.ranks = ranks  # per run: output positions of its rows, ascending
        self.run_rows = run_rows  # rows per IPC record batch
        self.first_batch = np.concatenate(([0], np.cumsum([-(-s // run_rows) for s in sizes])))

    def empty_frame(self):
        return self._frame(self.schema.empty_table())

    def _frame(self, table):
        table = table.replace_schema_metadata(self.metadata)
        df = table.to_pandas()
        return self.rules.apply(df) if self.rules is not None else df

    def merge(self, total: int, window: int):
        import pyarrow as pa

        if total == 0:
            return
        with pa.OSFile(self.file, "rb") as source:
            reader = pa.ipc.open_file(source)
            cache: dict[int, tuple[int, object]] = {}
            for lo in range(0, total, window):
                hi = min(total, lo + window)
                parts, positions = [], []
                for r, ranks in enumerate(self.ranks):
                    a, b = np.searchsorted(ranks, [lo, hi])
                    if a < b:
                        parts.append(self._slice(reader, cache, r, int(a), int(b)))
                        positions.append(ranks[a:b])
                table = pa.concat_tables(parts)
                order = np.argsort(np.concatenate(positions), kind="stable")
                yield self._frame(table.take(pa.array(order)))

    def _slice(self, reader, cache, run: int, a: int, b: int):
        import pyarrow as pa

        pieces = []
        size = self.run_rows
        for k in range(a // size, (b - 1) // size + 1):
            if cache.get(run, (None,))[0] != k:
                cache[run] = (k, reader.get_batch(int(self.first_batch[run]) + k))
            batch = cache[run][1]
            s, e = max(a - k * size, 0), min(b - k * size, size)
            pieces.append(batch.slice(s, e - s))
        return pa.Table.from_batches(pieces, schema=self.schema)


def _piece_rows(batch_rows: int, total_rows: int | None) -> int:
    """Rows per IPC record batch of a run: the merge caches one piece per run, so pieces
    of ``batch_rows / runs`` rows keep that cache near one window."""
    if total_rows is None:
        return min(batch_rows, 1024)
    runs = max(1, -(-total_rows // batch_rows))
    return max(min(batch_rows, 256), batch_rows // runs)


def _spill(path, rows: np.ndarray, header: bool, batch_rows: int, file: str, total_rows) -> _Runs:
    """Pass 2: the selected rows of each input batch, sorted by output position, appended
    to ``file`` as one run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    by_row = np.argsort(rows, kind="stable")
    sorted_rows = rows[by_row]
    if sorted_rows.size and sorted_rows[0] < 0:
        raise InputError(f"rows: negative row number {int(sorted_rows[0])}")
    if sorted_rows.size > 1 and (sorted_rows[1:] == sorted_rows[:-1]).any():
        raise InputError("rows: a row is selected twice")
    p = _check_path(path)
    if is_parquet(p):
        pf = pq.ParquetFile(p)
        schema, metadata, rules = pf.schema_arrow.remove_metadata(), pf.schema_arrow.metadata, _NullRules(pf, None)
        total_rows = pf.metadata.num_rows
        batches = ((pa.Table.from_batches([b]).replace_schema_metadata(None), b.num_rows)
                   for b in pf.iter_batches(batch_size=batch_rows))
    else:
        schema, metadata, rules = None, None, None
        batches = csv_tables(p, header, batch_rows)
    sizes, ranks = [], []
    seen = 0
    writer = None
    run_rows = _piece_rows(batch_rows, total_rows)
    try:
        for table, n in batches:
            if schema is None:
                schema = table.schema
            if writer is None:
                writer = pa.ipc.new_file(file, schema)
            a, b = np.searchsorted(sorted_rows, [seen, seen + n])
            local = sorted_rows[a:b] - seen
            rank = by_row[a:b]
            order = np.argsort(rank, kind="stable")
            selected = table.take(pa.array(local[order])).combine_chunks()
            for s in range(0, selected.num_rows, run_rows):
                for rb in selected.slice(s, run_rows).to_batches(max_chunksize=run_rows):
                    writer.write_batch(rb)
            sizes.append(int(b - a))
            ranks.append(rank[order])
            seen += n
        if writer is None:  # no rows at all
            writer = pa.ipc.new_file(file, schema if schema is not None else pa.schema([]))
    finally:
        if writer is not None:
            writer.close()
    if sorted_rows.size and sorted_rows[-1] >= seen:
        raise InputError(f"rows: row {int(sorted_rows[-1])} is past the end of the input ({seen} rows)")
    if schema is None:
        schema = pa.schema([])
    return _Runs(file, schema, metadata, rules, sizes, ranks, run_rows)


def csv_tables(p: Path, header: bool, batch_rows: int):
    """CSV batches as Arrow tables of strings (missing values as nulls)."""
    import pyarrow as pa

    for _, df in iter_frames(p, header=header, batch_rows=batch_rows):
        schema = pa.schema([(str(c), pa.large_string()) for c in df.columns])
        yield pa.Table.from_pandas(df, schema=schema, preserve_index=False).replace_schema_metadata(None), len(df)


class _TableWriter:
    """Appends DataFrames to one open CSV file handle or one Parquet file (as
    ``to_csv(index=False)`` / ``to_parquet(index=False)`` would write their concatenation)."""

    def __init__(self, path: str, fh, header: bool):
        self.path, self.fh, self.header = path, fh, header
        self.empty = True
        self._pq = None
        self._schema = None

    def write(self, df) -> None:
        if self.fh is None:
            self._write_parquet(df)
        else:
            df.to_csv(self.fh, index=False, header=self.header and self.empty)
        self.empty = False

    def _write_parquet(self, df) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._pq is None:
            table = pa.Table.from_pandas(df, preserve_index=False)
            self._schema = table.schema
            self._pq = pq.ParquetWriter(self.path, self._schema)
        else:
            table = pa.Table.from_pandas(df, preserve_index=False, schema=self._schema)
        self._pq.write_table(table)

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
