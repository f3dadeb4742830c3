"""Arity choice of pet.mpc.tournament: every arity picks the same positions as numpy
(ties, segments of length 1..5), the cost model's rounds are the session's, the chosen
arity cuts the counted rounds on a slow link, and tournament_specs is exactly what a
tournament requests (prepared material is used up)."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.mpc.tournament import choose_arity, tournament, tournament_cost, tournament_specs
from pet.transport import Link

from .conftest import DataRNG, both

WAN = Link(rtt=0.02, bandwidth=100e6)


def _segments_1_to_5(seed, count):
    rng = DataRNG(seed)
    return (1 + np.floor(rng.random(count) * 5)).astype(np.int64)


def _with_ties(seed, n, rows=1):
    """Small integers: many ties inside every segment."""
    return np.floor(DataRNG(seed).random((rows, n)) * 4).astype(np.int64) - 2


def _first_extreme(x, lens, largest=True):
    out, start = [], 0
    for n in lens:
        seg = x[..., start:start + n]
        out.append(np.argmax(seg, axis=-1) if largest else np.argmin(seg, axis=-1))
        start += n
    return np.stack(out, -1)


@pytest.mark.parametrize("largest", [True, False])
def test_every_arity_gives_numpy_positions_with_ties(largest):
    lens = np.concatenate([np.arange(1, 6), _segments_1_to_5(3, 60)])
    x = _with_ties(4, int(lens.sum()), rows=2)

    def prog(s):
        xs = s.share(x if s.party == 0 else None, 0)
        out = []
        for arity in (2, 3, 4):
            r0 = s.rounds
            idx = tournament(xs, outputs="index", arity=arity, segments=lens, largest=largest).index
            out.append((s.reveal(idx), s.rounds - r0 - 1))  # minus the reveal
        return out

    got = both(prog)
    want = _first_extreme(x, lens, largest)
    for arity, (idx, rounds) in zip((2, 3, 4), got):
        np.testing.assert_array_equal(idx, want)
        assert rounds == tournament_cost(lens, arity, outputs="index", batch=2).rounds


def test_cost_model_rounds_are_the_counted_rounds_in_every_mode():
    lens = np.array([1, 2, 3, 4, 5, 9, 17, 40])
    x = _with_ties(5, int(lens.sum()))
    modes = [("index",), ("value",), ("one_hot",), ("value", "index"), ("value", "index", "one_hot")]

    def prog(s):
        xs = s.share(x if s.party == 0 else None, 0)
        counted = []
        for arity in (2, 3, 4):
            for outs in modes:
                r0 = s.rounds
                tournament(xs, outputs=outs, arity=arity, segments=lens)
                counted.append(s.rounds - r0)
        return counted

    counted = both(prog)
    model = [tournament_cost(lens, a, outputs=o).rounds for a in (2, 3, 4) for o in modes]
    assert counted == model


def test_no_link_or_no_latency_keeps_the_binary_tournament():
    lens = [16] * 100
    assert choose_arity(lens, None) == 2
    assert choose_arity(lens, Link(rtt=0.0, bandwidth=1e8)) == 2


def test_wan_choice_cuts_counted_rounds_and_keeps_positions():
    """Leiden-like batch (many short segments) on 20 ms / 100 Mbit/s: the model picks a
    wider group, and the session counts fewer rounds than the binary tournament."""
    lens = np.concatenate([np.full(40, 16), _segments_1_to_5(6, 40)])
    x = _with_ties(7, int(lens.sum()))
    arity = choose_arity(lens, WAN)
    assert arity in (3, 4)

    def prog(s):
        xs = s.share(x if s.party == 0 else None, 0)
        out = []
        for a in (2, arity):
            r0, m0 = s.rounds, s.channel.stats.messages_sent
            idx = mpc.argmax(xs, segments=lens, arity=a)
            out.append((s.rounds - r0, s.channel.stats.messages_sent - m0, s.reveal(idx)))
        return out

    (r2, m2, i2), (ra, ma, ia) = both(prog)
    np.testing.assert_array_equal(i2, ia)
    np.testing.assert_array_equal(ia, _first_extreme(x, lens))
    assert ra < r2 and ma < m2
    assert ra <= 0.7 * r2  # 36 -> 22 rounds for segments of 16


def test_bandwidth_bound_sql_extremes_stay_binary():
    """pet.sql's MIN/MAX at 10^5 and 10^6 rows per side (50,000 / 500,000 joined rows,
    10 groups) over 100 Mbit/s: more comparison bytes would cost more than the rounds
    they save (measured at 10^5: 5.6 s binary, 8.5 s arity 4)."""
    for n in (50_000, 500_000):
        assert choose_arity([n], WAN, outputs="value", batch=10) == 2


@pytest.mark.parametrize("correlations", ["dealer", "ot"])
def test_tournament_specs_are_exactly_what_a_tournament_requests(correlations):
    """Prepared material is used in full (nothing left queued), for every mode and arity,
    so a caller can request a whole tournament in one round trip to the dealer."""
    lens = np.array([1, 2, 3, 5, 8])
    x = _with_ties(8, int(lens.sum()), rows=2)
    modes = [("index",), ("value",), ("one_hot",), ("value", "index", "one_hot")]

    def prog(s):
        xs = s.share(x if s.party == 0 else None, 0)
        left, idx = [], []
        for arity in (2, 3, 4):
            for outs in modes:
                s.prepare(tournament_specs(lens, arity, outputs=outs, batch=2, correlations=correlations))
                t = tournament(xs, outputs=outs, arity=arity, segments=lens)
                left.append(len(s.source._ready))
                if t.index is not None:
                    idx.append(s.reveal(t.index))
        return left, idx

    left, idx = both(prog, correlations=correlations)
    assert left == [0] * len(left)
    for got in idx:
        np.testing.assert_array_equal(got, _first_extreme(x, lens))


def test_choose_arity_refuses_unknown_arities():
    from pet.errors import InputError

    with pytest.raises(InputError, match="arities"):
        choose_arity([8], WAN, arities=(2, 8))
