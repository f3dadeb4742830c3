"""``pet psi`` end to end: two OS processes over loopback TCP (plain and mutual TLS)."""

import pandas as pd

from pet.data import reference_path
from tests.helpers import free_port, pet_process

DATA = reference_path()  # shipped copy of the reference fixtures


def pet(*args):
    return pet_process("psi", *args)


def both(args0, args1, timeout=120):
    port = free_port()
    p0 = pet("--party", 0, "--listen", f"127.0.0.1:{port}", *args0)
    p1 = pet("--party", 1, "--connect", f"127.0.0.1:{port}", *args1)
    out0 = p0.communicate(timeout=timeout)
    out1 = p1.communicate(timeout=timeout)
    return (p0.returncode, *out0), (p1.returncode, *out1)


def test_two_processes_csv_and_parquet(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.parquet"
    r0, r1 = both(["--input", DATA / "PETML/breast_hetero_mini_server.csv", "--column", "id", "--output", a],
                  ["--input", DATA / "PETML/breast_hetero_mini_client.parquet", "--column", "id", "--output", b])
    assert r0[0] == 0 and r1[0] == 0, (r0, r1)
    out0, out1 = pd.read_csv(a), pd.read_parquet(b)
    src0 = pd.read_csv(DATA / "PETML/breast_hetero_mini_server.csv")
    assert len(out0) == len(out1) == 569
    assert out0["id"].tolist() == out1["id"].tolist()  # joint order
    assert list(out0.columns) == list(src0.columns) and out1["id"].dtype == "int64"
    # rows are the original rows, unchanged
    merged = out0.merge(src0, on="id", suffixes=("", "_src"))
    assert (merged["x3"] == merged["x3_src"]).all()
    assert "569 of 569" in r0[1]


def test_two_processes_tls_reveal_and_toy_lists(tmp_path):
    from pet.transport.tls import make_test_pki

    pki = make_test_pki(tmp_path / "pki", names=("party0", "party1"))
    tls = [[f"--tls-cert={pki[n].cert}", f"--tls-key={pki[n].key}", f"--tls-ca={pki[n].ca}"]
           for n in ("party0", "party1")]
    o0, o1 = tmp_path / "o0.csv", tmp_path / "o1.csv"
    r0, r1 = both(["--input", DATA / "PETAce-SetOps/airline_passenger_list.csv", "--no-header", "--column", "0",
                   "--output", o0, "--reveal", "1", *tls[0]],
                  ["--input", DATA / "PETAce-SetOps/interpol_terror_watch_list.csv", "--no-header",
                   "--column", "0", "--output", o1, "--reveal", "1", *tls[1]])
    assert r0[0] == 0 and r1[0] == 0, (r0, r1)
    assert not o0.exists() and "does not learn" in r0[1]
    assert o1.read_text().split() == ["123456789"]


def test_cardinality(tmp_path):
    r0, r1 = both(["--input", DATA / "PETAce-SetOps/hospital_patient_list.csv", "--no-header", "--column", "0",
                   "--cardinality"],
                  ["--input", DATA / "PETAce-SetOps/research_institute_patient_list.csv", "--no-header",
                   "--column", "0", "--cardinality"])
    assert r0[0] == r1[0] == 0
    assert "intersection size 1" in r0[1] and "intersection size 1" in r1[1]


def test_peer_never_comes(tmp_path):
    p = pet("--party", 0, "--listen", f"127.0.0.1:{free_port()}", "--input",
            DATA / "PETML/breast_hetero_mini_server.csv", "--column", "id", "--output", tmp_path / "x.csv",
            "--wait", "1")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1
    assert "no peer connected" in err and "within 1 s" in err
    assert not (tmp_path / "x.csv").exists()
    p = pet("--party", 1, "--connect", f"127.0.0.1:{free_port()}", "--input",
            DATA / "PETML/breast_hetero_mini_server.csv", "--column", "id", "--output", tmp_path / "x.csv",
            "--wait", "1")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "could not reach the peer" in err


def test_bad_input_fails_cleanly_on_both_sides(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id\n1\n2\n1\n")
    o0, o1 = tmp_path / "o0.csv", tmp_path / "o1.csv"
    r0, r1 = both(["--input", bad, "--column", "id", "--output", o0, "--timeout", "30"],
                  ["--input", DATA / "PETML/breast_hetero_mini_server.csv", "--column", "id", "--output", o1,
                   "--timeout", "30"], timeout=90)
    assert r0[0] == 1 and "1 row(s) repeat an earlier key" in r0[2] and "--dedupe" in r0[2]
    assert r1[0] == 1 and "the peer failed: duplicate keys in its input" in r1[2]
    assert not o0.exists() and not o1.exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_missing_column_message(tmp_path):
    p = pet("--party", 0, "--listen", f"127.0.0.1:{free_port()}", "--input",
            DATA / "PETML/breast_hetero_mini_server.csv", "--column", "nope", "--output", tmp_path / "x.csv")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "nope" in err


def test_composite_key_dedupe_parquet_against_pandas(tmp_path):
    """Streamed input and output through the CLI: composite key, --dedupe, CSV -> Parquet."""
    a, b = tmp_path / "a.csv", tmp_path / "b.parquet"
    df0 = pd.DataFrame({"k": ["x", "y", "y", "z", "w"], "n": [1, 2, 2, 3, 4], "v": ["a", "b", "dup", "c", "d"]})
    df1 = pd.DataFrame({"k": ["z", "y", "q", "x"], "n": [3, 2, 9, 5], "w": [0.5, 1.5, 2.5, 3.5]})
    df0.to_csv(a, index=False)
    df1.to_parquet(b, index=False)
    o0, o1 = tmp_path / "o0.parquet", tmp_path / "o1.csv"
    r0, r1 = both(["--input", a, "--column", "k", "--column", "n", "--dedupe", "--output", o0],
                  ["--input", b, "--column", "k", "--column", "n", "--output", o1])
    assert r0[0] == 0 and r1[0] == 0, (r0, r1)
    out0, out1 = pd.read_parquet(o0), pd.read_csv(o1)
    assert out0["k"].tolist() == out1["k"].tolist() and sorted(out0["k"]) == ["y", "z"]
    first = df0.astype(str).drop_duplicates(["k", "n"])  # --dedupe keeps the first row
    expected = first.merge(df1.astype(str)[["k", "n"]], on=["k", "n"])
    assert sorted(map(tuple, out0.to_numpy())) == sorted(map(tuple, expected.to_numpy()))
    assert out1.merge(df1, on=["k", "n", "w"]).shape[0] == 2
