"""pet.mpc.tournament (argmax / max for every caller): results against numpy, and the
rounds and bytes of every mode against the cost stated in the module docstring."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pet.mpc as mpc
from pet.errors import InputError
from tests.helpers import RecordingChannel

from .conftest import both

MSB64 = 2024  # bytes one party sends for an MSB of up to 64 elements (boolean.msb)
MUL = 16  # bytes one party sends per Beaver product element (d and e)


def _oracle(x, lens, largest):
    """(values, first-extreme indices, one-hot) per segment of the last axis."""
    vals, idx = [], []
    oh = np.zeros(x.shape, dtype=np.int64)
    start = 0
    for n in lens:
        seg = x[..., start:start + n]
        i = np.argmax(seg, axis=-1) if largest else np.argmin(seg, axis=-1)
        vals.append(np.take_along_axis(seg, i[..., None], -1)[..., 0])
        idx.append(i)
        np.put_along_axis(oh[..., start:start + n], i[..., None], 1, axis=-1)
        start += n
    return np.stack(vals, -1), np.stack(idx, -1), oh


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_every_mode_matches_numpy_with_ties(data):
    lens = data.draw(st.lists(st.integers(1, 11), min_size=1, max_size=5))
    rows = data.draw(st.integers(1, 3))
    arity = data.draw(st.sampled_from([2, 3, 4]))
    largest = data.draw(st.booleans())
    n = sum(lens)
    x = np.array(data.draw(st.lists(st.integers(-4, 4), min_size=rows * n, max_size=rows * n)),
                 dtype=np.float64).reshape(rows, n) / 4  # few distinct values: many ties
    want_v, want_i, want_oh = _oracle(x, lens, largest)

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        R = s.reveal
        t = mpc.tournament(a, outputs=("value", "index", "one_hot"), arity=arity, segments=lens, largest=largest)
        i_only = mpc.tournament(a, outputs="index", arity=arity, segments=lens, largest=largest).index
        v_only = mpc.tournament(a, outputs="value", arity=arity, segments=lens, largest=largest).value
        return [R(t.value), R(t.index), R(t.one_hot), R(i_only), R(v_only)]

    v, i, oh, i_only, v_only = both(prog)
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(v_only, want_v)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_array_equal(i_only, want_i)
    np.testing.assert_array_equal(oh, want_oh)


def test_axis_and_batch_layout_follow_numpy():
    x = np.arange(2 * 5 * 3, dtype=np.float64).reshape(2, 5, 3)
    x = np.where(x % 4 == 0, -x, x)

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        R = s.reveal
        return [R(mpc.max(a, axis=1)), R(mpc.argmax(a, axis=1)), R(mpc.argmax(a, axis=0, one_hot=True)),
                R(mpc.min(a, axis=0, arity=4)), R(mpc.argmin(a, axis=-1)),
                R(mpc.max(a, axis=1, segments=[2, 3]))]

    mx, am, oh0, mn0, ami, seg = both(prog)
    np.testing.assert_array_equal(mx, x.max(axis=1))
    np.testing.assert_array_equal(am, x.argmax(axis=1))
    np.testing.assert_array_equal(oh0, (np.arange(2)[:, None, None] == x.argmax(axis=0)[None]).astype(np.int64))
    np.testing.assert_array_equal(mn0, x.min(axis=0))
    np.testing.assert_array_equal(ami, x.argmin(axis=-1))
    np.testing.assert_array_equal(seg, np.stack([x[:, :2].max(axis=1), x[:, 2:].max(axis=1)], axis=1))


def test_large_magnitudes_and_long_segments():
    rng = np.random.default_rng(0)  # not-secret: test data
    lens = [1, 2, 3, 64, 100, 7]
    x = rng.integers(-(1 << 60), 1 << 60, sum(lens))

    def prog(s):
        a = mpc.Shared(s, s.share(x if s.party == 0 else None, owner=0).share, 0)
        return s.reveal(mpc.argmax(a, segments=lens)), s.reveal(mpc.max(a, segments=lens, arity=4))

    idx, top = both(prog)
    _, want_i, _ = _oracle(x[None], lens, True)
    np.testing.assert_array_equal(idx, want_i[0])
    np.testing.assert_array_equal(top, [x[s:s + n].max() for s, n in zip(np.cumsum([0] + lens[:-1]), lens)])


def test_bad_options_are_refused():
    def prog(s):
        a = s.share(np.zeros(4) if s.party == 0 else None, owner=0)
        errs = []
        for kw in [{"arity": 5}, {"segments": [2, 3]}, {"segments": [4, 0]}, {"outputs": "median"},
                   {"axis": 1}]:
            try:
                mpc.tournament(a, **kw)
            except InputError as exc:
                errs.append(str(exc).split(" ")[0])
        return errs

    assert both(prog) == ["arity", "segments", "segments", "outputs", "axis"]


# -- cost: rounds and bytes as the module docstring states them ---------------------------

def _levels(lens, arity):
    """Per level: the sizes of its groups (the docstring's grouping), until one survivor."""
    out = []
    lens = list(lens)
    while max(lens) > 1:
        sizes = []
        for n in lens:
            sizes += [arity] * (n // arity) + ([n % arity] if n % arity else [])
        out.append(sizes)
        lens = [-(-n // arity) for n in lens]
    return out


def _stated_cost(lens, arity, batch, outputs):
    """(rounds, bytes sent per party) from the docstring: per level 8 rounds and
    ``2024 * ceil(B P / 64)`` bytes for the P pairs, indicator rounds (1 for a largest
    group of 3, 2 for 4) with 3 / 4+4 products, 1 select round (1 product per group of 2,
    s per group of s >= 3, per selected quantity); ``one_hot`` adds a descent round per
    level below the top with the same product counts."""
    levels = _levels(lens, arity)
    index_carried = "index" in outputs and "one_hot" not in outputs
    rounds = nbytes = 0
    for k, sizes in enumerate(levels):
        last = k == len(levels) - 1
        pairs = sum(s * (s - 1) // 2 for s in sizes)
        rounds += 8
        nbytes += MSB64 * math.ceil(batch * pairs / 64)
        top = max(sizes)
        if top >= 3:
            rounds += top - 2
            nbytes += MUL * batch * sum({3: 3, 4: 8}.get(s, 0) for s in sizes)
        per_group = sum(1 if s == 2 else s for s in sizes if s > 1)
        quantities = int(not last or "value" in outputs) + int(index_carried and k > 0)
        if quantities or (index_carried and k == 0):
            rounds += 1
        nbytes += MUL * batch * per_group * quantities
        if "one_hot" in outputs and not last:
            rounds += 1
            nbytes += MUL * batch * per_group
    return rounds, nbytes


MODES = [
    # (lens, arity, batch, outputs, the docstring's figure for the simple cases)
    ([8], 2, 1, ("value",), (27, 3 * MSB64 + MUL * (4 + 2 + 1))),
    ([8], 2, 1, ("index",), (27, 3 * MSB64 + MUL * (4 + 2 * 2 + 1))),
    ([8], 2, 1, ("one_hot",), (28, 3 * MSB64 + MUL * (4 + 2) + MUL * (2 + 4))),
    ([8], 2, 1, ("value", "index", "one_hot"), (29, 3 * MSB64 + MUL * (4 + 2 + 1) + MUL * (2 + 4))),
    ([16], 4, 1, ("value", "one_hot"), (23, 2 * MSB64 + MUL * (4 * 8 + 4 * 4 + 8 + 4) + MUL * 16)),
    ([16], 4, 1, ("index",), (22, 2 * MSB64 + MUL * (4 * 8 + 4 * 4 + 8 + 4))),
    ([620], 4, 3, ("one_hot", "value"), None),  # the booster's shape
    ([3, 1, 9, 4, 2], 2, 1, ("index",), None),  # the graph's segments
    ([37], 2, 5, ("value",), None),  # SQL: columns x groups as the batch
    ([5, 7], 3, 2, ("index",), None),
    ([1, 1], 2, 2, ("value", "index", "one_hot"), (0, 0)),
]


@pytest.mark.parametrize("lens,arity,batch,outputs,figure", MODES)
def test_rounds_and_bytes_are_as_documented(lens, arity, batch, outputs, figure):
    stated = _stated_cost(lens, arity, batch, outputs)
    if figure is not None:
        assert stated == figure  # the docstring's worked figures agree with its formula
    x = np.arange(batch * sum(lens), dtype=np.float64).reshape(batch, -1) % 7

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        s.channel = rec = RecordingChannel(s.channel)
        before, rounds = rec.stats.snapshot(), s.rounds
        mpc.tournament(a, outputs=outputs, arity=arity, segments=lens)
        diff = rec.stats - before
        return s.rounds - rounds, rec.payload_sent, diff.bytes_sent, diff.messages_sent

    for rounds, payload, sent, messages in mpc.run_local(prog, timeout=300):
        assert (rounds, payload) == stated
        assert messages == rounds
        assert payload <= sent <= payload + 100 * messages  # framing: tag and array headers


def test_max_of_8_values_in_27_rounds():
    def prog(s):
        a = s.share(np.array([3.0, 1, 4, 1, 5, 9, 2, 6]) if s.party == 0 else None, owner=0)
        r = s.rounds
        m = mpc.max(a)
        return s.rounds - r, s.reveal(m)

    rounds, top = both(prog)
    assert rounds == 27 and top == 9.0
