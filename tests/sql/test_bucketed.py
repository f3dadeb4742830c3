"""`pet sql` / `pet.sql.query` with the join's PSI step bucketed on Dask (pet.psi.bucketed_join).

Oracle: DuckDB on the plaintext union of both parties' tables. API tests: both parties in
one process (pet.mpc.run_local) with an in-process Dask cluster each; command line: a dealer
and two `pet sql` processes, each starting its own LocalCluster (`--cluster local:2` /
`local:1`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")  # in pet[dev]

from pet.errors import InputError  # noqa: E402
from tests.helpers import free_port, pet_process  # noqa: E402
from tests.sql.helpers import assert_same, oracle, run_both  # noqa: E402

pytestmark = pytest.mark.timeout(300)

SQL = ("SELECT u.region, COUNT(*) AS n, SUM(s.amount * u.weight) AS total, MAX(s.amount) AS top "
       "FROM sales s JOIN users u ON s.uid = u.uid WHERE s.amount > 1 GROUP BY u.region")


def _tables(n0=3000, n1=2500, common=1500, seed=3):
    rng = np.random.default_rng(seed)
    uid0 = rng.permutation(n0)
    uid1 = np.concatenate([uid0[:common], np.arange(n0, n0 + n1 - common)])
    rng.shuffle(uid1)
    sales = pd.DataFrame({"uid": uid0, "amount": np.round(rng.uniform(0, 20, n0), 2)})
    users = pd.DataFrame({"uid": uid1, "weight": np.round(rng.uniform(0, 3, n1), 2),
                          "region": rng.choice(["eu", "us", "apac"], n1)})
    return sales, users


@pytest.fixture(scope="module")
def clients():
    """One in-process cluster per party (2 and 1 single-threaded workers)."""
    import logging

    made = []
    for n in (2, 1):
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=False,
                                           dashboard_address=":0", silence_logs=logging.ERROR)
        made.append((cluster, distributed.Client(cluster)))
    yield [c for _, c in made]
    for cluster, c in made:
        c.close()
        cluster.close()


def _run(sql, sales, users, clients, buckets=5, protocol=None, **kw):
    def prog(session):
        own = {"sales": sales} if session.party == 0 else {"users": users}
        opts = {"buckets": buckets, "cluster": clients[session.party]}
        if protocol is not None:
            opts["protocol"] = protocol
        import pet.sql as psql

        return psql.query(session, sql, own, psi_options=opts, **kw)

    import pet.mpc as mpc

    return mpc.run_local(prog, timeout=240)


@pytest.mark.parametrize("protocol", [None, "ecdh", "kkrt"])  # None: the default, KKRT per bucket
def test_grouped_aggregates_equal_duckdb(clients, protocol):
    sales, users = _tables()
    r0, r1 = _run(SQL, sales, users, clients, protocol=protocol)
    want = oracle(SQL, {"sales": sales}, {"users": users})
    assert_same(r0, want)
    assert_same(r1, want)
    kept = sales[sales.amount > 1]  # the local filter runs before the join
    assert r0.attrs["pet_sql"]["intersection"] == len(set(kept.uid) & set(users.uid))
    plain = run_both(SQL, {"sales": sales}, {"users": users})[0]  # the unbucketed join: the same result
    assert_same(r0, plain)


def test_row_level_composite_key_and_one_to_many(clients):
    a = pd.DataFrame({"k1": [1, 2, 3, 4, 5, 6] * 20, "k2": [f"x{i}" for i in range(120)],
                      "v": np.arange(120, dtype=float)})
    b = pd.DataFrame({"k1": [2, 3, 4, 9] * 25, "k2": [f"x{i}" for i in range(0, 200, 2)],
                      "w": np.arange(100, dtype=float)})
    sql = "SELECT a.v, b.w, a.v + b.w AS s FROM sales a JOIN users b ON a.k1 = b.k1 AND a.k2 = b.k2"
    r0, _ = _run(sql, a, b, clients, buckets=4)
    assert_same(r0, oracle(sql, {"sales": a}, {"users": b}))
    # one-to-many: party 1's key repeats; its row counts per key reach party 0 (reveal_counts)
    c = pd.DataFrame({"uid": np.arange(50), "amount": np.arange(50, dtype=float)})
    d = pd.DataFrame({"uid": np.repeat(np.arange(25, 75), 2), "weight": np.ones(100),
                      "region": ["eu", "us"] * 50})
    r0, _ = _run(SQL, c, d, clients, buckets=3, duplicate_keys="reveal_counts")
    assert_same(r0, oracle(SQL, {"sales": c}, {"users": d}))


def test_options_of_the_other_path_are_refused():
    from pet.psi.bucketed_join import split_bucketed_options

    assert split_bucketed_options({"workers": 2}) is None
    with pytest.raises(InputError, match="need psi_options\\['buckets'\\]"):
        split_bucketed_options({"cluster": "local:2"})
    with pytest.raises(InputError, match="workers"):
        split_bucketed_options({"buckets": 4, "workers": 2})


def test_cli_two_processes_local_clusters(tmp_path):
    sales, users = _tables(4000, 3000, 1800, seed=5)
    sales.to_csv(tmp_path / "sales.csv", index=False)
    users.to_parquet(tmp_path / "users.parquet", index=False)
    dport, pport = free_port(), free_port()
    dealer = pet_process("dealer", "--listen", f"127.0.0.1:{dport}", "--wait", "120")
    common = ["--query", SQL, "--wait", "120", "--buckets", "6"]
    p0 = pet_process("sql", "--party", "0", "--listen", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
                     "--table", f"sales={tmp_path / 'sales.csv'}", "--output", str(tmp_path / "out0.csv"),
                     "--cluster", "local:2", *common)
    p1 = pet_process("sql", "--party", "1", "--connect", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
                     "--table", f"users={tmp_path / 'users.parquet'}", "--output", str(tmp_path / "out1.parquet"),
                     "--cluster", "local:1", "--state-dir", str(tmp_path / "state1"), *common)
    procs = [p0, p1, dealer]
    try:
        outs = [p.communicate(timeout=280) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-3000:] for o in outs]
    want = oracle(SQL, {"sales": sales}, {"users": users})
    assert_same(pd.read_csv(tmp_path / "out0.csv"), want)
    assert_same(pd.read_parquet(tmp_path / "out1.parquet"), want)
    assert not (tmp_path / "state1" / "state").exists()  # the run state is removed after success


def test_cli_mismatched_bucket_counts_fail_both(tmp_path):
    sales, users = _tables(300, 300, 100)
    sales.to_csv(tmp_path / "sales.csv", index=False)
    users.to_csv(tmp_path / "users.csv", index=False)
    dport, pport = free_port(), free_port()
    dealer = pet_process("dealer", "--listen", f"127.0.0.1:{dport}", "--wait", "60")
    common = ["--query", SQL, "--wait", "60", "--cluster", "local:1"]
    p0 = pet_process("sql", "--party", "0", "--listen", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
                     "--table", f"sales={tmp_path / 'sales.csv'}", "--output", str(tmp_path / "o0.csv"),
                     "--buckets", "4", *common)
    p1 = pet_process("sql", "--party", "1", "--connect", f"127.0.0.1:{pport}", "--dealer", f"127.0.0.1:{dport}",
                     "--table", f"users={tmp_path / 'users.csv'}", "--output", str(tmp_path / "o1.csv"),
                     "--buckets", "5", *common)
    procs = [p0, p1, dealer]
    try:
        outs = [p.communicate(timeout=120) for p in procs[:2]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs[:2], outs):
        assert p.returncode != 0 and "bucket count (--buckets)" in err, err[-2000:]
    assert not (tmp_path / "o0.csv").exists() and not (tmp_path / "o1.csv").exists()


def test_cli_cluster_without_buckets_is_refused(tmp_path):
    from tests.helpers import run_pet

    (tmp_path / "s.csv").write_text("uid,amount\n1,2\n")
    out = run_pet("sql", "--party", "0", "--listen", "127.0.0.1:1", "--dealer", "127.0.0.1:2", "--table",
                  f"sales={tmp_path / 's.csv'}", "--query", SQL, "--output", str(tmp_path / "o.csv"),
                  "--cluster", "local:2", timeout=60)
    assert out.returncode != 0 and "--cluster need(s) --buckets" in out.stderr


def test_one_party_bucketed_the_other_not_fails_both(clients):
    import pet.mpc as mpc
    import pet.sql as psql
    from pet.errors import ProtocolError

    sales, users = _tables(200, 200, 100)

    def prog(session):
        if session.party == 0:
            return psql.query(session, SQL, {"sales": sales}, psi_options={"buckets": 3, "cluster": clients[0]})
        return psql.query(session, SQL, {"users": users})

    with pytest.raises(ProtocolError, match="pet.psi.bucketed|bucketed PSI"):  # refused at once, not a hang
        mpc.run_local(prog, timeout=60)


def test_failed_query_with_state_dir_resumes_finished_buckets(tmp_path, clients, monkeypatch):
    import pet.mpc as mpc
    import pet.sql as psql
    from pet.psi import bucketed

    sales, users = _tables(3000, 3000, 1500, seed=9)
    results = []
    real = bucketed.align_dataset

    def recording(*args, **kw):
        results.append(real(*args, **kw))
        return results[-1]

    monkeypatch.setattr(bucketed, "align_dataset", recording)

    class Crash(Exception):
        pass

    def crash_after_3(done, total):
        if done >= 3:
            raise Crash("party 0 dies")

    def run(crash):
        def prog(session):
            own = {"sales": sales} if session.party == 0 else {"users": users}
            opts = {"buckets": 8, "cluster": clients[session.party], "state_dir": tmp_path / f"s{session.party}"}
            if crash and session.party == 0:
                opts["progress"] = crash_after_3
            return psql.query(session, SQL, own, psi_options=opts)
        return mpc.run_local(prog, timeout=120)

    with pytest.raises(Exception):  # noqa: B017 - party 0's crash (or party 1's view of it)
        run(True)
    assert len(list((tmp_path / "s0" / "state" / "done").iterdir())) >= 3  # kept for the rerun
    r0, r1 = run(False)
    want = oracle(SQL, {"sales": sales}, {"users": users})
    assert_same(r0, want)
    assert_same(r1, want)
    assert [r.resumed for r in results] and min(r.resumed for r in results) >= 2  # finished buckets kept
    assert not (tmp_path / "s0" / "state").exists() and not (tmp_path / "s0" / "input.parquet").exists()
