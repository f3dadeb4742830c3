"""The PETML fixtures aligned by PSI, model files, routing of outputs, what a party sees,
and input errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from scipy.stats import binomtest
from sklearn.datasets import load_breast_cancer, load_diabetes

import pet.mpc as mpc
from pet.data import reference_path
from pet.errors import InputError, PartyFailed, PetError
from pet.ml import VerticalXGBClassifier, VerticalXGBRegressor
from pet.psi import align
from pet.transport import run_parties
from tests.ml._util import vertical_fit_predict

FIXTURES = reference_path("PETML")
SMALL = dict(n_estimators=3, max_depth=3, learning_rate=0.3, max_bin=16)


def test_petml_breast_fixture_aligned_by_psi():
    client = pd.read_csv(f"{FIXTURES}/breast_hetero_mini_client.csv")  # id, y, x0..x2 (label party)
    server = pd.read_parquet(f"{FIXTURES}/breast_hetero_mini_server.parquet")  # id, x3..x5
    server = server.sample(frac=1.0, random_state=0)  # different row order: PSI must align

    a0, a1 = run_parties(lambda ch: align(ch, client, "id", party=0),
                         lambda ch: align(ch, server, "id", party=1), timeout=300)
    assert len(a0) == len(a1) == 569 and (a0["id"].to_numpy() == a1["id"].to_numpy()).all()
    params = dict(n_estimators=10, max_depth=3, learning_rate=0.3, base_score=0.5)
    parts = [a0[["x0", "x1", "x2"]], a1[["x3", "x4", "x5"]]]
    y = a0["y"].to_numpy()
    proba, other, ests = vertical_fit_predict(VerticalXGBClassifier, params, parts, y, parts)
    assert other is None
    acc = np.mean((proba > 0.5) == y)
    joined = pd.concat([parts[0], parts[1]], axis=1).to_numpy()
    ref = xgb.XGBClassifier(**params, max_bin=32, tree_method="hist", n_jobs=1).fit(joined, y)
    ref_acc = np.mean(ref.predict(joined) == y)
    assert abs(acc - ref_acc) <= 0.02, (acc, ref_acc)
    assert list(ests[1].feature_names_in_) == ["x3", "x4", "x5"]


def _fit_small(tmp_path, key=None):
    X, y = load_diabetes(return_X_y=True)
    X0, X1 = X[:, :5], X[:, 5:]

    def prog(session):
        p = session.party
        est = VerticalXGBRegressor(session, **SMALL).fit([X0, X1][p], y if p == 0 else None)
        before = est.predict([X0, X1][p])
        path = tmp_path / f"party{p}.model"
        est.save(path, key=key)
        again = VerticalXGBRegressor.load(path, session, key=key)
        after = again.predict([X0, X1][p])
        return before, after, est

    return mpc.run_local(prog), (X0, X1, y)


def test_save_load_round_trip_and_file_contents(tmp_path):
    (r0, r1), (X0, X1, y) = _fit_small(tmp_path)
    before, after, est0 = r0
    assert before is not None and np.array_equal(before, after)
    assert r1[0] is None and r1[1] is None  # the non-label party receives no predictions
    assert np.sqrt(np.mean((before - y) ** 2)) < np.std(y)  # it learned something
    est1 = r1[2]
    # each file holds only its own thresholds: none of the other party's cut values
    for me, other in ((0, est1), (1, est0)):
        text = (tmp_path / f"party{me}.model").read_text()
        doc = json.loads(text)
        assert "base_margin" in json.dumps(doc) if me == 0 else "base_margin" not in json.dumps(doc)
        cuts = other.model_["cut"][other.model_["owner"] == other.model_["party"]]
        assert cuts.size > 0
        for c in cuts:
            assert repr(float(c)) not in text and np.float64(c).tobytes() not in text.encode()
        mine = VerticalXGBRegressor.load(tmp_path / f"party{me}.model").model_
        assert np.isnan(mine["cut"][mine["owner"] != me]).all()
        assert (mine["feature"][mine["owner"] != me] == -1).all()


def test_encrypted_model_files(tmp_path):
    key = os.urandom(32)
    (r0, r1), _ = _fit_small(tmp_path, key=key)
    assert np.array_equal(r0[0], r0[1])
    raw = (tmp_path / "party0.model").read_bytes()
    assert b"base_margin" not in raw and b"pet.ml" not in raw
    with pytest.raises(InputError, match="encrypted"):
        VerticalXGBRegressor.load(tmp_path / "party0.model")
    with pytest.raises(InputError, match="wrong key"):
        VerticalXGBRegressor.load(tmp_path / "party0.model", key=os.urandom(32))
    tampered = bytearray(raw)
    tampered[-1] ^= 1
    (tmp_path / "bad.model").write_bytes(bytes(tampered))
    with pytest.raises(InputError, match="wrong key or the file was modified"):
        VerticalXGBRegressor.load(tmp_path / "bad.model", key=key)
    with pytest.raises(InputError, match="regressor model, not a classifier"):
        VerticalXGBClassifier.load(tmp_path / "party1.model", key=key)


def test_shares_in_the_model_look_uniform():
    """A party's leaf-weight and split-flag shares are uniform words (no plaintext)."""
    X, y = load_breast_cancer(return_X_y=True)

    def prog(session):
        p = session.party
        est = VerticalXGBClassifier(session, **SMALL).fit(X[:, :15] if p == 0 else X[:, 15:],
                                                            y if p == 0 else None)
        return est.model_

    m0, m1 = mpc.run_local(prog)
    for m in (m0, m1):
        words = np.concatenate([m["leaf_share"].ravel(), m["split_share"].ravel()])
        top_bits = (words >> np.uint64(60)).astype(int)  # uniform: 16 values equally likely
        assert len(np.unique(top_bits)) >= 12
        # a fair coin per word: a false alarm once in 10^6 runs, while plaintext (all top bits
        # 0, or all 1 for negatives) has p-values far below that
        high = int(np.sum(words >= np.uint64(1 << 63)))
        assert binomtest(high, len(words), 0.5).pvalue > 1e-6
    flags = mpc.ring.decode(m0["split_share"] + m1["split_share"], 0)
    assert set(np.unique(flags)) <= {0, 1}


def test_parameter_mismatch_and_label_checks():
    X, y = load_diabetes(return_X_y=True)

    def differ(session):
        depth = 2 if session.party == 0 else 3
        VerticalXGBRegressor(session, n_estimators=1, max_depth=depth).fit(X[:, :5], y)

    with pytest.raises((InputError, PartyFailed), match="different parameters"):
        mpc.run_local(differ, timeout=60)

    def both_label(session):
        VerticalXGBRegressor(session, n_estimators=1, max_depth=2).fit(X[:, :5], y)

    with pytest.raises((InputError, PartyFailed), match="exactly one party"):
        mpc.run_local(both_label, timeout=60)

    def rows_differ(session):
        n = 100 if session.party == 0 else 90
        VerticalXGBRegressor(session, n_estimators=1, max_depth=2).fit(X[:n, :5], y[:n] if session.party == 0 else None)

    with pytest.raises((InputError, PartyFailed), match="align"):
        mpc.run_local(rows_differ, timeout=60)


@pytest.mark.parametrize("bad", [dict(n_estimators=0), dict(max_depth=0), dict(learning_rate=0.0),
                                 dict(reg_lambda=-1.0), dict(max_bin=1), dict(base_score=1.5),
                                 dict(callback=3)])
def test_bad_parameters_rejected_at_fit(bad):
    est = VerticalXGBClassifier(object(), **bad)
    est.session = type("S", (), {"party": 0})()
    with pytest.raises(PetError):
        est.fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]))


def test_sklearn_conventions():
    est = VerticalXGBRegressor(None, max_depth=3)
    assert est.get_params()["max_depth"] == 3 and est.get_params()["max_bin"] == 32
    assert est.set_params(max_depth=4) is est and est.max_depth == 4
    with pytest.raises(InputError, match="not fitted"):
        est.predict(np.zeros((2, 2)))


def test_progress_callback_and_classes():
    X, y = load_breast_cancer(return_X_y=True)
    labels = np.where(y == 1, "benign", "malignant")
    seen = []

    def prog(session):
        p = session.party
        est = VerticalXGBClassifier(session, n_estimators=2, max_depth=2,
                                    callback=(lambda d, t: seen.append((p, d, t))))
        est.fit(X[:, :15] if p == 0 else X[:, 15:], labels if p == 0 else None)
        return est.predict(X[:, :15] if p == 0 else X[:, 15:])

    pred, none = mpc.run_local(prog)
    assert none is None and set(pred) <= {"benign", "malignant"}
    assert np.mean(pred == labels) > 0.9
    assert sorted(seen) == [(0, 1, 2), (0, 2, 2), (1, 1, 2), (1, 2, 2)]


def test_a_failing_party_fails_the_other_promptly():
    X, y = load_diabetes(return_X_y=True)

    def prog(session):
        Xp = X[:, :5].copy()
        if session.party == 1:
            Xp[3, 2] = np.inf  # bad input at party 1 only: party 0 is waiting in the handshake
        VerticalXGBRegressor(session, n_estimators=1, max_depth=2).fit(Xp, y if session.party == 0 else None)

    with pytest.raises((InputError, PartyFailed), match="infinite"):
        mpc.run_local(prog, timeout=60)


def test_party_without_split_candidates():
    """A party whose only column is constant has no candidates: every split is the peer's."""
    X, y = load_diabetes(return_X_y=True)

    def prog(session):
        Xp = X[:, :5] if session.party == 0 else np.ones((X.shape[0], 1))
        est = VerticalXGBRegressor(session, n_estimators=2, max_depth=2).fit(Xp, y if session.party == 0 else None)
        return est.predict(Xp), est.model_["owner"]

    (pred, owner0), (none, owner1) = mpc.run_local(prog)
    assert none is None and (owner0 == 0).all() and (owner1 == 0).all()
    assert np.sqrt(np.mean((pred - y) ** 2)) < np.std(y)
