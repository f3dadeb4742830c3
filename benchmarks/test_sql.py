"""pet.sql end to end: JOIN + GROUP BY (10 groups, key at one party) with SUM, AVG and MAX
over a cross-party expression; dealer, party 0 and party 1 as separate processes over
loopback TCP; next to DuckDB's time for the same query on the plaintext union.

Run::

    .venv/bin/python -m pytest benchmarks/test_sql.py --benchmark-only -s \
        [--benchmark-json /tmp/sql.json]

``PET_SQL_BENCH_ROWS=100000`` restricts the sizes (rows per side; default
``100000,1000000``). Half of each side's keys are in the intersection. Reported per case
(``extra_info`` and one printed line): ``wall_s`` (the slower party, query call to
result), ``join_s`` (local step + PSI), ``mpc_s`` (the rest), bytes sent by each party,
joined rows, and ``duckdb_s`` (plaintext DuckDB on the union, one process), ``mpc_rounds`` (the session's
exchange rounds of the query), ``dealer_bytes`` (both parties' dealer traffic) and the
seconds of the MPC steps (``steps_s``: ``seconds_*`` of the query's info, MIN/MAX being
``seconds_min_max``).

With ``--link`` (``conftest.py``; ``--link wan``: loopback, 1 Gbit/s and 100 Mbit/s at
20 ms) every link of the run is shaped: the parties shape what they send to each other and
to the dealer, and the dealer (``pet dealer --link``) what it sends to them.

The data are deterministic arithmetic sequences (no randomness needed for a benchmark).

Two magnitude cases per size (``PET_SQL_BENCH_MAGS``, default ``fits64,wide``): ``fits64``,
amounts below 100 and weights below 10 (every value fits the 64-bit ring), and ``wide``,
money x income in cents (amounts ~4e6, incomes ~1.2e8: a row product ~5e14, its SUM over
the joined rows beyond 2^61, so the planner holds that SUM in Z_2^128, pet.mpc.ring128;
AVG and MAX stay 64-bit). The wide case prints its slowdown against the 64-bit one of the
same size (``slowdown`` in ``extra_info``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import pick

ROWS = [int(x) for x in os.environ.get("PET_SQL_BENCH_ROWS", pick("10000", "100000,1000000")).split(",")
        if x.strip()]
MAGS = [x.strip() for x in os.environ.get("PET_SQL_BENCH_MAGS", "fits64,wide").split(",") if x.strip()]
_WALL: dict = {}  # (rows, mag, link) -> wall seconds, for the wide case's slowdown

SQL = ("SELECT u.g, SUM(s.amount * u.w) AS total, AVG(s.amount + u.w) AS mean, "
       "MAX(s.amount - u.w) AS top FROM sales s JOIN users u ON s.id = u.id GROUP BY u.g")

_PARTY = textwrap.dedent("""
    import json, sys, time
    import numpy as np, pandas as pd
    from pet.mpc import Session
    from pet.sql import query
    from pet.transport import Link, tcp

    def tables(party, n, mag):
        i = np.arange(n, dtype=np.int64)
        wide = mag == "wide"
        if party == 0:
            amount = 4e6 + (i * 7919) % 100000 if wide else ((i * 7919) % 10000) / 100.0
            return {"sales": pd.DataFrame({"id": i, "amount": amount})}
        ids = i + n // 2
        w = 1.2e8 + (ids * 104729) % 10000000 if wide else ((ids * 104729) % 1000) / 100.0
        return {"users": pd.DataFrame({"id": ids, "w": w, "g": ids % 10})}

    def main():
        party, port, dport, n = (int(v) for v in sys.argv[1:5])
        link = sys.argv[7]
        shape = (lambda c: c) if not link else Link.parse(link).wrap
        t = tables(party, n, sys.argv[6])
        if party == 0:
            ch = shape(tcp.listen("127.0.0.1", port, timeout=3600, accept_timeout=300))
        else:
            ch = shape(tcp.connect("127.0.0.1", port, timeout=3600, retry_for=300))
        dealer = shape(tcp.connect("127.0.0.1", dport, timeout=3600, retry_for=300))
        with Session(party, ch, dealer=dealer) as s:
            s.channel.exchange("ready")
            before, dbefore, r0 = ch.stats.snapshot(), dealer.stats.snapshot(), s.rounds
            t0 = time.perf_counter()
            res = query(s, sys.argv[5], t)
            wall = time.perf_counter() - t0
            st, dst, rounds = ch.stats.snapshot() - before, dealer.stats.snapshot() - dbefore, s.rounds - r0
        info = res.attrs["pet_sql"]
        steps = {k[len("seconds_"):]: round(v, 2) for k, v in info.items() if k.startswith("seconds_")}
        print(json.dumps({"wall": wall, "sent": st.bytes_sent, "received": st.bytes_received,
                          "dealer": dst.bytes_sent + dst.bytes_received, "rounds": rounds, "steps": steps,
                          "join": info["seconds_local"] + info["seconds_join"], "joined": info["joined_rows"],
                          "groups": len(res), "ring_bits": info.get("ring_bits"),
                          "result": res.to_dict(orient="list")}))
        ch.close()
        dealer.close()

    main()
""")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _link_text(link) -> str:
    """``link`` as ``Link.parse`` text for the subprocesses ('' = unshaped)."""
    if link is None:
        return ""
    return f"rtt={link.rtt!r}s" + ("" if link.bandwidth is None else f",bw={link.bandwidth!r}bit")


def _run_pet(n: int, mag: str, link=None) -> list[dict]:
    dport, pport = _port(), _port()
    spec = _link_text(link)
    dealer = subprocess.Popen([sys.executable, "-m", "pet", "dealer", "--listen", f"127.0.0.1:{dport}",
                               "--wait", "300", "--timeout", "3600"] + (["--link", spec] if spec else []),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parties = [subprocess.Popen([sys.executable, "-c", _PARTY, str(p), str(pport), str(dport), str(n), SQL, mag,
                                 spec],
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


def _duckdb(n: int, mag: str):
    import duckdb
    import numpy as np
    import pandas as pd

    i = np.arange(n, dtype=np.int64)
    wide = mag == "wide"
    sales = pd.DataFrame({"id": i, "amount": 4e6 + (i * 7919) % 100000 if wide else ((i * 7919) % 10000) / 100.0})
    ids = i + n // 2
    w = 1.2e8 + (ids * 104729) % 10000000 if wide else ((ids * 104729) % 1000) / 100.0
    users = pd.DataFrame({"id": ids, "w": w, "g": ids % 10})
    con = duckdb.connect()
    con.register("sales", sales)
    con.register("users", users)
    t0 = time.perf_counter()
    df = con.execute(SQL).df()
    return time.perf_counter() - t0, df


@pytest.mark.parametrize("mag", MAGS)
@pytest.mark.parametrize("rows", ROWS)
def test_sql_join_groupby(benchmark, rows, mag, link):
    holder = {}

    def once():
        holder["r"] = _run_pet(rows, mag, link)

    benchmark.pedantic(once, rounds=1, iterations=1)
    r0, r1 = holder["r"]
    duck_s, want = _duckdb(rows, mag)
    got = {g: (t, m, x) for g, t, m, x in zip(r0["result"]["g"], r0["result"]["total"], r0["result"]["mean"],
                                              r0["result"]["top"])}
    err = 0.0
    for g, t, m, x in want.itertuples(index=False):
        for a, b in zip(got[g], (t, m, x)):
            err = max(err, abs(a - b) / max(1.0, abs(b)))
    wall = max(r0["wall"], r1["wall"])
    _WALL[(rows, mag, str(link))] = wall
    base = _WALL.get((rows, "fits64", str(link)))
    slowdown = wall / base if mag == "wide" and base else None
    join = max(r0["join"], r1["join"])
    benchmark.extra_info.update({
        "link": "loopback" if link is None else str(link), "mpc_rounds": r0["rounds"],
        "dealer_bytes": r0["dealer"] + r1["dealer"], "steps_s": r0["steps"],
        "rows_per_side": rows, "joined_rows": r0["joined"], "groups": r0["groups"], "wall_s": wall,
        "join_s": join, "mpc_s": wall - join, "bytes_sent_p0": r0["sent"], "bytes_sent_p1": r1["sent"],
        "duckdb_s": duck_s, "max_rel_err": err, "magnitudes": mag, "ring_bits": r0["ring_bits"],
        "slowdown": slowdown})
    print(f"\npet.sql [{mag}, SUM in the {r0['ring_bits']}-bit ring, {'loopback' if link is None else link}] "
          f"{rows:,} x {rows:,} rows "
          f"({r0['joined']:,} joined, {r0['groups']} groups): "
          f"{wall:.1f} s (local+PSI {join:.1f} s, MPC {wall - join:.1f} s); sent {r0['sent'] / 1e6:.1f} MB / "
          f"{r1['sent'] / 1e6:.1f} MB; DuckDB plaintext {duck_s * 1e3:.1f} ms; max rel. error {err:.1e}"
          + (f"; slowdown vs 64-bit {slowdown:.2f}x" if slowdown else "")
          + f"; {r0['rounds']} rounds, dealer {(r0['dealer'] + r1['dealer']) / 1e6:.1f} MB; steps {r0['steps']}")
    assert len(want) == r0["groups"] == 10
    assert err < 1e-3
    assert r0["ring_bits"] == (128 if mag == "wide" else 64)
