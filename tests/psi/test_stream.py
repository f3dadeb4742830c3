"""Streaming PSI inputs: the compact encoded-items store, file keys read in batches, and
rows written back in the joint order -- against plaintext oracles (Python sets, pandas)."""

import itertools
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pet.errors import InputError
from pet.psi import (
    EncodedItems,
    align_file,
    ecdh_psi,
    encode_chunks,
    encode_file,
    psi_cardinality,
    write_rows,
)
from pet.psi.ecdh import drop_duplicates
from pet.psi.encoding import encode_items, find_duplicates
from pet.psi.store import _first_occurrences, _Layout, store_from_values
from pet.transport import run_parties

scalars = st.one_of(st.text(max_size=6), st.binary(max_size=6), st.integers(-(2**70), 2**70))
values = st.lists(st.one_of(scalars, st.tuples(scalars, scalars)), max_size=40)


def split(seq, cuts):
    bounds = sorted({0, len(seq), *[c % (len(seq) + 1) for c in cuts]})
    return [seq[a:b] for a, b in itertools.pairwise(bounds)]


# --------------------------------------------------------------------------- the store


@settings(max_examples=60, deadline=None)
@given(values, st.lists(st.integers(0, 100), max_size=5))
def test_store_equals_list_of_encodings(vals, cuts):
    store = encode_chunks(split(vals, cuts))
    _, enc = encode_items(vals)
    assert len(store) == store.n_rows == len(vals)
    assert store.take(np.arange(len(vals))) == enc
    perm = np.random.default_rng(len(vals)).permutation(len(vals))
    assert store.take(perm) == [enc[i] for i in perm]
    first, dups = find_duplicates(enc)
    assert store.duplicates == dups == len(vals) - len(set(enc))
    kept = store.deduplicated()
    assert kept.positions.tolist() == first
    assert kept.items(np.arange(len(kept))) == [vals[i] for i in first]


def test_duplicates_found_exactly_when_hashes_collide():
    encs = [b"\x01a", b"\x01bb", b"\x01a", b"\x01c", b"\x01bb", b"\x01a"]
    buf = bytearray(b"".join(encs))
    offsets = np.concatenate(([0], np.cumsum([len(e) for e in encs])))
    same_hash = np.zeros(len(encs), dtype=np.int64)  # every pair collides: bytes decide
    assert _first_occurrences(buf, _Layout(6, 0, offsets), same_hash).tolist() == [0, 1, 3]
    distinct = bytearray(b"\x01x\x01y\x01z")
    assert _first_occurrences(distinct, _Layout(3, 2, None), np.zeros(3, np.int64)) is None


def test_fixed_width_needs_no_offsets():
    fixed = store_from_values([f"user-{i:09d}" for i in range(1000)], batch=97)
    assert fixed._offsets is None and fixed.nbytes == 1000 * 15
    varied = store_from_values([f"u{i}" for i in range(1000)], batch=97)
    assert varied._offsets is not None and varied._offsets.dtype == np.uint32
    assert varied.take(np.array([999, 0, 10])) == encode_items(["u999", "u0", "u10"])[1]


def test_store_error_rows_count_across_chunks():
    with pytest.raises(InputError, match="row 5 is missing"):
        encode_chunks([["a", "b"], ["c", "d", "e"], [None]])
    with pytest.raises(InputError, match="single str"):
        encode_chunks(["abc"])


def test_memory_per_item_store_vs_list():
    """Traced bytes per item, held after encoding and at the peak while encoding, as the
    difference between n and 2n items (so fixed costs such as one batch in flight cancel)."""

    def traced(fn, n):
        vals = [f"user-{i:09d}" for i in range(n)]
        tracemalloc.start()
        try:
            kept = fn(vals)
            return np.array(tracemalloc.get_traced_memory()), kept
        finally:
            tracemalloc.stop()

    n = 100_000
    (s1, store), (s2, _) = traced(store_from_values, n), traced(store_from_values, 2 * n)
    (l1, _), (l2, _) = traced(lambda v: encode_items(v)[1], n), traced(lambda v: encode_items(v)[1], 2 * n)
    (store_held, store_peak), (list_held, _) = (s2 - s1) / n, (l2 - l1) / n
    assert store.nbytes / n == 15  # 1-byte tag + 14 bytes of UTF-8, no offsets
    assert store_held < 20, store_held  # the buffer (bytearray growth slack included)
    # while finishing: plus 8-byte hashes and their sorted copy, 4-byte lengths
    assert store_peak < 40, store_peak
    # the list: a bytes object per item (48 B here) + a list pointer, + the values list
    assert list_held > 2.5 * store_held, (list_held, store_held)


# --------------------------------------------------------------------------- PSI on a store


def test_ecdh_psi_on_streamed_chunks_matches_sets():
    a = [f"k{i}" for i in range(300)] + list(range(100)) + [b"\x00\xff"]
    b = [f"k{i}" for i in range(150, 450)] + list(range(50, 60)) + [b"\x00\xff"]
    chunks = (a[i:i + 37] for i in range(0, len(a), 37))
    store = encode_chunks(chunks)
    r0, r1 = run_parties(lambda ch: ecdh_psi(ch, store, party=0), lambda ch: ecdh_psi(ch, b, party=1), timeout=120)
    oracle = set(a) & set(b)
    assert r0.size == r1.size == len(oracle)
    assert r0.items == [x for x in a if x in oracle]  # decoded from the store, own order
    assert [a[i] for i in r0.indices] == [b[j] for j in r1.indices]
    c0, c1 = run_parties(lambda ch: psi_cardinality(ch, encode_chunks([a]), party=0),
                         lambda ch: psi_cardinality(ch, b, party=1), timeout=120)
    assert c0 == c1 == len(oracle)


def test_duplicates_across_chunk_boundary():
    store = encode_chunks([["a", "b", "c"], ["c", "d", "a"], ["a"]])
    with pytest.raises(InputError, match="3 duplicate"):
        drop_duplicates(store, dedupe=False, name="items")
    kept, positions = drop_duplicates(store, dedupe=True, name="items")
    assert positions.tolist() == [0, 1, 2, 4]
    assert kept.items(np.arange(4)) == ["a", "b", "c", "d"]


# --------------------------------------------------------------------------- files


def write(df: pd.DataFrame, path, header=True):
    if str(path).endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False, header=header)
    return path


def read(path):
    if str(path).endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def tables(seed=0, n0=120, n1=90, common=40):
    rng = np.random.default_rng(seed)
    ids0 = rng.permutation(np.arange(1000))[:n0]
    ids1 = np.concatenate([ids0[rng.permutation(n0)[:common]], np.arange(2000, 2000 + n1 - common)])
    ids1 = ids1[rng.permutation(n1)]
    df0 = pd.DataFrame({"id": ids0, "zip": ids0 % 7, "x": rng.normal(size=n0).round(3),
                        "note": [f"a,\"{i}\"" if i % 5 else None for i in range(n0)]})
    df1 = pd.DataFrame({"key": ids1, "zip": ids1 % 7, "y": rng.integers(0, 9, n1)})
    return df0, df1


def run_align_file(p0, p1, on0, on1, o0, o1, **kw):
    return run_parties(lambda ch: align_file(ch, p0, on0, o0, party=0, **kw),
                       lambda ch: align_file(ch, p1, on1, o1, party=1, **kw), timeout=120)


def check_aligned(src0, src1, on0, on1, o0, o1):
    """Oracle: pandas merge of the inputs on the keys compared as text."""
    in0, in1 = read(src0), read(src1)
    out0, out1 = read(o0), read(o1)
    k = [f"k{i}" for i in range(len(on0))]
    key0 = in0[on0].astype(str).set_axis(k, axis=1)
    key1 = in1[on1].astype(str).set_axis(k, axis=1)
    expected = key0.merge(key1, on=k)
    assert len(out0) == len(out1) == len(expected)
    # joint order: row i of both outputs has the same key
    got0 = out0[on0].astype(str).set_axis(k, axis=1).reset_index(drop=True)
    got1 = out1[on1].astype(str).set_axis(k, axis=1).reset_index(drop=True)
    pd.testing.assert_frame_equal(got0, got1)
    assert set(map(tuple, got0.to_numpy())) == set(map(tuple, expected.to_numpy()))
    # the rows are the input rows, unchanged, with all columns
    for src, out, on in ((in0, out0, on0), (in1, out1, on1)):
        assert list(out.columns) == list(src.columns)
        by_key = src.set_index(src[on].astype(str).apply(tuple, axis=1))
        picked = by_key.loc[out[on].astype(str).apply(tuple, axis=1)].reset_index(drop=True)
        pd.testing.assert_frame_equal(picked, out.reset_index(drop=True))


@pytest.mark.parametrize("fmt0,fmt1", [("csv", "csv"), ("parquet", "csv"), ("parquet", "parquet")])
@pytest.mark.parametrize("batch", [1, 7, 64, 10_000])
def test_align_file_matches_pandas_merge(tmp_path, fmt0, fmt1, batch):
    df0, df1 = tables(seed=batch)
    p0 = write(df0, tmp_path / f"a.{fmt0}")
    p1 = write(df1, tmp_path / f"b.{fmt1}")
    o0, o1 = tmp_path / f"o0.{fmt0}", tmp_path / f"o1.{fmt1}"
    n0, n1 = run_align_file(p0, p1, "id", "key", o0, o1, batch_rows=batch)
    assert n0 == n1 == 40
    check_aligned(p0, p1, ["id"], ["key"], o0, o1)


@pytest.mark.parametrize("batch", [3, 1000])
def test_composite_keys(tmp_path, batch):
    df0, df1 = tables(seed=3)
    df1.loc[df1.index[:5], "zip"] = 99  # these rows no longer match on (id, zip)
    p0, p1 = write(df0, tmp_path / "a.csv"), write(df1, tmp_path / "b.parquet")
    o0, o1 = tmp_path / "o0.csv", tmp_path / "o1.parquet"
    n0, n1 = run_align_file(p0, p1, ["id", "zip"], ["key", "zip"], o0, o1, batch_rows=batch)
    check_aligned(p0, p1, ["id", "zip"], ["key", "zip"], o0, o1)
    assert n0 == n1 == len(df0.merge(df1, left_on=["id", "zip"], right_on=["key", "zip"]))


def test_reveal_one_side_and_no_header(tmp_path):
    p0, p1 = tmp_path / "a.csv", tmp_path / "b.csv"
    p0.write_text("x,1\ny,2\nz,3\n")
    p1.write_text("q,9\nz,8\nx,7\n")
    o0, o1 = tmp_path / "o0.csv", tmp_path / "o1.csv"
    n0, n1 = run_align_file(p0, p1, "0", "0", o0, o1, reveal_to=1, header=False, batch_rows=2)
    assert n0 is None and not o0.exists()
    assert sorted(o1.read_text().split()) == ["x,7", "z,8"] and n1 == 2


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_empty_input(tmp_path, fmt):
    df0, df1 = tables()
    p0 = write(df0.iloc[:0], tmp_path / f"a.{fmt}")
    p1 = write(df1, tmp_path / "b.csv")
    o0, o1 = tmp_path / f"o0.{fmt}", tmp_path / "o1.csv"
    assert run_align_file(p0, p1, "id", "key", o0, o1, batch_rows=5) == [0, 0]
    assert read(o0).shape == (0, 4) and list(read(o0).columns) == list(df0.columns)
    assert o1.read_text() == "key,zip,y\n"


def test_empty_csv_file_is_a_clear_error(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        encode_file(tmp_path / "e.csv", "id")


@pytest.mark.parametrize("batch", [1, 2, 3, 4, 100])
def test_duplicates_and_missing_rows_across_batches(tmp_path, batch):
    p = tmp_path / "d.csv"
    p.write_text("id,v\na,1\nb,2\nc,3\nc,4\nd,5\na,6\n")
    store = encode_file(p, "id", batch_rows=batch)
    assert store.n_rows == 6 and store.duplicates == 2
    with pytest.raises(InputError, match="2 duplicate"):
        drop_duplicates(store, dedupe=False, name=store.name)
    assert store.deduplicated().positions.tolist() == [0, 1, 2, 4]
    p.write_text("id,v\na,1\nb,2\nc,3\n,4\nd,5\n")
    with pytest.raises(InputError, match="'id': data row 4 has no value"):
        encode_file(p, "id", batch_rows=batch)
    pq_path = tmp_path / "m.parquet"
    pd.DataFrame({"id": ["a", "b", "c", "d", None, "e"]}).to_parquet(pq_path, index=False)
    with pytest.raises(InputError, match="data row 5 has no value"):
        encode_file(pq_path, "id", batch_rows=batch)


def test_missing_column_named(tmp_path):
    df0, _ = tables()
    for p in (write(df0, tmp_path / "a.csv"), write(df0, tmp_path / "a.parquet")):
        with pytest.raises(InputError, match="nope"):
            encode_file(p, ["id", "nope"])


def test_text_and_typed_keys(tmp_path):
    p = write(pd.DataFrame({"id": [1, 2, 3]}), tmp_path / "i.parquet")
    assert encode_file(p, "id").items(np.arange(3)) == ["1", "2", "3"]
    assert encode_file(p, "id", as_text=False).items(np.arange(3)) == [1, 2, 3]


# --------------------------------------------------------------------------- write_rows


def awkward_frame(n=50):
    rng = np.random.default_rng(1)
    ints = pd.array(rng.integers(0, 100, n), dtype="float64")
    ints[3] = np.nan
    return pd.DataFrame({"s": [f"v{i}, \"q\"\n" if i % 4 else (None if i % 8 else "") for i in range(n)],
                         "i": rng.integers(-5, 5, n), "f": rng.normal(size=n),
                         "b": [bool(i % 2) for i in range(n)]}), ints


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_write_rows_csv_identical_to_pandas(tmp_path, data):
    df, _ = awkward_frame()
    src = write(df, tmp_path / "src.csv")
    rows = data.draw(st.permutations(range(len(df))))[:data.draw(st.integers(0, len(df)))]
    batch = data.draw(st.sampled_from([1, 2, 5, 16, 1000]))
    out = tmp_path / "out.csv"
    assert write_rows(src, rows, out, batch_rows=batch) == len(rows)
    whole = read(src)  # what the in-memory CLI wrote: read_csv(dtype=str) rows, to_csv
    assert out.read_text() == whole.iloc[list(rows)].to_csv(index=False)


@pytest.mark.parametrize("batch", [1, 3, 8, 1000])
@pytest.mark.parametrize("out_fmt", ["csv", "parquet"])
def test_write_rows_parquet_as_pandas(tmp_path, batch, out_fmt):
    df, ints = awkward_frame()
    df["n"] = ints  # int with a missing value: pandas reads it as float for the whole file
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df.set_index(pd.Index(np.arange(len(df)) * 10, name="idx")))
    table = table.set_column(table.schema.get_field_index("n"), "n", table["n"].cast(pa.int64()))
    src = tmp_path / "src.parquet"
    pq.write_table(table, src, row_group_size=7)
    rows = np.random.default_rng(batch).permutation(len(df))[:31]
    out = tmp_path / f"out.{out_fmt}"
    write_rows(src, rows, out, batch_rows=batch)
    whole = pd.read_parquet(src)
    expected = whole.iloc[rows]
    if out_fmt == "csv":
        assert out.read_text() == expected.to_csv(index=False)
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(out), expected.reset_index(drop=True))


def test_write_rows_rejects_bad_rows_and_leaves_nothing(tmp_path):
    src = write(pd.DataFrame({"a": [1, 2, 3]}), tmp_path / "s.csv")
    for rows, msg in (([0, 0], "twice"), ([5], "past the end"), ([-1], "negative")):
        with pytest.raises(InputError, match=msg):
            write_rows(src, rows, tmp_path / "o.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]


def test_encoded_items_is_exported():
    assert isinstance(encode_chunks([[1, 2]]), EncodedItems)
