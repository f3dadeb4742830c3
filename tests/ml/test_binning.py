"""Binning and the owner-side histogram kernels against numpy oracles (Hypothesis)."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pet.ml.binning import Binner, goes_left
from pet.ml.model_io import load_state, save_state
from pet.ml.secure_hist import BinCodes

_values = st.one_of(st.just(np.nan), st.integers(-5, 5).map(float), st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(X=arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 4)), elements=_values),
       max_bin=st.integers(2, 8), t=st.integers(1, 3), seed=st.integers(0, 2 ** 32 - 1))
def test_bin_sums_equal_indicator_products(X, max_bin, t, seed):
    b = Binner(max_bin).fit(X)
    C = b.indicator(X)
    # every candidate splits the training rows into two non-empty sides or isolates missing values
    codes = BinCodes(b, X)
    assert np.array_equal(codes.dense(), C.T.astype(np.uint64))
    Y = np.random.default_rng(seed).integers(0, 2 ** 63, size=(X.shape[0], t), dtype=np.uint64)  # not-secret
    expected = np.zeros((C.shape[1], t), dtype=np.uint64)
    for j in range(C.shape[1]):
        expected[j] = Y[C[:, j] == 1].sum(axis=0, dtype=np.uint64)
    assert np.array_equal(codes.left_sums(Y), expected)
    for f in range(X.shape[1]):
        finite = np.unique(X[:, f][~np.isnan(X[:, f])])
        assert (b.feature == f).sum() <= 2 * max_bin + 1
        if finite.size <= max_bin:
            np.testing.assert_array_equal(np.unique(b.cut[(b.feature == f) & np.isfinite(b.cut)]), finite[1:])


def test_goes_left_semantics():
    X = np.array([[1.0], [2.0], [np.nan]])
    np.testing.assert_array_equal(goes_left(X, [0, 0], [2.0, 2.0], [True, False]),
                                  [[True, True], [False, False], [True, False]])


@settings(max_examples=25, deadline=None)
@given(arr=arrays(np.uint64, st.tuples(st.integers(0, 5), st.integers(0, 5))),
       cut=arrays(np.float64, st.integers(0, 6), elements=st.floats(allow_nan=True, allow_infinity=True)),
       encrypt=st.booleans())
def test_model_file_round_trip(tmp_path_factory, arr, cut, encrypt):
    path = tmp_path_factory.mktemp("m") / "x.model"
    key = os.urandom(32) if encrypt else None
    state = {"a": arr, "cut": cut, "flag": np.array([True, False]), "n": 3, "s": "x", "l": [1.5, "y"],
             "model_id": "m1", "party": 1}
    save_state(path, "classifier", state, key=key)
    kind, back = load_state(path, key=key)
    assert kind == "classifier" and back["n"] == 3 and back["s"] == "x" and back["l"] == [1.5, "y"]
    assert np.array_equal(back["a"], arr) and back["a"].dtype == np.uint64
    np.testing.assert_array_equal(back["cut"], cut)
    assert back["flag"].dtype == bool
