"""Session, sharing, revealing, shapes and linear operations against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pet.mpc as mpc
from pet.errors import InputError, PetTypeError, ProtocolError
from pet.transport import run_parties

from .conftest import both

FLOATS = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
ULP = 2.0 ** -16


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=5), elements=FLOATS),
       st.sampled_from([0, 1]))
def test_share_reveal_round_trip(x, owner):
    def prog(s):
        a = s.share(x if s.party == owner else None, owner=owner)
        assert a.shape == x.shape
        return s.reveal(a)

    out = both(prog)
    np.testing.assert_allclose(out, x, atol=ULP / 2 + 1e-12, rtol=0)


@settings(max_examples=20, deadline=None)
@given(hnp.arrays(np.int64, st.integers(1, 20), elements=st.integers(-(2 ** 45), 2 ** 45)))
def test_integers_stay_integers(x):
    def prog(s):
        a = s.share(x if s.party == 1 else None, owner=1)
        return s.reveal(a * 3 + 7), s.reveal(a), a.frac

    y, back, frac = both(prog)
    assert frac == 0 and back.dtype == np.int64
    np.testing.assert_array_equal(back, x)
    np.testing.assert_array_equal(y, x * 3 + 7)


def test_reveal_to_one_party_gives_the_other_none_and_nothing_on_the_wire():
    x = np.array([1.25, -7.5])

    def prog(s, to):
        a = s.share(x if s.party == 0 else None, owner=0)
        before = s.channel.stats.snapshot()
        out = s.reveal(a, to=to)
        diff = s.channel.stats - before
        return out, diff.bytes_received

    for to in (0, 1):
        (o0, rx0), (o1, rx1) = mpc.run_local(prog, to)
        got, none = (o0, o1) if to == 0 else (o1, o0)
        nothing = rx1 if to == 0 else rx0
        np.testing.assert_array_equal(got, x)
        assert none is None
        assert nothing < 100  # the non-receiving party got only an empty acknowledgement (16 bytes of data sent)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_linear_ops_and_shapes_match_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=2, max_side=5))
    x = data.draw(hnp.arrays(np.float64, shape, elements=FLOATS))
    y = data.draw(hnp.arrays(np.float64, shape, elements=FLOATS))
    c = data.draw(hnp.arrays(np.float64, shape[1:], elements=FLOATS))
    k = data.draw(st.integers(-1000, 1000))

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        R = s.reveal
        return [R(a + b), R(a - b), R(-a), R(a + c), R(c - b), R(a * k), R(a.sum(axis=0)), R(a.sum(axis=1)),
                R(a.sum()), R(a.T), R(a[1:, ::-1]), R(a.reshape(-1)), R(mpc.concatenate([a, b], axis=1)),
                R(mpc.stack([a, b])), R(a[0])]

    out = both(prog)
    ref = [x + y, x - y, -x, x + c, c - y, x * k, x.sum(0), x.sum(1), x.sum(), x.T, x[1:, ::-1], x.reshape(-1),
           np.concatenate([x, y], 1), np.stack([x, y]), x[0]]
    n = x.size
    for got, want in zip(out, ref):
        assert got.shape == np.shape(want)
        # each input is rounded to 2^-17; sums accumulate that
        np.testing.assert_allclose(got, want, atol=(abs(k) + n + 2) * ULP, rtol=0)


def test_broadcasting_of_shared_operands():
    x = np.arange(6.0).reshape(2, 3)
    y = np.array([0.5, -1.0, 2.0])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        return s.reveal(a + b), s.reveal(a * b), s.reveal(b - a)

    add, mul, sub = both(prog)
    np.testing.assert_allclose(add, x + y)
    np.testing.assert_allclose(mul, x * y, atol=2 * ULP)
    np.testing.assert_allclose(sub, y - x)


def test_operation_mismatch_is_a_protocol_error():
    def p0(chans):
        s = mpc.Session(0, chans[1], dealer=chans[2])
        a = s.share(np.ones(3), owner=0)
        return s.reveal(a * a)

    def p1(chans):
        s = mpc.Session(1, chans[0], dealer=chans[2])
        a = s.share(None, owner=0)
        return s.reveal(a + a)  # party 0 multiplies: mismatch

    def dealer(chans):
        from pet.mpc import dealer as d
        return d.serve(chans[0], chans[1])

    with pytest.raises(ProtocolError):
        run_parties(p0, p1, dealer, timeout=60)


def test_shape_mismatch_is_a_protocol_error():
    def prog(s):
        a = s.share(np.ones((2, 3)) if s.party == 0 else None, owner=0)
        b = a.reshape(6) if s.party == 0 else a.reshape(3, 2)
        return s.reveal(b * b)

    with pytest.raises(ProtocolError):
        mpc.run_local(prog, timeout=60)


def test_session_parameter_checks():
    def prog(ch, party, frac):
        return mpc.Session(party, ch, frac_bits=frac)

    with pytest.raises(ProtocolError, match="frac_bits"):
        run_parties(lambda ch: prog(ch, 0, 16), lambda ch: prog(ch, 1, 20), timeout=30)
    with pytest.raises(ProtocolError, match="party"):
        run_parties(lambda ch: prog(ch, 0, 16), lambda ch: prog(ch, 0, 16), timeout=30)
    with pytest.raises(InputError):
        mpc.Session(2, object())


def test_argument_errors():
    def prog(s):
        errors = []
        for call in (lambda: s.share(None, owner=s.party), lambda: s.share(np.ones(2), owner=1 - s.party),
                     lambda: s.share(np.ones(2), owner=3), lambda: s.reveal(np.ones(2))):
            try:
                call()
            except (InputError, PetTypeError) as exc:
                errors.append(type(exc).__name__)
        return errors

    assert both(prog) == ["InputError", "InputError", "InputError", "PetTypeError"]


def test_out_of_range_input_raises_precision_error_at_the_owner():
    from pet.errors import PrecisionError

    def prog(s):
        return s.share(np.array([1e15]) if s.party == 0 else None, owner=0)

    with pytest.raises(PrecisionError):
        mpc.run_local(prog, timeout=30)


def test_nonlinear_needs_a_dealer():
    def prog(ch, party):
        s = mpc.Session(party, ch)
        a = s.share(np.ones(2) if party == 0 else None, owner=0)
        b = a + 1  # linear: fine without a dealer
        s.reveal(b)
        return a * a

    with pytest.raises(InputError, match="dealer"):
        run_parties(lambda ch: prog(ch, 0), lambda ch: prog(ch, 1), timeout=30)


def test_disagreement_about_owner_or_receiver_is_a_protocol_error_not_a_hang():
    def both_own(s):
        return s.share(np.ones(2), owner=s.party)

    def nobody_owns(s):
        return s.share(None, owner=1 - s.party)

    def both_receive(s):
        a = s.share(np.ones(2) if s.party == 0 else None, owner=0)
        return s.reveal(a, to=s.party)

    def both_send(s):
        a = s.share(np.ones(2) if s.party == 0 else None, owner=0)
        return s.reveal(a, to=1 - s.party)

    for prog in (both_own, nobody_owns, both_receive, both_send):
        with pytest.raises(ProtocolError):
            mpc.run_local(prog, timeout=30)


@settings(max_examples=15, deadline=None)
@given(hnp.arrays(np.int64, st.integers(1, 30), elements=st.integers(-(2 ** 30), 2 ** 30)),
       hnp.arrays(np.int64, 30, elements=st.integers(-(2 ** 30), 2 ** 30)))
def test_integer_mode_session(x, y):
    y = y[: x.size]

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        return [s.reveal(a * b), s.reveal(a < b), s.reveal(mpc.maximum(a, b)), s.reveal(a @ b), s.reveal(a - 3 * b)]

    out = both(prog, frac_bits=0)
    want = [x * y, (x < y).astype(np.int64), np.maximum(x, y), np.array(x @ y), x - 3 * y]
    for got, w in zip(out, want):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, w)


def test_numpy_arrays_on_the_left_defer_to_shared():
    x = np.array([1.0, 2.0, 3.0])
    c = np.array([2.0, 2.0, 2.0])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        return [s.reveal(v) for v in (c + a, c - a, c * a, c < a, c @ a, c == a, 1.5 - a)]

    out = both(prog)
    want = [c + x, c - x, c * x, (c < x).astype(int), c @ x, (c == x).astype(int), 1.5 - x]
    for got, w in zip(out, want):
        np.testing.assert_allclose(got, w, atol=1e-4)
