"""Step 4 of :mod:`pet.psi.bucketed`: the input spilled into per-bucket row groups, in
parallel across the party's Dask workers.

1. :func:`plan_spill` (one task): cut the input into at most ``parts`` partitions and
   empty the spill directory. Parquet: ranges of rows (a part reads only the row groups it
   overlaps). CSV: byte ranges ending at line ends -- only if the file has no ``"`` at all
   (a quoted field may hold a line break, so a line end is not a row end); a CSV with quotes
   is one part (serial, as before).
2. :func:`spill_part` (one task per part, in parallel): read the part a batch of rows at a
   time; each row's canonical key encoding ``e`` goes to bucket
   ``BLAKE2b-64(e; salt, person = the run key) mod B`` (:func:`bucket_of`); rows are
   buffered up to ``spill_bytes`` and flushed as
   ``flush-PPPPPP-NNNNNN.parquet`` (one row group per non-empty bucket) with
   ``flush-PPPPPP-NNNNNN.npy`` (each bucket's row group, -1 if none). A part first deletes
   its own earlier files, so Dask may re-run it after a lost worker.
3. The driver writes ``done.json`` when every part finished (:func:`finish_spill`).

:func:`read_bucket` reads bucket ``b``'s rows from every flush file in name order (part by
part, i.e. in input order). Memory per task: one batch plus ``spill_bytes`` (up to about 3x
during a flush: concatenate, sort). Nothing here crosses to the peer.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np

from pet._io import atomic_write_bytes, is_parquet
from pet.errors import InputError

__all__ = ["PET_BUCKET", "PET_KEY", "bucket_of", "finish_spill", "plan_spill", "read_bucket", "spill_part"]

PET_KEY, PET_BUCKET = "__pet_key", "__pet_bucket"

#: Smallest part worth a task: rows (Parquet) and bytes (CSV).
MIN_PART_ROWS = 1 << 15
MIN_PART_BYTES = 1 << 20


def bucket_of(encodings, key: bytes, buckets: int) -> np.ndarray:
    """Bucket of each canonical encoding (a list of ``bytes`` or a pyarrow binary array):
    ``BLAKE2b-64(e; salt = key[:16], person = key[16:32]) mod buckets`` (int32), computed by
    the numba BLAKE2b kernel of :mod:`pet.psi.kkrt_kernels` straight from the Arrow buffers
    (about 0.1 µs per key, against ~2 µs for a Python ``hashlib`` call per key). The 32-byte
    run key goes into BLAKE2b's salt and personalisation (not its key block): both parties
    know it, it only makes the function fresh per run, so any keyed/salted instance serves.
    Equal to ``hashlib.blake2b(e, digest_size=8, salt=key[:16], person=key[16:32])``."""
    import pyarrow as pa

    from pet.psi import kkrt_kernels

    if len(key) != 32:
        raise InputError(f"bucket_of: the run key must have 32 bytes, got {len(key)}")
    arr = encodings if isinstance(encodings, pa.Array) else pa.array(encodings, type=pa.binary())
    if arr.type != pa.binary():  # int32 offsets: at most 2 GiB of keys per batch
        arr = arr.cast(pa.binary())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int32)[arr.offset:arr.offset + n + 1]
    base = int(offsets[0])
    offsets = (offsets - base).astype(np.uint32)
    data = np.frombuffer(data_buf, dtype=np.uint8)[base:] if data_buf is not None else np.zeros(0, np.uint8)
    out = np.zeros((n, 8), dtype=np.uint8)
    kkrt_kernels.blake2b_many(data, offsets, 0, np.arange(n, dtype=np.int64),
                              kkrt_kernels.blake2b_init(8, salt=key[:16], person=key[16:32]), out)
    return (out.view("<u8").reshape(n) % np.uint64(buckets)).astype(np.int32)


# --------------------------------------------------------------------------- 1. the plan


def plan_spill(path, header: bool, spill_dir: str, parts: int, *, min_rows: int = MIN_PART_ROWS,
               min_bytes: int = MIN_PART_BYTES) -> list[dict]:
    """Partitions of the input (see the module docstring); empties ``spill_dir``."""
    d = Path(spill_dir)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    parts = max(1, int(parts))
    p = Path(path)
    if is_parquet(p):
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(p).metadata.num_rows
        n = max(1, min(parts, rows // max(1, min_rows)))
        cuts = [rows * i // n for i in range(n + 1)]
        return [{"kind": "parquet", "lo": cuts[i], "hi": cuts[i + 1]} for i in range(n)]
    from pet.psi.files import file_columns

    names = file_columns(p, header=header)
    size = p.stat().st_size
    n = max(1, min(parts, size // max(1, min_bytes)))
    if n == 1 or _has_quote(p):
        return [{"kind": "csv", "start": 0, "end": size, "names": names, "first": True}]
    bounds = [0]
    with open(p, "rb") as f:
        for i in range(1, n):
            at = max(size * i // n, bounds[-1])
            f.seek(at)
            f.readline()  # to the end of the line holding byte `at`
            bounds.append(min(f.tell(), size))
    bounds.append(size)
    bounds = sorted(set(bounds))
    return [{"kind": "csv", "start": a, "end": b, "names": names, "first": a == 0}
            for a, b in zip(bounds, bounds[1:])]


def _has_quote(p: Path) -> bool:
    with open(p, "rb") as f:
        while chunk := f.read(8 << 20):
            if b'"' in chunk:
                return True
    return False


# --------------------------------------------------------------------------- 2. a part


class _ByteRange(io.RawIOBase):
    """The bytes ``[start, end)`` of a file, as a readable stream."""

    def __init__(self, path, start: int, end: int):
        self._f = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._f.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self._left <= 0:
            return 0
        n = self._f.readinto(memoryview(buf)[:min(len(buf), self._left)])
        self._left -= n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def _csv_rows_before(path, start: int, header: bool) -> int:
    """Data rows before byte ``start`` (line ends counted; only on the error path)."""
    count, left = 0, start
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(left, 8 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            left -= len(chunk)
    return count - (1 if header else 0)


def _part_batches(path, columns: list[str], header: bool, part: dict, batch_rows: int):
    """``(arrow table without metadata, key columns as text lists)`` per batch of the part."""
    import pyarrow as pa

    from pet.psi.files import text_keys

    if part["kind"] == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        visible = visible_columns(pf)
        lo, hi, row = part["lo"], part["hi"], 0
        for g in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            if row >= hi:
                break
            if row + n <= lo:
                row += n
                continue
            for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[g], columns=visible):
                b0 = row
                row += batch.num_rows
                if row <= lo:
                    continue
                if b0 >= hi:
                    break
                first = max(lo, b0)
                table = pa.Table.from_batches([batch]).replace_schema_metadata(None)
                table = table.slice(first - b0, min(hi, row) - first)
                yield table, text_keys(table.select(columns).to_pandas(), columns, first)
        return
    yield from _csv_part_batches(path, columns, header, part, batch_rows)


def _csv_part_batches(path, columns, header, part, batch_rows):
    import pandas as pd
    import pyarrow as pa

    from pet.psi.files import CSV_OPTIONS, data_row

    names = part["names"]
    schema = pa.schema([(str(c), pa.large_string()) for c in names])
    stream = io.BufferedReader(_ByteRange(path, part["start"], part["end"]), 1 << 20)
    start = 0 if part["first"] else None  # rows before this part: counted only if an error needs it
    done = 0
    try:
        reader = pd.read_csv(stream, header=0 if (header and part["first"]) else None, names=names,
                             chunksize=batch_rows, **CSV_OPTIONS)
        with reader:
            for df in reader:
                table = pa.Table.from_pandas(df, schema=schema, preserve_index=False).replace_schema_metadata(None)
                keys = [table.column(c).to_pylist() for c in columns]
                for c, col in zip(columns, keys):
                    if any(v is None for v in col):
                        row = next(i for i, v in enumerate(col) if v is None)
                        if start is None:
                            start = _csv_rows_before(path, part["start"], header)
                        raise InputError(f"--column {c!r}: {data_row(start + done + row)} has no value "
                                         "(keys must not be empty)")
                yield table, keys  # CSV keys are text already (read as dtype=str)
                done += table.num_rows
    except pd.errors.EmptyDataError:
        return
    finally:
        stream.close()


def visible_columns(pf) -> list[str]:
    from pet.psi.files import parquet_index_columns

    hidden = set(parquet_index_columns(pf))
    return [c for c in pf.schema_arrow.names if c not in hidden]


def spill_part(path, columns: list[str], header: bool, key: bytes, buckets: int, spill_dir: str, part: dict,
               index: int, spill_bytes: int = 64 << 20, batch_rows: int = 1 << 16) -> dict:
    """Step 2 for part ``index`` (a Dask task); returns ``{"rows", "flushes"}``."""
    import pyarrow as pa

    from pet.psi.encoding import encode_columns

    d = Path(spill_dir)
    for f in d.glob(f"flush-{index:06d}-*"):
        f.unlink()
    names = [f"--column {c!r}" for c in columns]
    buf, buf_bytes, flushes, rows = [], 0, 0, 0
    for table, keys in _part_batches(path, columns, header, part, batch_rows):
        enc = encode_columns(keys, names, part.get("lo", 0) + rows)  # row numbers for errors (Parquet: global)
        del keys
        enc = pa.array(enc, type=pa.binary())
        table = table.append_column(PET_KEY, enc)
        table = table.append_column(PET_BUCKET, pa.array(bucket_of(enc, key, buckets), type=pa.int32()))
        del enc
        rows += table.num_rows
        buf.append(table)
        buf_bytes += table.nbytes
        if buf_bytes >= spill_bytes:
            _flush(buf, d, index, flushes, buckets)
            flushes += 1
            buf, buf_bytes = [], 0
    if buf or flushes == 0:
        _flush(buf, d, index, flushes, buckets, schema=None if buf else spill_schema(path, header))
        flushes += 1
    return {"rows": rows, "flushes": flushes}


def spill_schema(path, header: bool):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pet.psi.files import file_columns

    if is_parquet(path):
        pf = pq.ParquetFile(path)
        arrow = pf.schema_arrow.remove_metadata()
        schema = pa.schema([arrow.field(c) for c in visible_columns(pf)])
    else:
        schema = pa.schema([(c, pa.large_string()) for c in file_columns(path, header=header)])
    return schema.append(pa.field(PET_KEY, pa.binary())).append(pa.field(PET_BUCKET, pa.int32()))


def _flush(tables: list, d: Path, part: int, i: int, buckets: int, schema=None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables(tables) if tables else schema.empty_table()
    tables.clear()
    bucket = table.column(PET_BUCKET).to_numpy()
    order = np.argsort(bucket, kind="stable")
    table = table.take(pa.array(order))
    counts = np.bincount(bucket, minlength=buckets)
    index = np.full(buckets, -1, dtype=np.int64)
    stem = f"flush-{part:06d}-{i:06d}"
    with pq.ParquetWriter(d / f"{stem}.tmp", table.schema) as writer:
        group, offset = 0, 0
        for b in np.flatnonzero(counts).tolist():
            n = int(counts[b])
            writer.write_table(table.slice(offset, n), row_group_size=n)
            index[b] = group
            group += 1
            offset += n
        if group == 0:
            writer.write_table(table)
    np.save(d / f"{stem}.npy", index)
    (d / f"{stem}.tmp").replace(d / f"{stem}.parquet")  # the index exists before the data file


# --------------------------------------------------------------------------- 3. done, and reading


def finish_spill(spill_dir: str, results: list[dict]) -> int:
    """Step 3 (the driver): ``done.json`` with the total rows; returns them."""
    rows = sum(r["rows"] for r in results)
    atomic_write_bytes(Path(spill_dir) / "done.json",
                       json.dumps({"rows": rows, "parts": len(results),
                                   "flushes": sum(r["flushes"] for r in results)}).encode())
    return rows


def read_bucket(spill_dir: str, b: int):
    """All spilled rows of bucket ``b``, in input order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = Path(spill_dir)
    parts, schema = [], None
    for f in sorted(d.glob("flush-*.parquet")):
        index = np.load(f.with_suffix(".npy"))
        pf = pq.ParquetFile(f)
        schema = pf.schema_arrow
        if index[b] >= 0:
            parts.append(pf.read_row_group(int(index[b])))
    if schema is None:
        raise InputError(f"state: the spill in {spill_dir!r} is missing (delete the state directory and rerun)")
    return pa.concat_tables(parts) if parts else schema.empty_table()
