"""One receiver spelling: ``reveal_to=`` (None: both, 0 or 1) everywhere; the fixed
spellings ``ecdh_psi(reveal=)`` and ``Session.reveal(to=)`` keep working silently;
``align(reveal=)`` / ``align_file(reveal=)`` warn."""

import warnings

import numpy as np
import pandas as pd
import pytest

import pet.mpc as mpc
from pet.errors import InputError
from pet.psi import align, ecdh_psi
from pet.transport import run_parties


def _psi(**kw):
    return run_parties(lambda ch: ecdh_psi(ch, ["a", "b", "c"], party=0, **kw),
                       lambda ch: ecdh_psi(ch, ["b", "c", "d"], party=1, **kw), timeout=120)


@pytest.mark.parametrize("kw, learns", [({"reveal_to": None}, (True, True)), ({"reveal_to": 1}, (False, True)),
                                        ({"reveal": "both"}, (True, True)), ({"reveal": 0}, (True, False)),
                                        ({}, (True, True))])
def test_ecdh_psi_reveal_to_and_the_fixed_reveal_spelling(kw, learns):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fixed spelling does not warn
        r0, r1 = _psi(**kw)
    assert ((r0.items is not None), (r1.items is not None)) == learns
    for r in (r0, r1):
        assert r.items is None or r.items == ["b", "c"]


def test_both_spellings_at_once_is_an_input_error():
    with pytest.raises(InputError, match="not both"):
        _psi(reveal=0, reveal_to=0)


def test_reveal_to_refuses_the_string_both():
    with pytest.raises(InputError, match="reveal_to must be None"):
        _psi(reveal_to="both")


def test_align_reveal_is_deprecated_but_works():
    d0 = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5]})
    d1 = pd.DataFrame({"id": [3, 1, 7], "y": [7, 8, 9]})
    with pytest.warns(DeprecationWarning, match="reveal_to"):
        r0, r1 = run_parties(lambda ch: align(ch, d0, "id", party=0, reveal=1),
                             lambda ch: align(ch, d1, "id", party=1, reveal=1), timeout=120)
    assert r0 is None and sorted(r1["id"]) == [1, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r0, r1 = run_parties(lambda ch: align(ch, d0, "id", party=0, reveal_to=1),
                             lambda ch: align(ch, d1, "id", party=1, reveal_to=1), timeout=120)
    assert r0 is None and sorted(r1["id"]) == [1, 3]


def test_session_reveal_accepts_reveal_to():
    def prog(s):
        x = s.share(np.array([4, 5]) if s.party == 0 else None, owner=0)
        return s.reveal(x, reveal_to=1), s.reveal(x, to=0), s.reveal(x)

    r0, r1 = mpc.run_local(prog, timeout=120)
    assert r0[0] is None and list(r1[0]) == [4, 5]
    assert list(r0[1]) == [4, 5] and r1[1] is None
    assert list(r0[2]) == list(r1[2]) == [4, 5]
