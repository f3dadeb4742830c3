"""align() against pandas' inner merge (the oracle), single and composite keys; fixtures."""

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pet.data import reference_path
from pet.errors import InputError, ProtocolError
from pet.psi import align, ecdh_psi
from pet.transport import run_parties

DATA = str(reference_path())  # shipped copy of the reference fixtures


def run_align(d0, on0, d1, on1, **kw):
    return run_parties(lambda ch: align(ch, d0, on0, party=0, **kw),
                       lambda ch: align(ch, d1, on1, party=1, **kw), timeout=120)


keys = st.tuples(st.integers(-5, 5), st.text(alphabet="abc", max_size=2))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(keys, max_size=20).map(sorted).flatmap(st.permutations),
       st.sets(keys, max_size=20).map(sorted).flatmap(st.permutations))
def test_composite_key_matches_pandas_merge(k0, k1):
    d0 = pd.DataFrame({"k1": [a for a, _ in k0], "k2": [b for _, b in k0], "v0": range(len(k0))})
    d1 = pd.DataFrame({"n": [a for a, _ in k1], "s": [b for _, b in k1], "v1": range(100, 100 + len(k1))})
    r0, r1 = run_align(d0, ["k1", "k2"], d1, ["n", "s"])
    oracle = d0.merge(d1, left_on=["k1", "k2"], right_on=["n", "s"], how="inner")
    assert len(r0) == len(r1) == len(oracle)
    assert list(r0.columns) == ["k1", "k2", "v0"] and list(r1.columns) == ["n", "s", "v1"]
    # row-by-row equal keys on both sides
    assert r0["k1"].tolist() == r1["n"].tolist() and r0["k2"].tolist() == r1["s"].tolist()
    # the rows are the oracle's rows (key -> own values)
    got = sorted(zip(r0["k1"], r0["k2"], r0["v0"], r1["v1"]))
    want = sorted(zip(oracle["k1"], oracle["k2"], oracle["v0"], oracle["v1"]))
    assert got == want


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(st.integers(0, 60), max_size=30), st.sets(st.integers(0, 60), max_size=30))
def test_single_key_matches_pandas_merge(s0, s1):
    d0 = pd.DataFrame({"id": sorted(s0), "x": [f"x{i}" for i in sorted(s0)]})
    d1 = pd.DataFrame({"id": sorted(s1, reverse=True), "y": [i * 2 for i in sorted(s1, reverse=True)]})
    r0, r1 = run_align(d0, "id", d1, "id")
    oracle = d0.merge(d1, on="id")
    assert r0["id"].tolist() == r1["id"].tolist()
    assert sorted(r0["id"]) == sorted(oracle["id"])
    assert (r0["x"] == [f"x{i}" for i in r0["id"]]).all() and (r1["y"] == r1["id"] * 2).all()


def test_breast_fixture_569_ids():
    d0 = pd.read_csv(f"{DATA}/PETML/breast_hetero_mini_server.csv")
    d1 = pd.read_csv(f"{DATA}/PETML/breast_hetero_mini_client.csv")
    r0, r1 = run_align(d0, "id", d1.iloc[::-1], "id")
    assert len(r0) == len(r1) == 569 == len(set(d0["id"]) & set(d1["id"]))
    assert r0["id"].tolist() == r1["id"].tolist()
    assert list(r0.columns) == ["id", "x3", "x4", "x5"] and list(r1.columns) == ["id", "y", "x0", "x1", "x2"]
    assert r0["id"].dtype == d0["id"].dtype
    # parquet copies give the same alignment
    p0 = pd.read_parquet(f"{DATA}/PETML/breast_hetero_mini_server.parquet")
    p1 = pd.read_parquet(f"{DATA}/PETML/breast_hetero_mini_client.parquet")
    q0, q1 = run_align(p0, "id", p1, "id")
    assert len(q0) == 569 and q0["id"].tolist() == q1["id"].tolist()


@pytest.mark.parametrize("f0,f1,expected", [
    ("airline_passenger_list.csv", "interpol_terror_watch_list.csv", {"123456789"}),
    ("hospital_patient_list.csv", "research_institute_patient_list.csv", {"520-09-0437"}),
])
def test_toy_lists(f0, f1, expected):
    a = pd.read_csv(f"{DATA}/PETAce-SetOps/{f0}", header=None, dtype=str)[0]
    b = pd.read_csv(f"{DATA}/PETAce-SetOps/{f1}", header=None, dtype=str)[0]
    r0, r1 = run_parties(lambda ch: ecdh_psi(ch, a, party=0), lambda ch: ecdh_psi(ch, b, party=1), timeout=60)
    assert set(r0.items) == set(r1.items) == expected == set(a) & set(b)


def test_keep_index_and_reveal():
    d0 = pd.DataFrame({"id": ["a", "b", "c"]}, index=[10, 20, 30])
    d1 = pd.DataFrame({"id": ["c", "a"]})
    r0, r1 = run_align(d0, "id", d1, "id", keep_index=True, reveal_to=0)
    assert r1 is None
    assert sorted(r0.index) == [10, 30]


def test_align_errors():
    from pet.transport import local_pair

    ch, _ = local_pair(timeout=5)
    df = pd.DataFrame({"id": [1, None, 3], "k": ["a", "b", "a"]})
    with pytest.raises(InputError, match="not in the DataFrame"):
        align(ch, df, "nope", party=0)
    with pytest.raises(InputError, match=r"df\['id'\].*row 1"):
        align(ch, df, "id", party=0)
    with pytest.raises(InputError, match="1 duplicate"):
        align(ch, df, "k", party=0)
    with pytest.raises(InputError):
        align(ch, df, [], party=0)
    with pytest.raises(InputError):
        align(ch, df.values, "id", party=0)


def test_key_arity_mismatch():
    d0 = pd.DataFrame({"a": [1], "b": [2]})
    d1 = pd.DataFrame({"a": [1]})
    with pytest.raises(ProtocolError, match="number of key columns"):
        run_align(d0, ["a", "b"], d1, "a")
