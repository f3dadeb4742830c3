"""KKRT per bucket in the bucketed path (``align_dataset(protocol="kkrt")``, ``pet psi
--buckets B --protocol kkrt``).

Oracle: the pandas inner join on the key (text), as tests/psi/test_bucketed.py (whose
in-process clusters and helpers are reused here).
"""

from __future__ import annotations

import time

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")  # in pet[dev]; `import pet` does not need it

from pet.errors import InputError, ProtocolError  # noqa: E402
from pet.psi import bucketed  # noqa: E402
from pet.psi.bucketed import default_buckets  # noqa: E402
from tests.helpers import free_port, pet_process  # noqa: E402
from tests.psi.test_bucketed import _check_aligned, _env, _run_both, _tables, clients  # noqa: E402, F401

pytestmark = pytest.mark.timeout(300)


def test_kkrt_per_bucket_equals_pandas_join(tmp_path, clients):  # noqa: F811
    a, b, pa_, pb = _tables(tmp_path)
    out0, out1 = tmp_path / "o0.parquet", tmp_path / "o1"
    kw = dict(on="id", buckets=5, protocol="kkrt")
    r0, r1 = _run_both(dict(kw, path=pa_, output=out0, cluster=clients[0]),
                       dict(kw, path=pb, output=out1, cluster=clients[1]))
    assert not isinstance(r0, Exception), r0
    assert not isinstance(r1, Exception), r1
    o1 = pd.concat([pd.read_parquet(p) for p in sorted(out1.iterdir())], ignore_index=True)
    _check_aligned(a, b, pd.read_parquet(out0), o1)
    assert (r0.written, r1.written) == (3000, 3000)
    # KKRT's traffic: the receiver's 64 B per cuckoo bin dominate (ECDH here: ~2 x 33 B per item)
    assert r0.bytes_sent + r0.bytes_received > 64 * 5000


def test_kkrt_empty_buckets_and_reveal_to_one(tmp_path, clients):  # noqa: F811
    """More buckets than a side has rows: some buckets are empty at one or both parties
    (KKRT's empty-set path), and only party 0 learns."""
    a = pd.DataFrame({"id": [f"k{i}" for i in range(12)], "x": range(12)})
    b = pd.DataFrame({"id": [f"k{i}" for i in range(6, 9)] + ["z1", "z2"], "y": [f"v{i}" for i in range(5)]})
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_parquet(tmp_path / "b.parquet", index=False)
    kw = dict(on="id", buckets=16, protocol="kkrt", reveal=0)
    r0, r1 = _run_both(dict(kw, path=tmp_path / "a.csv", output=tmp_path / "o0.parquet", cluster=clients[0]),
                       dict(kw, path=tmp_path / "b.parquet", output=tmp_path / "o1.parquet", cluster=clients[1]))
    assert not isinstance(r0, Exception), r0
    assert not isinstance(r1, Exception), r1
    assert r1.written is None and not (tmp_path / "o1.parquet").exists()
    o0 = pd.read_parquet(tmp_path / "o0.parquet")
    assert sorted(o0["id"]) == sorted(a.merge(b, on="id")["id"]) == ["k6", "k7", "k8"]


def test_protocol_mismatch_fails_both_with_clear_error(tmp_path, clients):  # noqa: F811
    _, _, pa_, pb = _tables(tmp_path, 1000, 1000, 500)
    start = time.monotonic()
    r0, r1 = _run_both(dict(path=pa_, on="id", output=tmp_path / "o0.parquet", buckets=4, cluster=clients[0],
                            protocol="kkrt"),
                       dict(path=pb, on="id", output=tmp_path / "o1.parquet", buckets=4, cluster=clients[1],
                            protocol="ecdh"))
    assert time.monotonic() - start < 60  # told in the header, not a timeout
    for r in (r0, r1):
        assert isinstance(r, ProtocolError) and "per-bucket protocol" in str(r), r
    assert "'kkrt'" in str(r0) and "'ecdh'" in str(r0)
    assert not (tmp_path / "o0.parquet").exists() and not (tmp_path / "o1.parquet").exists()


def test_resume_needs_the_same_protocol(tmp_path, clients):  # noqa: F811
    """A run state left by an ECDH run is not resumed by a KKRT run (the protocol is part of
    the run's fingerprint): the buckets are redone, the output is still right."""
    a, b, pa_, pb = _tables(tmp_path, 3000, 3000, 1500)
    out0, out1 = tmp_path / "o0.parquet", tmp_path / "o1.parquet"

    def crash_after_2(done, total):
        if done >= 2:
            raise RuntimeError("party 0's driver dies")

    kw0 = dict(path=pa_, on="id", output=out0, buckets=6, cluster=clients[0])
    kw1 = dict(path=pb, on="id", output=out1, buckets=6, cluster=clients[1])
    r0, _ = _run_both(dict(kw0, progress=crash_after_2, protocol="ecdh"), dict(kw1, protocol="ecdh"), timeout=30)
    assert isinstance(r0, RuntimeError)
    r0, r1 = _run_both(dict(kw0, protocol="kkrt"), dict(kw1, protocol="kkrt"))
    assert not isinstance(r0, Exception), r0
    assert not isinstance(r1, Exception), r1
    assert r0.resumed == r1.resumed == 0
    _check_aligned(a, b, pd.read_parquet(out0), pd.read_parquet(out1))


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"hash_suite": "RO"}, "hash_suite 'RO' is ECDH's"),
    ({"chunk_size": 1000}, "multiple of 64"),
    ({"protocol": "rr22"}, "protocol must be one of ['ecdh', 'kkrt']"),
])
def test_kkrt_option_errors(tmp_path, kwargs, words):
    from pet.transport import local_pair

    c0, _ = local_pair(timeout=5)
    with pytest.raises(InputError) as err:
        bucketed.align_dataset(c0, tmp_path / "a.csv", "id", tmp_path / "o.parquet", party=0, buckets=2,
                               **{"protocol": "kkrt", **kwargs})
    assert words in str(err.value)


def test_default_buckets_per_protocol():
    assert default_buckets(0, "kkrt") == default_buckets(0, "ecdh") == 8
    assert default_buckets(10**6, "ecdh") == 62  # 2^14 rows per bucket
    assert default_buckets(10**7, "kkrt") == -(-10**7 // bucketed.ROWS_PER_BUCKET["kkrt"])
    assert default_buckets(10**7, "kkrt") < default_buckets(10**7, "ecdh")
    with pytest.raises(InputError, match="protocol must be one of"):
        default_buckets(10, "rr22")


def test_cli_kkrt_buckets_local_clusters(tmp_path):
    """``pet psi --buckets B`` runs KKRT per bucket by default (``--protocol kkrt`` was
    refused with ``--buckets`` before), each party on its own ``local:1`` cluster."""
    a, b, pa_, pb = _tables(tmp_path, 3000, 2500, 1200)
    port = free_port()
    common = ["--column", "id", "--buckets", "3", "--cluster", "local:1", "--no-progress"]  # kkrt: the default
    p0 = pet_process("psi", "--party", "0", "--listen", f"127.0.0.1:{port}", "--input", pa_, "--output",
                     tmp_path / "o0.parquet", *common, env=_env())
    p1 = pet_process("psi", "--party", "1", "--connect", f"127.0.0.1:{port}", "--input", pb, "--output",
                     tmp_path / "o1.parquet", *common, env=_env())
    out0, err0 = p0.communicate(timeout=240)
    out1, err1 = p1.communicate(timeout=60)
    assert p0.returncode == 0 and p1.returncode == 0, (err0[-2000:], err1[-2000:])
    assert "1200 of 3000 rows in the intersection" in out0 and "(3 buckets by kkrt" in out0
    _check_aligned(a, b, pd.read_parquet(tmp_path / "o0.parquet"), pd.read_parquet(tmp_path / "o1.parquet"))


def test_cli_protocol_mismatch_with_buckets_fails_both(tmp_path):
    _, _, pa_, pb = _tables(tmp_path, 500, 500, 200)
    port = free_port()
    common = ["--column", "id", "--buckets", "2", "--cluster", "local:1", "--no-progress"]
    p0 = pet_process("psi", "--party", "0", "--listen", f"127.0.0.1:{port}", "--input", pa_, "--output",
                     tmp_path / "o0.parquet", "--protocol", "kkrt", *common, env=_env())
    p1 = pet_process("psi", "--party", "1", "--connect", f"127.0.0.1:{port}", "--input", pb, "--output",
                     tmp_path / "o1.parquet", "--protocol", "ecdh", *common, env=_env())
    _, err0 = p0.communicate(timeout=120)
    _, err1 = p1.communicate(timeout=60)
    for code, err in ((p0.returncode, err0), (p1.returncode, err1)):
        assert code != 0 and "per-bucket protocol" in err, err[-2000:]
    assert not (tmp_path / "o0.parquet").exists() and not (tmp_path / "o1.parquet").exists()
