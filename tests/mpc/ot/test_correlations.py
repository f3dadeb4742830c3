"""Every dealer-free correlation holds exactly, with the dealer's field names and shapes."""

import numpy as np
import pytest

from pet.errors import InputError
from pet.mpc.correlated import draw
from pet.mpc.ot import correlations as corr
from pet.mpc.prg import PRG

from .conftest import ints, run_engines

SHAPES = [(1,), (127,), (128,), (3, 5), (10_000,)]


def _both(specs, chunk=1 << 18):
    return run_engines(lambda eng, p: corr.generate(eng, specs), chunk=chunk)


def _same_fields_as_the_dealer(spec, f0, f1):
    for party, fields in ((0, f0), (1, f1)):
        dealer = draw(spec, PRG(), party)
        for name in dealer:
            assert fields[name].shape == dealer[name].shape and fields[name].dtype == np.uint64, (spec, name)
    assert set(f0) == set(f1)


@pytest.mark.parametrize("shape", SHAPES)
def test_beaver_triples(shape):
    spec = ("triple", shape)
    (f0,), (f1,) = _both([spec])
    _same_fields_as_the_dealer(spec, f0, f1)
    a, b, c = (ints(f0[k] + f1[k]) for k in "abc")
    assert c == [(x * y) % (1 << 64) for x, y in zip(a, b)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("nb", [1, 2, 5])
def test_and_triple_families(shape, nb):
    spec = ("and", shape, nb)
    (f0,), (f1,) = _both([spec])
    _same_fields_as_the_dealer(spec, f0, f1)
    a = f0["a"] ^ f1["a"]
    b, c = f0["b"] ^ f1["b"], f0["c"] ^ f1["c"]
    np.testing.assert_array_equal(c, a[None] & b)
    # every field is a fresh random word, never constant
    assert len(set(ints(f0["a"]))) == f0["a"].size or f0["a"].size < 3


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bits", [(0,), (0, 1, 2, 63), tuple(range(64)), (7, 3)])
def test_b2a_bits(shape, bits):
    spec = ("b2a", shape, bits)
    (f0,), (f1,) = _both([spec])
    _same_fields_as_the_dealer(spec, f0, f1)
    rho = f0["rho"] ^ f1["rho"]
    ra = f0["ra"] + f1["ra"]
    for j, pos in enumerate(bits):
        np.testing.assert_array_equal(ra[..., j], (rho >> np.uint64(pos)) & np.uint64(1))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("shift", [1, 16, 20, 40, 63])
def test_trunc_pairs(shape, shift):
    spec = ("trunc", shape, shift)
    (f0,), (f1,) = _both([spec])
    _same_fields_as_the_dealer(spec, f0, f1)
    r = ints(f0["r"] + f1["r"])
    assert ints(f0["rs"] + f1["rs"]) == [v >> shift for v in r]
    assert ints(f0["rm"] + f1["rm"]) == [v >> 63 for v in r]


@pytest.mark.parametrize("shape", SHAPES)
def test_cmp_masks(shape):
    spec = ("cmpmask", shape)
    (f0,), (f1,) = _both([spec])
    _same_fields_as_the_dealer(spec, f0, f1)
    np.testing.assert_array_equal(f0["r"] + f1["r"], f0["rb"] ^ f1["rb"])


def test_the_masks_r_are_uniform_ring_elements():
    """r = sum_j 2^j rho_j is uniform: its top bit and low byte are balanced."""
    (f,), (g,) = _both([("cmpmask", (20_000,))])
    r = f["r"] + g["r"]
    assert 0.48 < float(np.mean(r >> np.uint64(63))) < 0.52
    counts = np.bincount((r & np.uint64(255)).astype(np.int64), minlength=256)
    expected = r.size / 256
    assert float(((counts - expected) ** 2 / expected).sum()) < 380


def test_the_msb_batch_of_the_online_protocol_in_one_extension():
    """msb_specs (cmpmask, and-families, b2a) in one generate call, across small chunks."""
    from pet.mpc.boolean import msb_specs

    specs = msb_specs(300)
    out0, out1 = _both(specs, chunk=1024)
    for spec, f0, f1 in zip(specs, out0, out1):
        _same_fields_as_the_dealer(spec, f0, f1)
    c = out0[0]
    np.testing.assert_array_equal(c["r"] + out1[0]["r"], c["rb"] ^ out1[0]["rb"])
    for k in range(1, 7):
        a = out0[k]["a"] ^ out1[k]["a"]
        np.testing.assert_array_equal(out0[k]["c"] ^ out1[k]["c"], a[None] & (out0[k]["b"] ^ out1[k]["b"]))


def test_unsupported_kinds_are_refused_by_name():
    with pytest.raises(InputError, match="matmul"):
        corr.plan(("matmul", 2, 2, 2), 0)
