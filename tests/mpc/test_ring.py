"""Encoding in Z_2^64 and the PRG (pure functions, no parties)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pet.errors import InputError, PetTypeError, PrecisionError
from pet.mpc import ring
from pet.mpc.prg import PRG

SAFE = 2.0 ** (62 - 16)


@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=6),
                  elements=st.floats(-SAFE * 0.99, SAFE * 0.99, allow_nan=False)))
def test_float_round_trip_within_half_ulp(x):
    back = ring.decode(ring.encode(x, 16), 16)
    assert back.shape == x.shape
    assert np.all(np.abs(back - x) <= 2.0 ** -17 + np.abs(x) * 2.0 ** -52)


@given(hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=8),
                  elements=st.integers(-(2 ** 62) + 1, 2 ** 62 - 1)))
def test_integer_mode_is_exact(x):
    enc = ring.encode(x, 0)
    assert enc.dtype == np.uint64
    np.testing.assert_array_equal(ring.decode(enc, 0), x)


@given(st.integers(-(2 ** 40), 2 ** 40), st.integers(-(2 ** 40), 2 ** 40))
def test_ring_addition_wraps_like_integers(a, b):
    ea, eb = ring.encode(np.array([a]), 0), ring.encode(np.array([b]), 0)
    assert int(ring.decode(ea + eb, 0)[0]) == a + b
    assert int(ring.decode(ea - eb, 0)[0]) == a - b


@pytest.mark.parametrize("bad", [np.array([2.0 ** 46]), np.array([-2.0 ** 47]), np.array([np.nan]),
                                 np.array([np.inf])])
def test_out_of_range_raises_precision_error(bad):
    with pytest.raises(PrecisionError):
        ring.encode(bad, 16)


def test_out_of_range_integers_raise():
    with pytest.raises(PrecisionError):
        ring.encode(np.array([2 ** 62]), 0)
    with pytest.raises(PrecisionError):
        ring.encode(np.array([2 ** 50]), 16)
    with pytest.raises(PrecisionError):
        ring.encode(np.array([2 ** 63], dtype=np.uint64), 0)


def test_bad_arguments():
    with pytest.raises(InputError):
        ring.check_frac_bits(ring.MAX_FRAC_BITS + 1)
    with pytest.raises(PetTypeError):
        ring.check_frac_bits(1.5)
    with pytest.raises(PetTypeError):
        ring.encode(np.array(["a"]), 16)


def test_prg_is_a_deterministic_stream_per_seed():
    seed = bytes(range(16))
    a, b = PRG(seed), PRG(seed)
    x = a.words((3, 5))
    np.testing.assert_array_equal(x, b.words(15).reshape(3, 5))
    np.testing.assert_array_equal(a.words(7), b.words(7))
    assert x.flags.writeable
    # independent streams for different (random) seeds
    assert not np.array_equal(PRG().words(8), PRG().words(8))


def test_prg_matches_aes_ctr_keystream():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    seed = bytes(16)
    ks = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor().update(bytes(80))
    np.testing.assert_array_equal(PRG(seed).words(10), np.frombuffer(ks, "<u8"))


def test_prg_output_looks_uniform():
    words = PRG().words(200_000)
    data = words.view(np.uint8)
    counts = np.bincount(data, minlength=256)
    expected = data.size / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 400  # 255 dof: p ~ 1e-7 tail
    bits = np.unpackbits(words.view(np.uint8)).mean()
    assert abs(bits - 0.5) < 0.002


def test_prg_rejects_bad_seeds():
    with pytest.raises(InputError):
        PRG(b"short")
    with pytest.raises(PetTypeError):
        PRG("0" * 16)
