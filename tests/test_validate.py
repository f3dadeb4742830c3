"""pet._validate: one exception type per mistake, everywhere."""

import numpy as np
import pytest

from pet._validate import check_int, check_party, check_real, check_receiver
from pet.errors import InputError, PetTypeError


@pytest.mark.parametrize("bad", [2, -1, True, False, "0", 0.0, None])
def test_check_party_refuses_everything_but_0_and_1(bad):
    with pytest.raises(InputError, match="owner must be 0 or 1"):
        check_party(bad, "owner")


def test_check_party_accepts_numpy_ints():
    assert check_party(np.int64(1)) == 1 and check_party(0) == 0


def test_check_receiver():
    assert check_receiver(None) is None and check_receiver(1) == 1
    with pytest.raises(InputError, match="reveal_to must be None"):
        check_receiver("both")


def test_check_int_type_and_range():
    assert check_int(np.int32(3), "n", lo=1, hi=5) == 3
    with pytest.raises(PetTypeError):
        check_int(2.0, "n")
    with pytest.raises(PetTypeError):
        check_int(True, "n")
    with pytest.raises(InputError, match=r"n must be in \[1, 5\], got 6"):
        check_int(6, "n", lo=1, hi=5)
    with pytest.raises(InputError, match="n must be >= 1"):
        check_int(0, "n", lo=1)


def test_check_real():
    assert check_real(np.float32(0.5), "r", lo=0) == 0.5
    with pytest.raises(InputError):
        check_real(float("nan"), "r")
    with pytest.raises(InputError, match="r must be > 0"):
        check_real(0, "r", lo=0, open_lo=True)
    with pytest.raises(PetTypeError):
        check_real("1", "r")
