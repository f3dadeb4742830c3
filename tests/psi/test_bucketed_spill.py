"""The parallel spill of the bucketed PSI (pet.psi.spill): parts of the input spilled by
separate tasks give exactly the rows of the serial spill, bucket by bucket and in input
order; a CSV with quotes is one part; errors name the right row; the whole run with several
spill parts equals the pandas join."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pet.errors import InputError
from pet.psi.spill import PET_BUCKET, PET_KEY, finish_spill, plan_spill, read_bucket, spill_part

KEY = os.urandom(32)
B = 7


def _spill(path, tmp_path, parts, name, columns=("id",), header=True):
    d = tmp_path / name
    plan = plan_spill(path, header, str(d), parts, min_rows=1, min_bytes=1)
    res = [spill_part(str(path), list(columns), header, KEY, B, str(d), p, i, spill_bytes=20_000, batch_rows=500)
           for i, p in enumerate(plan)]
    rows = finish_spill(str(d), res)
    return plan, rows, [read_bucket(str(d), b).to_pandas() for b in range(B)]


def _frame(n=5000):
    rng = np.random.default_rng(1)
    return pd.DataFrame({"id": [f"k{i:05d}" for i in rng.permutation(n)], "v": np.arange(n),
                         "note": [f"n{i}" if i % 3 else "" for i in range(n)]})


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_parts_spill_the_same_rows_as_one_task(tmp_path, fmt):
    df = _frame()
    path = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False, row_group_size=700)  # parts cut inside row groups too
    plan1, rows1, serial = _spill(path, tmp_path, 1, "serial")
    plan4, rows4, parallel = _spill(path, tmp_path, 4, "parallel")
    assert len(plan1) == 1 and len(plan4) == 4
    assert rows1 == rows4 == len(df)
    for b in range(B):
        pd.testing.assert_frame_equal(serial[b], parallel[b])
    every = pd.concat(parallel, ignore_index=True)
    assert sorted(every["id"]) == sorted(df["id"])  # each row exactly once
    assert every[PET_BUCKET].nunique() == B
    first = parallel[0]  # input order within a bucket
    pos = {k: i for i, k in enumerate(df["id"])}
    assert list(first["id"].map(pos)) == sorted(first["id"].map(pos))
    assert len(list((tmp_path / "parallel").glob("flush-000003-*.parquet"))) >= 1
    assert PET_KEY in first.columns


def test_csv_with_quotes_is_one_part_and_stays_correct(tmp_path):
    df = _frame(2000)
    df.loc[5, "note"] = 'two\nlines, "quoted"'
    path = tmp_path / "q.csv"
    df.to_csv(path, index=False)
    plan, rows, buckets = _spill(path, tmp_path, 4, "q")
    assert len(plan) == 1 and rows == len(df)
    got = pd.concat(buckets, ignore_index=True)
    assert got.loc[got["id"] == df.loc[5, "id"], "note"].item() == 'two\nlines, "quoted"'


def test_csv_part_boundaries_are_line_ends_without_header(tmp_path):
    path = tmp_path / "nh.csv"
    path.write_text("".join(f"key{i},{i}\n" for i in range(3001)))
    plan, rows, buckets = _spill(path, tmp_path, 3, "nh", columns=("0",), header=False)
    assert len(plan) == 3 and rows == 3001
    data = path.read_bytes()
    assert all(data[p["start"] - 1:p["start"]] == b"\n" for p in plan[1:])
    got = pd.concat(buckets, ignore_index=True)
    assert sorted(got["0"]) == sorted(f"key{i}" for i in range(3001))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_missing_key_in_a_later_part_names_its_row(tmp_path, fmt):
    df = _frame(3000)
    df.loc[2500, "id"] = None
    path = tmp_path / f"m.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path, index=False, row_group_size=400)
    d = tmp_path / "m"
    plan = plan_spill(path, True, str(d), 3, min_rows=1, min_bytes=1)
    assert len(plan) == 3
    with pytest.raises(InputError, match="data row 2501 has no value"):
        spill_part(str(path), ["id"], True, KEY, B, str(d), plan[2], 2, batch_rows=256)


def test_default_parts_follow_the_size(tmp_path):
    df = _frame(1000)
    df.to_parquet(tmp_path / "s.parquet", index=False)
    assert len(plan_spill(tmp_path / "s.parquet", True, str(tmp_path / "d"), 8)) == 1  # < 2^15 rows: one part
    assert pq.ParquetFile(tmp_path / "s.parquet").metadata.num_rows == 1000


def test_align_dataset_with_parallel_spill_equals_pandas(tmp_path):
    distributed = pytest.importorskip("distributed")
    import logging

    from tests.psi.test_bucketed import _check_aligned, _run_both, _tables

    a, b, pa_, pb = _tables(tmp_path, 6000, 5000, 3000)
    a.to_parquet(pa_, index=False, row_group_size=1000)
    clusters = [distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=False, dashboard_address=":0",
                                         silence_logs=logging.ERROR) for n in (3, 2)]
    clients = [distributed.Client(c) for c in clusters]
    try:
        r0, r1 = _run_both(dict(path=pa_, on="id", output=tmp_path / "o0.parquet", buckets=5, cluster=clients[0],
                                spill_parts=3),
                           dict(path=pb, on="id", output=tmp_path / "o1.parquet", buckets=5, cluster=clients[1],
                                spill_parts=4))
    finally:
        for c in clients:
            c.close()
        for c in clusters:
            c.close()
    assert not isinstance(r0, Exception), r0
    assert not isinstance(r1, Exception), r1
    assert (r0.rows, r1.rows) == (6000, 5000)
    _check_aligned(a, b, pd.read_parquet(tmp_path / "o0.parquet"), pd.read_parquet(tmp_path / "o1.parquet"))


def test_bucket_of_equals_hashlib_blake2b_salt_person():
    """The numba kernel's buckets equal Python's BLAKE2b-64 with the run key as salt and
    personalisation (lists and sliced Arrow arrays; empty and > 128-byte encodings)."""
    import hashlib

    import pyarrow as pa

    from pet.psi.spill import bucket_of

    enc = [os.urandom(i % 300) for i in range(3000)]
    expected = [int.from_bytes(hashlib.blake2b(e, digest_size=8, salt=KEY[:16], person=KEY[16:]).digest(),
                               "little") % 37 for e in enc]
    assert bucket_of(enc, KEY, 37).tolist() == expected
    assert bucket_of(pa.array(enc, type=pa.binary()).slice(100, 900), KEY, 37).tolist() == expected[100:1000]
    assert bucket_of([], KEY, 37).shape == (0,)
    other = bucket_of(enc, bytes(32), 37)  # a fresh key per run gives other buckets
    assert other.tolist() != expected
