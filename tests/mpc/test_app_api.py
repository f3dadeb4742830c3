"""The operations applications use instead of building Shared values from ring words:
Shared.from_shares / known_to / scaled, mpc.diag, Session.reveal_split / share_split."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import InputError, PetTypeError, ProtocolError
from pet.mpc import Shared
from tests.mpc.conftest import both


def test_from_shares_sums_the_parties_integer_summands():
    a = np.array([5, -7, 2 ** 40, 0])
    b = np.array([-9, 3, 1, 0])

    def prog(s):
        x = Shared.from_shares(s, a if s.party == 0 else b, 0)
        return s.reveal(x), s.rounds

    out, rounds = both(prog)
    np.testing.assert_array_equal(out, a + b)
    assert rounds == 1  # only the reveal


def test_from_shares_keeps_stored_uint64_words():
    def prog(s):
        x = s.share(np.array([1.25, -3.5]) if s.party == 0 else None, owner=0)
        y = Shared.from_shares(s, x.share.copy(), x.frac)
        return s.reveal(y)

    np.testing.assert_array_equal(both(prog), [1.25, -3.5])


def test_known_to_is_free_and_opens_to_the_value():
    v = np.array([[1.5, -2.25], [0.0, 8.0]])

    def prog(s):
        x = Shared.known_to(s, v if s.party == 1 else None, 1, frac_bits=16, shape=v.shape)
        before = s.rounds
        peer_share_is_zero = s.party == 1 or not np.any(x.share)
        return s.reveal(x * x), before, peer_share_is_zero

    out, before, zero = both(prog)
    assert before == 0 and zero
    np.testing.assert_allclose(out, v * v, atol=1e-3)


def test_known_to_checks_its_arguments():
    def prog(s):
        with pytest.raises(InputError, match="shape="):
            Shared.known_to(s, None, 1 - s.party, frac_bits=0)
        with pytest.raises(InputError, match="pass None"):
            Shared.known_to(s, np.ones(2), 1 - s.party, frac_bits=0, shape=(2,))
        with pytest.raises(InputError, match="owner must be 0 or 1"):
            Shared.known_to(s, None, 2, frac_bits=0, shape=(2,))
        return True

    assert both(prog)


def test_scaled_multiplies_by_public_integer_and_shifts_frac():
    x = np.array([3.0, -1.5, 100.25])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0, frac_bits=16)
        r0 = s.rounds
        b = a.scaled(-5, shift=4)  # x * -5 / 16 with 20 fractional bits, local
        c = a.scaled(np.array([1, 2, 3]), shift=30).rescale(16)  # intermediate of 46 fractional bits
        d = a.scaled(shift=2)  # reinterpretation: x / 4
        return s.reveal(b), s.reveal(c), s.reveal(d), b.frac, s.rounds - r0

    b, c, d, frac, rounds = both(prog)
    assert frac == 20
    np.testing.assert_array_equal(b, x * -5 / 16)
    np.testing.assert_allclose(c, x * np.array([1, 2, 3]) / 2 ** 30, atol=2 ** -16)
    np.testing.assert_array_equal(d, x / 4)
    assert rounds == 4  # one truncation (c) and three reveals


def test_scaled_refuses_non_integers_and_too_many_bits():
    def prog(s):
        a = mpc.constant(s, np.ones(2), 16)
        with pytest.raises(PetTypeError):
            a.scaled(0.5)
        with pytest.raises(InputError, match="shift"):
            a.scaled(shift=48)
        return True

    assert both(prog)


def test_diag_is_numpy_diag():
    v = np.array([1, -2, 3])

    def prog(s):
        x = s.share(v if s.party == 0 else None, owner=0)
        return s.reveal(mpc.diag(x))

    np.testing.assert_array_equal(both(prog), np.diag(v))


def test_reveal_split_opens_each_slice_to_its_owner_only():
    v = np.arange(12).reshape(6, 2) - 5
    to = np.array([0, 1, -1, 1, 0, -1])

    def prog(s):
        x = s.share(v if s.party == 0 else None, owner=0)
        sent0 = s.channel.stats.bytes_sent
        got = s.reveal_split(x, to)
        return got, s.channel.stats.bytes_sent - sent0

    r0, r1 = mpc.run_local(prog, timeout=300)
    np.testing.assert_array_equal(r0[0], v[[0, 2, 4, 5]])
    np.testing.assert_array_equal(r1[0], v[[1, 2, 3, 5]])
    # each party sends only the shares of the 4 rows the peer receives (+ framing)
    assert 4 * 2 * 8 <= r0[1] < 4 * 2 * 8 + 100


def test_reveal_split_along_axis_1_and_fixed_point():
    v = np.array([[0.5, 1.5, -2.0], [3.25, 0.0, 1.0]])

    def prog(s):
        x = s.share(v if s.party == 1 else None, owner=1)
        return s.reveal_split(x, np.array([1, 1, 0]), axis=1)

    r0, r1 = mpc.run_local(prog, timeout=300)
    np.testing.assert_array_equal(r0, v[:, [2]])
    np.testing.assert_array_equal(r1, v[:, [0, 1]])


def test_reveal_split_disagreement_is_a_protocol_error():
    def prog(s):
        x = mpc.constant(s, np.zeros(3, dtype=np.int64))
        return s.reveal_split(x, np.array([0, 1, 1]) if s.party == 0 else np.array([0, 0, 1]))

    with pytest.raises(ProtocolError):
        mpc.run_local(prog, timeout=60)


def test_reveal_split_validates_to():
    def prog(s):
        x = mpc.constant(s, np.zeros(3, dtype=np.int64))
        with pytest.raises(InputError):
            s.reveal_split(x, np.array([0, 1]))
        with pytest.raises(InputError):
            s.reveal_split(x, np.array([0, 2, 1]))
        return True

    assert both(prog)


def test_share_split_shares_each_party_s_own_columns():
    full = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    owners = np.array([1, 0, 0, 1])

    def prog(s):
        mine = full[:, owners == s.party]
        x = s.share_split(mine, owners, axis=1)
        return s.reveal(x), s.rounds

    out, rounds = both(prog)
    np.testing.assert_array_equal(out, full)
    assert rounds == 2  # one share_split, one reveal


def test_share_split_with_one_party_owning_everything():
    full = np.array([0.5, -1.25, 2.0])

    def prog(s):
        owners = np.zeros(3, dtype=np.int64)
        mine = full if s.party == 0 else np.zeros(0)
        return s.reveal(s.share_split(mine, owners, frac_bits=16))

    np.testing.assert_array_equal(both(prog), full)


def test_share_split_rejects_a_wrong_slice_count():
    def prog(s):
        with pytest.raises(InputError, match="owns"):
            s.share_split(np.zeros(3, dtype=np.int64), np.array([0, 1, 0, 1]))
        return True

    assert both(prog)
