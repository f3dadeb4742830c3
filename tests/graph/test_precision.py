"""Leiden's fixed-point bound at its boundary (issue 21 item 5; docs/graph.md "Ranges").

setup.py step 4: ``bb = max(bits_0, bits_1) + 1`` with ``bits_p = ceil(log2(1 + A_p))``,
``A_p = 2 * sum|internal weights| + sum|own cross shares|``; the fractional bits are
``f = min(16, floor((61 - gbits - 2 bb) / 2))`` with ``gbits = ceil(log2(2^10 + 2
gamma_num))``; ``f < 0`` is refused with PrecisionError. At resolution 1, ``gbits = 12``:
accepted iff ``A_p <= 2^23 - 1`` at both parties.
"""

import math

import igraph as ig
import pytest

from pet.errors import PrecisionError
from pet.graph import leiden

from .conftest import run_both, union_membership

ZACHARY = ig.Graph.Famous("Zachary")
LIMIT = 2 ** 23 - 1  # largest A_p accepted at resolution 1


def _abs_total(nodes, edges) -> float:
    """A_p computed independently of pet: internal edges count twice, cross shares once."""
    own = set(nodes)
    internal = edges["source"].isin(own) & edges["target"].isin(own)
    w = edges["weight"].abs()
    return 2.0 * float(w[internal].sum()) + float(w[~internal].sum())


def _scaled(karate, c):
    return [(n, e.assign(weight=e["weight"] * c)) for n, e in karate]


def _run(inputs):
    return run_both(lambda s: leiden(s, *inputs[0], seed=1), lambda s: leiden(s, *inputs[1], seed=1))


def test_bound_formula_matches_python_integers():
    # the documented threshold is the exact boundary of setup.py's rule, in Python ints
    def f_of(total):
        bb = math.ceil(math.log2(1 + total)) + 1
        gbits = math.ceil(math.log2((1 << 10) + 2 * 1024))
        return min(16, (61 - gbits - 2 * bb) // 2)
    assert f_of(LIMIT) == 0 and f_of(LIMIT + 1) < 0
    # with f = 0 the largest gain term 2^10 * 2m * w + gamma_num * k * K fits the signed ring:
    # 2m <= 2^bb, every w, k, K <= 2m, gamma_num = 2^10
    bb = 24
    worst = (1 << 10) * (1 << bb) * (1 << bb) * 2 + 1024 * (1 << bb) * (3 << bb)
    assert worst < 2 ** 63


def test_just_inside_bound_matches_unscaled_partition(karate):
    totals = [_abs_total(n, e) for n, e in karate]
    c = int(LIMIT // max(totals))  # integer scale: every scaled weight is a multiple of c/2
    c -= c % 2                     # even, so the 0.5 shares become integers (exact at f = 0)
    inputs = _scaled(karate, c)
    big = max(_abs_total(n, e) for n, e in inputs)
    assert LIMIT / 2 < big <= LIMIT  # near the boundary, inside it
    r0, r1 = _run(inputs)
    assert not isinstance(r0, Exception) and not isinstance(r1, Exception), (r0, r1)
    memb = union_membership(r0, r1, range(34))
    u0, u1 = _run(karate)
    ref = union_membership(u0, u1, range(34))
    # gains are exact integers scaled by c^2: the same decisions as with unit-scale weights
    assert memb.tolist() == ref.tolist()
    assert ZACHARY.modularity(memb) >= 0.41


def test_just_outside_bound_refused_at_both_parties(karate):
    totals = [_abs_total(n, e) for n, e in karate]
    c = (LIMIT + 1) / max(totals)  # the larger party's A_p is exactly 2^23
    inputs = _scaled(karate, c)
    assert max(_abs_total(n, e) for n, e in inputs) == pytest.approx(LIMIT + 1)
    r0, r1 = _run(inputs)
    for r in (r0, r1):
        assert isinstance(r, PrecisionError), r
        assert "total edge weight" in str(r)
