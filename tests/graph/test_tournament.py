"""The graph's segmented secure argmax (pet.mpc.argmax with segments=) against numpy."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pet.mpc import Shared, argmax, run_local


def _secure(values, lengths):
    values = np.asarray(values, dtype=np.int64)

    def prog(s):
        x = s.share(values if s.party == 0 else None, owner=0)
        return s.reveal(argmax(Shared(s, x.share, 0), segments=np.asarray(lengths)))

    return run_local(prog, timeout=120)[0]


def _oracle(values, lengths):
    out, start = [], 0
    for n in lengths:
        out.append(int(np.argmax(values[start:start + n])))  # first maximum, as numpy
        start += n
    return out


@settings(max_examples=15, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 5), min_size=1, max_size=9), min_size=1, max_size=12))
def test_matches_numpy_with_ties(segments):
    values = [v for seg in segments for v in seg]
    lengths = [len(seg) for seg in segments]
    assert _secure(values, lengths).tolist() == _oracle(np.array(values), lengths)


def test_large_magnitudes_and_long_segments():
    rng = np.random.default_rng(0)  # not-secret: test data
    lengths = [1, 2, 3, 64, 100, 7]
    values = rng.integers(-(1 << 60), 1 << 60, sum(lengths))
    assert _secure(values, lengths).tolist() == _oracle(values, lengths)
