"""The canonical item encoding: injective, type-tagged, documented equalities."""

import unicodedata

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pet.errors import InputError, PetTypeError
from pet.psi.encoding import encode_columns, encode_items, find_duplicates

scalars = st.one_of(st.text(max_size=8), st.binary(max_size=8), st.integers(-(2**80), 2**80))
items = st.one_of(scalars, st.tuples(scalars, scalars))


@given(st.lists(items, max_size=30))
def test_injective_same_as_python_equality(values):
    _, enc = encode_items(values)
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            assert (enc[i] == enc[j]) == (a == b)


def test_documented_equalities():
    _, enc = encode_items([123, "123", np.int64(123), b"123", "0123"])
    assert enc[0] == enc[2]
    assert len({enc[0], enc[1], enc[3], enc[4]}) == 4
    nfc, nfd = unicodedata.normalize("NFC", "é"), unicodedata.normalize("NFD", "é")
    _, (a, b) = encode_items([nfc, nfd])
    assert a != b


def test_columns_equal_tuples():
    cols = [[1, 2, 3], ["a", "b", "c"]]
    assert encode_columns(cols, ["x", "y"]) == encode_items([(1, "a"), (2, "b"), (3, "c")])[1]
    assert encode_columns([[1, 2]], ["x"]) == encode_items([1, 2])[1]


def test_duplicates():
    first, dups = find_duplicates([b"a", b"b", b"a", b"a"])
    assert first == [0, 1] and dups == 2


@pytest.mark.parametrize("bad,exc,row", [([None], InputError, 0), (["a", float("nan")], InputError, 1),
                                         ([1, 2.0, None], InputError, 2), ([1, 2.5], PetTypeError, 1),
                                         ([np.bool_(True)], PetTypeError, 0)])
def test_rejections_name_the_row(bad, exc, row):
    with pytest.raises(exc, match=f"row {row}"):
        encode_items(bad, "items")
