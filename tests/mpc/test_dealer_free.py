"""Dealer-free sessions (correlations="ot"): every public operation against numpy, with
either source giving the same results; the API (no dealer thread, argument errors, the
hello check); prepare (offline phase); and the uniformity of each party's view."""

import threading

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import InputError, ProtocolError
from pet.mpc import arithmetic, boolean
from pet.mpc.ot.source import OTSource
from pet.transport import local_pair, run_parties
from tests.helpers import RecordingChannel as Recorder

from .conftest import DataRNG, both

SOURCES = ["dealer", "ot"]
rng = DataRNG(15)
X = rng.uniform(-40, 40, 50)
Y = rng.uniform(-40, 40, 50)
Y[:5] = X[:5]  # ties for <=, >=, ==
POS = rng.uniform(0.5, 30, 50)


def _run(prog, source, *args):
    return both(prog, *args, correlations=source)


def _shared(s, x, y):
    return s.share(x if s.party == 0 else None, owner=0), s.share(y if s.party == 1 else None, owner=1)


@pytest.mark.parametrize("source", SOURCES)
def test_arithmetic_and_comparisons(source):
    def prog(s, x, y):
        a, b = _shared(s, x, y)
        ai, bi = _shared(s, np.round(x).astype(np.int64), np.round(y).astype(np.int64))
        return [s.reveal(v) for v in (a * b, ai * bi, a < b, a <= b, a > b, a >= b, a == b, ai == bi,
                                      mpc.where(a < b, a, b * 2), mpc.maximum(a, b), mpc.relu(a),
                                      arithmetic.rescale(a * 3.0, 16))]

    got = _run(prog, source, X, Y)
    xi, yi = np.round(X), np.round(Y)
    np.testing.assert_allclose(got[0], X * Y, atol=1e-3)
    np.testing.assert_array_equal(got[1], xi * yi)
    for g, w in zip(got[2:8], (X < Y, X <= Y, X > Y, X >= Y, X == Y, xi == yi)):
        np.testing.assert_array_equal(g, w.astype(np.int64))
    np.testing.assert_allclose(got[8], np.where(X < Y, X, Y * 2), atol=1e-4)
    np.testing.assert_allclose(got[9], np.maximum(X, Y), atol=1e-4)
    np.testing.assert_allclose(got[10], np.maximum(X, 0), atol=1e-4)
    np.testing.assert_allclose(got[11], X * 3, atol=1e-3)


@pytest.mark.parametrize("source", SOURCES)
def test_matmul_and_tournaments(source):
    A, B = X[:12].reshape(3, 4), Y[:20].reshape(4, 5)

    def prog(s, a, b):
        sa, sb = _shared(s, a, b)
        v = s.share(X[:24].reshape(4, 6) if s.party == 0 else None, owner=0)
        return [s.reveal(sa @ sb), s.reveal(mpc.argmax(v, axis=1)), s.reveal(mpc.max(v, axis=1)),
                s.reveal(mpc.argmin(v, axis=0)), s.reveal(mpc.min(v, axis=1))]

    got = _run(prog, source, A, B)
    V = X[:24].reshape(4, 6)
    np.testing.assert_allclose(got[0], A @ B, atol=1e-2)
    np.testing.assert_array_equal(got[1], np.argmax(V, axis=1))
    np.testing.assert_allclose(got[2], V.max(axis=1), atol=1e-4)
    np.testing.assert_array_equal(got[3], np.argmin(V, axis=0))
    np.testing.assert_allclose(got[4], V.min(axis=1), atol=1e-4)


@pytest.mark.parametrize("source", SOURCES)
def test_nonlinear_functions(source):
    def prog(s, x, y):
        a, p = _shared(s, x, y)
        return [s.reveal(mpc.reciprocal(p)), s.reveal(mpc.divide(a, p)), s.reveal(mpc.sqrt(p)),
                s.reveal(mpc.exp(a / 10)), s.reveal(mpc.sigmoid(a / 4))]

    got = _run(prog, source, X, POS)
    np.testing.assert_allclose(got[0], 1 / POS, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got[1], X / POS, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(got[2], np.sqrt(POS), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(got[3], np.exp(X / 10), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(got[4], 1 / (1 + np.exp(-X / 4)), atol=1e-3)


def test_private_matrix_products_dealer_free():
    M = rng.uniform(-2, 2, (5, 7))
    V = rng.uniform(-2, 2, (7, 3))

    def prog(s):
        pm = s.private_matrix(M if s.party == 1 else None, owner=1)
        v = s.share(V if s.party == 0 else None, owner=0)
        return [s.reveal(pm @ v), s.reveal(pm @ (v * 2))]

    got = both(prog, correlations="ot")
    np.testing.assert_allclose(got[0], M @ V, atol=1e-3)
    np.testing.assert_allclose(got[1], M @ (2 * V), atol=1e-3)


def test_both_sources_agree_exactly_on_integer_programs():
    def prog(s, x, y):
        a, b = _shared(s, x, y)
        return [s.reveal(a * b + 3), s.reveal(a < b), s.reveal(mpc.argmax(a))]

    xi, yi = np.arange(-20, 20), np.arange(20, -20, -1)
    r_dealer = both(prog, xi, yi, correlations="dealer")
    r_ot = both(prog, xi, yi, correlations="ot")
    for g, w in zip(r_ot, r_dealer):
        np.testing.assert_array_equal(g, w)


def test_run_local_ot_runs_two_threads_only(monkeypatch):
    from pet.mpc import dealer

    def no_dealer(*a, **k):
        raise AssertionError("a dealer was started")

    monkeypatch.setattr(dealer, "serve", no_dealer)
    seen = []

    def prog(s):
        seen.append(threading.current_thread().name)
        a = s.share(np.arange(3) if s.party == 0 else None, owner=0)
        return s.reveal(a * a), type(s.source).__name__

    r0, r1 = mpc.run_local(prog, correlations="ot", timeout=60)
    assert r0[1] == r1[1] == "OTSource"
    np.testing.assert_array_equal(r0[0], [0, 1, 4])
    assert len(seen) == 2


def test_session_argument_errors():
    a, _ = local_pair(timeout=2)
    with pytest.raises(InputError, match="not both"):
        mpc.Session(0, a, dealer=a, correlations="ot")
    with pytest.raises(InputError, match="correlations must be"):
        mpc.Session(0, a, correlations="ferret")
    with pytest.raises(InputError, match="correlations must be"):
        mpc.run_local(lambda s: None, correlations="none")


@pytest.mark.parametrize("other", ["dealer", None])
def test_the_parties_must_agree_on_the_source(other):
    def p0(ch):
        return mpc.Session(0, ch, correlations="ot")

    def p1(chans):
        return mpc.Session(1, chans[0], dealer=chans[1] if other else None)

    def dealer_free(ch):
        try:
            return p0(ch)
        except ProtocolError as exc:
            return exc

    def other_party(ch):
        a, b = local_pair(timeout=5)
        try:
            return p1((ch, a if other else None))
        except ProtocolError as exc:
            return exc

    r0, r1 = run_parties(dealer_free, other_party, timeout=30)
    for r in (r0, r1):
        assert isinstance(r, ProtocolError) and "different sources" in str(r)


def test_prepare_moves_the_correlations_offline():
    n = 300

    def prog(s, x, y, source):
        s.prepare([arithmetic.mul_specs(n, 16), boolean.msb_specs(n, source)])
        sent, rounds = s.channel.stats.bytes_sent, s.rounds
        a, b = _shared(s, x, y)
        c, d = a * b, a < b
        online = (s.channel.stats.bytes_sent - sent, s.rounds - rounds)
        return s.reveal(c), s.reveal(d), online

    x, y = rng.uniform(-5, 5, n), rng.uniform(-5, 5, n)
    online = {}
    for source in SOURCES:
        r0, r1 = mpc.run_local(prog, x, y, source, correlations=source, timeout=120)
        np.testing.assert_allclose(r0[0], x * y, atol=1e-3)
        np.testing.assert_array_equal(r0[1], (x < y).astype(np.int64))
        online[source] = (r0[2], r1[2])
    # the online phase of a prepared dealer-free run costs what the dealer path's does: one round
    # fewer (the comparison's 1-out-of-16 leaves need no cmpmask opening: 7 rounds, not 8) and
    # about as many bytes (the wrap-bit truncation saves 8 bytes per element, the leaf tables
    # cost about 10 bytes per compared element more than the dealer's opening and 6-level tree)
    for p in (0, 1):
        (b_ot, r_ot), (b_dealer, r_dealer) = online["ot"][p], online["dealer"][p]
        assert r_ot == r_dealer - 1
        assert b_ot <= b_dealer + 3 * n


def test_prepare_without_a_source_is_an_input_error():
    def prog(s):
        with pytest.raises(InputError, match="prepare"):
            s.prepare([arithmetic.mul_specs(4, 16)])

    run_parties(lambda ch: prog(mpc.Session(0, ch)), lambda ch: prog(mpc.Session(1, ch)), timeout=30)


def _view_of_party1(secret0):
    """Every byte party 1 receives (session and OT messages) in a dealer-free program."""
    y1 = np.linspace(-3, 3, secret0.size)
    rec = {}

    def p(party):
        def body(ch):
            if party == 1:
                ch = rec.setdefault("peer", Recorder(ch))
            with mpc.Session(party, ch, correlations="ot") as s:
                a = s.share(secret0 if party == 0 else None, owner=0)
                b = s.share(y1 if party == 1 else None, owner=1)
                for v in (a * b, a < b, a.reshape(8, -1) @ b.reshape(-1, 8)):
                    s.reveal(v, to=0)
        return body

    run_parties(p(0), p(1), timeout=300)
    return rec["peer"].received_bytes()


def _chi2_uniform(data):
    counts = np.bincount(data, minlength=256)
    expected = data.size / 256
    return float(((counts - expected) ** 2 / expected).sum())


def test_party1_view_is_uniform_and_independent_of_party0_input():
    n = 1024
    zeros = np.zeros(n)
    wild = np.concatenate([np.full(n // 2, 12345.678), -np.geomspace(1e-3, 1e4, n // 2)])
    va, vb = _view_of_party1(zeros), _view_of_party1(wild)
    assert va.size == vb.size > 1_000_000
    for v in (va, vb):
        assert _chi2_uniform(v) < 380
        for k in range(8):
            assert _chi2_uniform(v.reshape(-1, 8)[:, k]) < 380
    ca, cb = np.bincount(va, minlength=256).astype(float), np.bincount(vb, minlength=256).astype(float)
    assert float(((ca - cb) ** 2 / (ca + cb)).sum()) < 380


def test_a_peer_that_stops_during_a_dealer_free_op_is_an_error_not_a_hang():
    from pet.errors import TransportError

    ch0, ch1 = local_pair(timeout=3)

    def quitter():
        s = mpc.Session(1, ch1, correlations="ot")
        s.share(None, owner=0)
        ch1.close()

    t = threading.Thread(target=quitter)
    t.start()
    s = mpc.Session(0, ch0, correlations="ot")
    a = s.share(np.arange(10.0), owner=0)
    with pytest.raises(TransportError):
        a * a
    t.join(10)
    assert isinstance(s.source, OTSource)


@pytest.mark.parametrize("shift", [1, 2, 16, 31, 32, 61, 62])
def test_wrap_bit_truncation_is_floor_or_floor_plus_one(shift):
    from pet.mpc.truncation import trunc

    p = 2 ** min(shift, 61)
    edge = [-(2 ** 62) + 1, 2 ** 62 - 1, 0, -1, 1, 2 ** 16, -(2 ** 16), 2 ** 61, -(2 ** 61) - 1, p, -p, p - 1, -p + 1]
    x = np.concatenate([np.array(edge, dtype=np.int64),
                        DataRNG(shift).integers(-(2 ** 62) + 1, 2 ** 62, 4000)])

    def prog(s):
        a = s.share(x if s.party == 1 else None, owner=1)
        return [s.reveal(mpc.Shared(s, trunc(s, a.share, shift), 0)) for _ in range(3)]

    for got in both(prog, correlations="ot"):
        assert np.all(np.isin(got - (x >> shift), (0, 1)))


def test_wrap_bit_truncation_sends_one_bit_per_element():
    n = 6400

    def prog(s):
        a = s.share(np.arange(n) if s.party == 0 else None, owner=0)
        (mat,) = s.correlated([mpc.correlated.TruncPair((n,), 16)])
        before = s.channel.stats.bytes_sent
        from pet.mpc.truncation import trunc_with
        trunc_with(s, a.share, 16, mat)
        return s.channel.stats.bytes_sent - before

    sent = both(prog, correlations="ot")
    assert n // 8 <= sent < n // 8 + 200
