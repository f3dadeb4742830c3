"""pet.ml (vertical XGBoost) between exactly two parties with no dealer: the private-matrix
products (reuse_setup / reuse_mul) and matrix triples come from OT. Small data: the
OT-based matrix products are O(m k n) until the HE matrix-products issue lands."""

import numpy as np
from sklearn.datasets import load_diabetes

import pet.mpc as mpc
from pet.ml import VerticalXGBRegressor

PARAMS = dict(n_estimators=2, max_depth=2, learning_rate=0.5, max_bin=4)


def _fit(correlations):
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:80], y[:80]
    parts = [X[:, :2], X[:, 2:4]]

    def prog(session):
        p = session.party
        est = VerticalXGBRegressor(session, **PARAMS).fit(parts[p], y if p == 0 else None)
        return est.predict(parts[p]), est.model_["owner"], type(session.source).__name__

    return mpc.run_local(prog, correlations=correlations, timeout=900), y


def test_dealer_free_fit_learns_and_matches_the_dealer_fit():
    (r0, r1), y = _fit("ot")
    assert r0[2] == r1[2] == "OTSource"
    assert r1[0] is None
    assert np.sqrt(np.mean((r0[0] - y) ** 2)) < np.std(y)
    (d0, _), _ = _fit("dealer")
    np.testing.assert_array_equal(r0[1], d0[1])  # same split owners
    np.testing.assert_allclose(r0[0], d0[0], rtol=1e-3, atol=0.5)
