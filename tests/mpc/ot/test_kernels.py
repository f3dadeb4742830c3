"""The bit-matrix transpose kernels against numpy's unpackbits/packbits."""

import numpy as np
import pytest

from pet.mpc.ot import _kernels
from pet.mpc.ot.requests import random_words


def _bits_rows(rows):
    """(R, W) uint64 rows -> (R, 64 W) 0/1 matrix (bit k of row = column k)."""
    return np.unpackbits(rows.view(np.uint8), axis=1, bitorder="little")


@pytest.mark.parametrize("W", [1, 2, 31, 32, 33, 100])
def test_rows_to_ots_is_the_bit_matrix_transpose(W):
    rows = random_words(128 * W).reshape(128, W)
    out = np.empty((64 * W, 2), dtype=np.uint64)
    _kernels.transpose_rows_to_ots(rows, out)
    expected = np.ascontiguousarray(np.packbits(_bits_rows(rows).T, axis=1, bitorder="little")).view(np.uint64)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("W,nrows", [(1, 128), (33, 128), (5, 1), (40, 3), (7, 64), (9, 65)])
def test_ots_to_rows_inverts_it(W, nrows):
    ots = random_words(128 * W).reshape(64 * W, 2)
    rows = np.empty((nrows, W), dtype=np.uint64)
    _kernels.transpose_ots_to_rows(ots, rows, nrows)
    bits = np.unpackbits(ots.view(np.uint8), axis=1, bitorder="little")  # (64W, 128)
    expected = np.ascontiguousarray(np.packbits(bits.T[:nrows], axis=1, bitorder="little")).view(np.uint64)
    np.testing.assert_array_equal(rows, expected)


def test_transpose_of_a_single_one_bit():
    rows = np.zeros((128, 2), dtype=np.uint64)
    rows[70, 1] = np.uint64(1) << np.uint64(5)  # row 70, column 64 + 5
    out = np.empty((128, 2), dtype=np.uint64)
    _kernels.transpose_rows_to_ots(rows, out)
    assert np.count_nonzero(out) == 1 and out[69, 1] == np.uint64(1) << np.uint64(6)
