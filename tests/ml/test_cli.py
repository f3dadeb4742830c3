"""``pet xgb fit`` / ``pet xgb predict`` as two processes over TCP with a dealer process,
on the PETML breast fixtures (CSV at the label party, Parquet at the other)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from pet.data import reference_path
from tests.helpers import free_port as _free_port
from tests.helpers import pet_process as _pet

FIXTURES = reference_path("PETML")


def _tls(pki, name, peer):
    return ["--tls-cert", str(pki / f"{name}.pem"), "--tls-key", str(pki / f"{name}.key"),
            "--tls-ca", str(pki / "ca.pem"), "--tls-peer-name", peer, "--tls-dealer-name", "dealer"]


def _pair(action, extra0, extra1, dealer_port, pki):
    port = _free_port()
    common = ["xgb", action, "--dealer", f"127.0.0.1:{dealer_port}", "--id", "id", "--no-progress",
              "--wait", "60", "--timeout", "120"]
    p0 = _pet(*common, "--party", "0", "--listen", f"127.0.0.1:{port}", *_tls(pki, "party0", "party1"), *extra0)
    p1 = _pet(*common, "--party", "1", "--connect", f"127.0.0.1:{port}", *_tls(pki, "party1", "party0"), *extra1)
    outs = [p.communicate(timeout=300) for p in (p0, p1)]
    assert p0.returncode == 0 and p1.returncode == 0, outs
    return outs


def test_fit_and_predict_two_processes_over_mutual_tls(tmp_path):
    from pet.transport.tls import make_test_pki

    pki = tmp_path / "pki"
    make_test_pki(pki)
    dealer_port = _free_port()
    dealer = _pet("dealer", "--listen", f"127.0.0.1:{dealer_port}", "--sessions", "2", "--wait", "120",
                  "--tls-dir", str(pki))
    try:
        key = tmp_path / "key.hex"
        key.write_text(os.urandom(32).hex())
        key.chmod(0o600)
        client, server = f"{FIXTURES}/breast_hetero_mini_client.csv", f"{FIXTURES}/breast_hetero_mini_server.parquet"
        m0, m1 = tmp_path / "client.model", tmp_path / "server.model"
        hp = ["--n-estimators", "3", "--max-depth", "3"]
        _pair("fit", ["--input", client, "--label", "y", "--model", str(m0), "--key-file", str(key), *hp],
              ["--input", server, "--model", str(m1), *hp], dealer_port, pki)
        assert m0.read_bytes().startswith(b"PETXGB-AESGCM2") and m1.read_bytes().startswith(b"{")
        pred = tmp_path / "pred.csv"
        outs = _pair("predict", ["--input", client, "--model", str(m0), "--key-file", str(key),
                                 "--output", str(pred)],
                     ["--input", server, "--model", str(m1), "--output", str(tmp_path / "none.csv")], dealer_port,
                     pki)
        assert "label party" in outs[1][0]
        assert not (tmp_path / "none.csv").exists()  # the non-label party writes no predictions
        got = pd.read_csv(pred).merge(pd.read_csv(client)[["id", "y"]], on="id")
        assert len(got) == 569
        assert np.mean(got["prediction"] == got["y"]) > 0.85
        assert dealer.wait(timeout=60) == 0
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pet-tmp-")]
    finally:
        if dealer.poll() is None:
            dealer.kill()
            dealer.wait()
