"""Vertical XGBoost training and prediction: two party processes plus the dealer process
over loopback TCP, against plaintext xgboost on the same data.

Run:  .venv/bin/python -m pytest benchmarks/test_xgboost.py --benchmark-only -s
Data: ``make_classification`` with ``PET_BENCH_XGB_ROWS`` training rows (default 10^5)
plus 20 % more held out, 20 features split 10 + 10, label at party 0; 10 trees of depth 5,
max_bin 32, learning_rate 0.3. ``extra_info`` records seconds per tree, bytes between the
parties and from the dealer, MPC rounds, test AUC and plaintext xgboost's AUC and time.
With ``--link rtt=20ms,bw=100mbit`` (or ``PET_LINK``) every link -- peer and dealer, both
directions -- is shaped by :class:`pet.transport.Link` (see ``conftest.py``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import time

import numpy as np
from conftest import pick

ROWS = int(os.environ.get("PET_BENCH_XGB_ROWS", pick("10000", "100000")))
TREES, DEPTH, MAX_BIN = 10, 5, 32
PARAMS = dict(n_estimators=TREES, max_depth=DEPTH, learning_rate=0.3, max_bin=MAX_BIN, base_score=0.5)


def _data(rows):
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=rows + rows // 5, n_features=20, n_informative=10,
                               random_state=7)  # not-secret: public benchmark data
    return X[:rows], y[:rows], X[rows:], y[rows:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shaped(channel, link):
    return channel if link is None else link.wrap(channel)


def _flush(*channels):
    """Wait until the shaped channels' delivery threads have sent their last frames (the
    session's closing "close" to the dealer is still queued for half a round trip when the
    ``with`` block ends; a process exiting before that kills the daemon thread, and the
    dealer then sees a disconnection in the middle of the session and never reports)."""
    for ch in channels:
        thread = getattr(ch, "_thread", None)
        if thread is not None:
            thread.join(timeout=60)


def _dealer(port, out, link=None):
    from pet.mpc import dealer
    from pet.transport import tcp
    with tcp.Listener("127.0.0.1", port, timeout=3600) as lst:
        a = _shaped(lst.accept(accept_timeout=300), link)
        b = _shaped(lst.accept(accept_timeout=300), link)
        with a, b:
            dealer.serve(a, b)
            out.put(("dealer", {"sent": a.stats.bytes_sent + b.stats.bytes_sent}))
        _flush(a, b)


def _party(p, peer_port, dealer_port, rows, out, link=None):
    from sklearn.metrics import roc_auc_score

    from pet.ml import VerticalXGBClassifier
    from pet.mpc import Session
    from pet.transport import tcp

    Xtr, ytr, Xte, yte = _data(rows)
    cols = slice(0, 10) if p == 0 else slice(10, 20)
    peer = _shaped(tcp.listen("127.0.0.1", peer_port, timeout=3600, accept_timeout=300) if p == 0
                   else tcp.connect("127.0.0.1", peer_port, timeout=3600, retry_for=300), link)
    dealer = _shaped(tcp.connect("127.0.0.1", dealer_port, timeout=3600, retry_for=300), link)
    stamps = []
    with peer, dealer, Session(p, peer, dealer=dealer) as s:
        t0 = time.perf_counter()
        est = VerticalXGBClassifier(s, **PARAMS, callback=lambda d, t: stamps.append(time.perf_counter()))
        est.fit(Xtr[:, cols], ytr if p == 0 else None)
        fit_s = time.perf_counter() - t0
        fit_bytes = peer.stats.bytes_sent + peer.stats.bytes_received
        fit_rounds = s.rounds
        t1 = time.perf_counter()
        proba = est.predict_proba(Xte[:, cols])
        pred_s = time.perf_counter() - t1
        res = {"fit_s": fit_s, "setup_s": stamps[0] - t0 - (stamps[1] - stamps[0]) if len(stamps) > 1 else 0.0,
               "per_tree_s": float(np.mean(np.diff([t0] + stamps))),
               "steady_tree_s": float(np.median(np.diff(stamps))) if len(stamps) > 1 else fit_s,
               "predict_s": pred_s, "fit_bytes_peer": fit_bytes,
               "total_bytes_peer": peer.stats.bytes_sent + peer.stats.bytes_received,
               "from_dealer": dealer.stats.bytes_received, "fit_rounds": fit_rounds}
        if proba is not None:
            res["auc"] = float(roc_auc_score(yte, proba[:, 1]))
        out.put((p, res))
    _flush(peer, dealer)


def _run(rows, link=None):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    pp, dp = _free_port(), _free_port()
    procs = [ctx.Process(target=_dealer, args=(dp, out, link)),
             ctx.Process(target=_party, args=(0, pp, dp, rows, out, link)),
             ctx.Process(target=_party, args=(1, pp, dp, rows, out, link))]
    for pr in procs:
        pr.start()
    results = dict(out.get(timeout=7200) for _ in procs)
    for pr in procs:
        pr.join(timeout=60)
        if pr.exitcode != 0:
            raise RuntimeError(f"{pr.name} exited with {pr.exitcode}")
    return results


def test_vertical_xgboost_100k(benchmark, link):
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score

    res = benchmark.pedantic(_run, args=(ROWS, link), rounds=1, iterations=1)
    Xtr, ytr, Xte, yte = _data(ROWS)
    t = time.perf_counter()
    ref = xgb.XGBClassifier(**PARAMS, tree_method="hist", n_jobs=1).fit(Xtr, ytr)
    xgb_s = time.perf_counter() - t
    ref_auc = float(roc_auc_score(yte, ref.predict_proba(Xte)[:, 1]))
    p0, p1 = res[0], res[1]
    info = {
        "rows": ROWS, "features": "10 + 10", "trees": TREES, "depth": DEPTH,
        "link": "loopback" if link is None else str(link),
        "seconds_per_tree": round(p0["per_tree_s"], 2),
        "seconds_per_tree_steady": round(p0["steady_tree_s"], 2),
        "fit_seconds": round(p0["fit_s"], 1), "predict_seconds": round(p0["predict_s"], 2),
        "bytes_between_parties_fit": p0["fit_bytes_peer"],
        "bytes_between_parties_total": p0["total_bytes_peer"],
        "bytes_from_dealer": p0["from_dealer"] + p1["from_dealer"],
        "mpc_rounds_fit": p0["fit_rounds"],
        "auc": round(p0["auc"], 5), "xgboost_auc": round(ref_auc, 5), "xgboost_fit_seconds": round(xgb_s, 2),
    }
    benchmark.extra_info.update(info)
    print("\n" + "\n".join(f"{k}: {v}" for k, v in info.items()))
    assert "auc" in p0 and "auc" not in p1  # predictions only at the label party
