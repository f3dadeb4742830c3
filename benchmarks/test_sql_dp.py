"""pet.sql under differential privacy (issue 18): the JOIN + GROUP BY of
``benchmarks/test_sql.py`` (10 groups, key at one party; COUNT, SUM and AVG over
cross-party expressions -- MAX has no DP mechanism) with ``dp=DP(1.0, 1e-6, bounds=...,
public_groups=...)`` next to the same query without DP; dealer, party 0 and party 1 as
separate processes over loopback TCP.

Run::

    .venv/bin/python -m pytest benchmarks/test_sql_dp.py --benchmark-only -s

``PET_SQL_DP_BENCH_ROWS=10000`` sets the sizes (rows per side; default 10^4, with
``PET_BENCH_FULL=1`` 10^4 and 10^6); ``PET_SQL_DP_BENCH_REPEAT`` (default 3) the number of
DP / plain pairs, run alternately in fresh processes (each pays its first-use costs:
imports, JIT warm-up), of which the medians are reported -- on a shared machine one pair's
wall times differ by more than the DP overhead. Two shapes: no WHERE, and a one-party WHERE
(``s.amount > 10``), which without DP filters before the PSI but under DP runs on the
joined rows as a mask in MPC (docs/sql.md, "WHERE under DP") -- so that case also shows
the cost of not revealing the filtered count. Reported per case (``extra_info`` and one
printed line): wall time of the slower party with and without DP and the overhead, the
CPU seconds of the query in each party's process (less sensitive to the load of other
processes), bytes and messages sent, the DP query's seconds per step (``seconds_dp_*``:
row expressions, clamps, mask, sums, noise + reveal + charge), and per released aggregate
the mean relative error over the groups next to the central mechanism's expected relative
error (its noise std ``attrs["dp"]["noise_std"] / sqrt(2)`` over the exact value; AVG by
the delta method from its sum's and count's noise), and the session's MPC rounds.

With ``--link`` (``conftest.py``; ``--link wan``: loopback, 1 Gbit/s and 100 Mbit/s at
20 ms) every link of the run is shaped: the parties shape what they send to each other and
to the dealer, and the dealer (``pet dealer --link``) what it sends to them
(``extra_info["link"]``).
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
import subprocess
import sys
import textwrap

import pytest
from conftest import link_label, link_text, pick

ROWS = [int(x) for x in os.environ.get("PET_SQL_DP_BENCH_ROWS", pick("10000", "10000,1000000")).split(",")
        if x.strip()]
REPEAT = int(os.environ.get("PET_SQL_DP_BENCH_REPEAT", "3"))
WHERES = ["", "WHERE s.amount > 10"]
SQL = ("SELECT u.g, COUNT(*) AS n, SUM(s.amount * u.w) AS total, AVG(s.amount + u.w) AS mean "
       "FROM sales s JOIN users u ON s.id = u.id {where} GROUP BY u.g")
DP_SPEC = {"epsilon": 1.0, "delta": 1e-6, "bounds": {"total": [0, 1000], "mean": [0, 110]},
           "public_groups": {"g": list(range(10))}}

_PARTY = textwrap.dedent("""
    import json, sys, time
    import numpy as np, pandas as pd
    from pet.mpc import Session
    from pet.sql import DP, query
    from pet.transport import Link, tcp

    def tables(party, n):
        i = np.arange(n, dtype=np.int64)
        if party == 0:
            return {"sales": pd.DataFrame({"id": i, "amount": ((i * 7919) % 10000) / 100.0})}
        ids = i + n // 2
        return {"users": pd.DataFrame({"id": ids, "w": ((ids * 104729) % 1000) / 100.0, "g": ids % 10})}

    def main():
        party, port, dport, n = (int(v) for v in sys.argv[1:5])
        spec = json.loads(sys.argv[6])
        dp = None
        if spec:
            dp = DP(spec["epsilon"], spec["delta"], bounds={k: tuple(v) for k, v in spec["bounds"].items()},
                    public_groups=spec["public_groups"])
        t = tables(party, n)
        shape = (lambda c: c) if not sys.argv[7] else Link.parse(sys.argv[7]).wrap
        if party == 0:
            ch = shape(tcp.listen("127.0.0.1", port, timeout=3600, accept_timeout=300))
        else:
            ch = shape(tcp.connect("127.0.0.1", port, timeout=3600, retry_for=300))
        dealer = shape(tcp.connect("127.0.0.1", dport, timeout=3600, retry_for=300))
        with Session(party, ch, dealer=dealer) as s:
            s.channel.exchange("ready")
            before, r0 = ch.stats.snapshot(), s.rounds
            t0, c0 = time.perf_counter(), time.process_time()
            res = query(s, sys.argv[5], t, dp=dp)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            st, rounds = ch.stats.snapshot() - before, s.rounds - r0
        info = res.attrs["pet_sql"]
        steps = {k: v for k, v in info.items() if k.startswith("seconds_")}
        print(json.dumps({"wall": wall, "cpu": cpu, "sent": st.bytes_sent, "messages": st.messages_sent,
                          "rounds": rounds, "joined": info["joined_rows"], "steps": steps,
                          "dp": res.attrs.get("dp"), "result": res.to_dict(orient="list")}, default=str))
        ch.close()
        dealer.close()

    main()
""")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_pet(n: int, sql: str, spec, link=None) -> list[dict]:
    dport, pport = _port(), _port()
    ltext = link_text(link)
    dealer = subprocess.Popen([sys.executable, "-m", "pet", "dealer", "--listen", f"127.0.0.1:{dport}",
                               "--wait", "300", "--timeout", "3600"] + (["--link", ltext] if ltext else []),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parties = [subprocess.Popen([sys.executable, "-c", _PARTY, str(p), str(pport), str(dport), str(n), sql,
                                 json.dumps(spec), ltext],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in (0, 1)]
    try:
        outs = [p.communicate(timeout=3600) for p in parties]
        dealer.communicate(timeout=60)
    finally:
        for p in parties + [dealer]:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(parties, outs):
        if p.returncode != 0:
            raise RuntimeError(f"party failed:\n{err[-3000:]}")
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def _exact(n: int, sql: str):
    import duckdb
    import numpy as np
    import pandas as pd

    i = np.arange(n, dtype=np.int64)
    sales = pd.DataFrame({"id": i, "amount": ((i * 7919) % 10000) / 100.0})
    ids = i + n // 2
    users = pd.DataFrame({"id": ids, "w": ((ids * 104729) % 1000) / 100.0, "g": ids % 10})
    con = duckdb.connect()
    con.register("sales", sales)
    con.register("users", users)
    return con.execute(sql).df().set_index("g")


def _errors(result: dict, dp: dict, want) -> dict:
    """Per aggregate: (mean observed relative error, mean central expected relative error)."""
    got = {g: i for i, g in enumerate(result["g"])}
    central = {k: v / math.sqrt(2) for k, v in dp["noise_std"].items() if v is not None}
    avg = dp["avg_noise"]["mean"]
    out = {}
    for col in ("n", "total", "mean"):
        obs, exp = [], []
        for g, row in want.iterrows():
            x, w = float(result[col][got[g]]), float(row[col])
            obs.append(abs(x - w) / abs(w))
            if col == "mean":  # AVG = SUM / COUNT: delta method with the central noise of both
                s, c = float(row["mean"]) * float(row["n"]), float(row["n"])
                sum_std, count_std = avg["sum_noise_std"] / math.sqrt(2), avg["count_noise_std"] / math.sqrt(2)
                exp.append(math.hypot(sum_std / s, count_std / c))
            else:
                exp.append(central[col] / abs(w))
        out[col] = (sum(obs) / len(obs), sum(exp) / len(exp))
    return out


@pytest.mark.parametrize("where", WHERES, ids=["no-where", "one-party-where"])
@pytest.mark.parametrize("rows", ROWS)
def test_sql_dp_overhead_and_error(benchmark, rows, where, link):
    sql = SQL.format(where=where)
    holder = {"dp": [], "plain": []}

    def once():
        holder["dp"].append(_run_pet(rows, sql, DP_SPEC, link))
        holder["plain"].append(_run_pet(rows, sql, None, link))

    benchmark.pedantic(once, rounds=REPEAT, iterations=1)
    med = statistics.median
    wall_dp = med(max(d["wall"] for d in r) for r in holder["dp"])
    wall = med(max(d["wall"] for d in r) for r in holder["plain"])
    cpu_dp = med(d["cpu"] for r in holder["dp"] for d in r)
    cpu = med(d["cpu"] for r in holder["plain"] for d in r)
    d0, d1 = holder["dp"][-1]
    plain = holder["plain"][-1]
    steps = {k: round(med(r[0]["steps"].get(k, 0.0) for r in holder["dp"]), 3) for k in d0["steps"]}
    want = _exact(rows, sql)
    errs = _errors(d0["result"], d0["dp"], want)
    load = os.getloadavg()
    benchmark.extra_info.update({
        "link": link_label(link), "rounds_dp": d0["rounds"], "rounds_plain": plain[0]["rounds"],
        "rows_per_side": rows, "where": where, "repeat": REPEAT,
        "joined_rows_dp": d0["joined"], "joined_rows_plain": plain[0]["joined"],
        "wall_dp_s": wall_dp, "wall_plain_s": wall, "overhead": wall_dp / wall - 1,
        "cpu_dp_s": cpu_dp, "cpu_plain_s": cpu, "cpu_overhead": cpu_dp / cpu - 1,
        "bytes_sent_dp": [d0["sent"], d1["sent"]], "bytes_sent_plain": [plain[0]["sent"], plain[1]["sent"]],
        "messages_sent_dp": [d0["messages"], d1["messages"]],
        "messages_sent_plain": [plain[0]["messages"], plain[1]["messages"]],
        "dp_steps_s": steps,
        "rel_err": {k: v[0] for k, v in errs.items()}, "central_rel_err": {k: v[1] for k, v in errs.items()},
        "loadavg": load})
    print(f"\npet.sql DP [{link_label(link)}] {rows:,} x {rows:,} rows, {where or 'no WHERE'} "
          f"(joined {d0['joined']:,} under DP, "
          f"{plain[0]['joined']:,} without), median of {REPEAT}: wall DP {wall_dp:.2f} s vs {wall:.2f} s "
          f"({100 * (wall_dp / wall - 1):+.0f}%); CPU per party DP {cpu_dp:.2f} s vs {cpu:.2f} s "
          f"({100 * (cpu_dp / cpu - 1):+.0f}%); sent {d0['sent'] / 1e6:.2f} / {d1['sent'] / 1e6:.2f} MB in "
          f"{d0['messages']} messages vs {plain[0]['sent'] / 1e6:.2f} / {plain[1]['sent'] / 1e6:.2f} MB in "
          f"{plain[0]['messages']}; {d0['rounds']} vs {plain[0]['rounds']} rounds; load {load[0]:.1f}")
    print(f"  DP steps (s): {steps}")
    for k, (o, e) in errs.items():
        print(f"  {k:6} mean rel. error {o:.2e} (central mechanism expected {e:.2e})")
    assert d0["joined"] == rows // 2 and sorted(d0["result"]["g"]) == list(range(10))
    assert d0["result"] == d1["result"]
