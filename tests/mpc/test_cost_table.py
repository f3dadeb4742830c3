"""The cost table of docs/mpc.md ("Protocols, rounds and bytes"), executed.

The table is parsed from the document, not copied here, so a doc change that disagrees
with the code fails. Every row is run with ``mpc.run_local`` on a few sizes and checked:

* **rounds**: ``session.rounds`` of the operation, exactly.
* **bytes/elem/party**: what each party sends to the other, per element. Measured two ways:
  the ndarray payload (:class:`tests.helpers.RecordingChannel`) must match the stated
  figure, and the channel statistics (``bytes_sent``, frame headers included) may exceed
  the payload by at most ``HEADER`` bytes per message (the frame header, the operation
  label with its shape, the codec's array header: about 60 bytes today).
* **dealer words/elem**: 8-byte words the dealer sends to the receiving party (party 1;
  party 0 receives nothing after the handshake), per element, from the dealer channel's
  statistics, allowing ``HEADER`` bytes per message and per correction array; the
  measured figure lies in ``[(received - overhead) / 8n, received / 8n]``.

Tolerances for the cells: a plain number is "rounded to the digits shown" (``31.6``
accepts ``31.55..31.65``, ``671`` accepts ``670.5..671.5``); ``~x`` accepts 3 % either way;
an empty cell states nothing and is not checked. Cells that are formulas or prose
(``@``, ``max``/``argmax``/one-hot, ``tournament(arity=4)``) are pinned by their exact text
below together with what the test computes from them; if such a cell changes, this test
fails and asks for the new reading.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import pet.mpc as mpc
from tests.helpers import RecordingChannel

DOC = Path(__file__).resolve().parents[2] / "docs" / "mpc.md"
HEADER = 128  # bytes of framing allowed per message (and per dealer correction array)
MSB64 = 2024  # a comparison tree of up to 64 elements (the table's `2024 ceil(P/64)`)
MUL = 16  # a Beaver product: d and e, 8 bytes each


def _table() -> dict:
    """{operation cell: (rounds, bytes, dealer)} of the cost table in docs/mpc.md."""
    lines = DOC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("| operation | rounds | bytes/elem/party | dealer words/elem |"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.split("|")[1:5]]  # the "how" column may contain "|"
        rows[cells[0]] = tuple(cells[1:])
    return rows


# -- reading a cell -----------------------------------------------------------------------


def _number(cell: str):
    """(value, tolerance) of a numeric cell ("8", "8 (owner)", "31.6", "~63"), or None for
    an empty cell."""
    if cell == "":
        return None
    m = re.fullmatch(r"(~?)(\d+(?:\.(\d+))?)(?: \(.*\))?", cell)
    assert m, f"not a number: {cell!r}"
    value = float(m.group(2))
    if m.group(1):
        return value, 0.03 * value
    return value, 0.5 * 10.0 ** -len(m.group(3) or "")


def _split(cell: str, parts: int) -> list:
    """"1 / 9 / 9" -> ["1", "9", "9"]."""
    out = [c.strip() for c in cell.split("/")] if cell else [""] * parts
    assert len(out) == parts, cell
    return out


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Cost:
    rounds: int
    payload: int  # ndarray bytes this party sent
    sent: int  # channel bytes this party sent
    messages: int
    dealer: int  # bytes this party received from the dealer
    dealer_messages: int


def _measure(setup, op, frac_bits=16) -> list:
    """[Cost of party 0, Cost of party 1] of ``op(session, *setup(session))``."""

    def prog(s):
        args = setup(s)
        s.channel = rec = RecordingChannel(s.channel)
        dch = s.source.channel
        before, dbefore, rounds = rec.stats.snapshot(), dch.stats.snapshot(), s.rounds
        op(s, *args)
        diff, ddiff = rec.stats - before, dch.stats - dbefore
        return Cost(s.rounds - rounds, rec.payload_sent, diff.bytes_sent, diff.messages_sent,
                    ddiff.bytes_received, ddiff.messages_received)

    return mpc.run_local(prog, frac_bits=frac_bits, timeout=600)


def _check_framing(cost: Cost):
    assert 0 <= cost.sent - cost.payload <= HEADER * cost.messages, cost


def _check_bytes(cost: Cost, stated, n: int, what: str):
    """``stated`` = (value, tolerance) per element, or an exact total (int)."""
    _check_framing(cost)
    if isinstance(stated, int):
        assert cost.payload == stated, f"{what}: {cost.payload} bytes, the table says {stated}"
        return
    value, tol = stated
    got = cost.payload / n
    assert abs(got - value) <= tol, f"{what}: {got:.3f} bytes/elem, the table says {value} (+-{tol})"


def _check_dealer(costs: list, stated, n: int, what: str, arrays: int = 3):
    """Party 0 gets nothing from the dealer; party 1 about ``stated`` words per element."""
    if stated is None:
        return
    assert costs[0].dealer == 0, f"{what}: party 0 received {costs[0].dealer} bytes from the dealer"
    c = costs[1]
    if isinstance(stated, int):  # an exact total in words
        lo, hi = stated * 8, stated * 8 + HEADER * c.dealer_messages * arrays
        assert lo <= c.dealer <= hi, f"{what}: {c.dealer} dealer bytes, the table says {stated} words"
        return
    value, tol = stated
    overhead = HEADER * c.dealer_messages * arrays
    lo, hi = (c.dealer - overhead) / (8 * n), c.dealer / (8 * n)
    assert lo - tol <= value <= hi + tol, \
        f"{what}: {lo:.3f}..{hi:.3f} dealer words/elem, the table says {value} (+-{tol})"


# -- the rows -----------------------------------------------------------------------------

SIZES = [64, 1024, 4096]  # multiples of 64: the comparison tree packs 64 elements per word


def _x(n):
    return np.linspace(-3.0, 3.0, n)


def _y(n):
    return np.linspace(5.0, -1.0, n)


def _pair(n, frac=True):
    def setup(s):
        x, y = (_x(n), _y(n)) if frac else (np.arange(n) - n // 2, np.arange(n) % 7)
        return (s.share(x if s.party == 0 else None, owner=0), s.share(y if s.party == 1 else None, owner=1))
    return setup


def _one(n, values=None):
    def setup(s):
        v = _x(n) if values is None else values(n)
        return (s.share(v if s.party == 0 else None, owner=0),)
    return setup


def _local_ops(s, a, b):
    a + b, a - b, a * 3, a.sum(), a.reshape(-1, 1), -a, a + 2.5


@dataclass
class Row:
    """How to run one table row: ``ops`` maps a label to (setup(n), op, frac_bits); the
    same cell applies to each. ``split`` = the cells list one figure per op ("1 / 9 / 9")."""
    ops: dict
    split: bool = False
    owner_only: bool = False  # "8 (owner)": the other party sends no payload
    sizes: list = field(default_factory=lambda: SIZES)


SIMPLE = {
    "`share`": Row({"share": (lambda n: (lambda s: (_x(n),)),
                              lambda s, x: s.share(x if s.party == 0 else None, owner=0), 16)}, owner_only=True),
    "`reveal`": Row({"reveal": (_one, lambda s, a: s.reveal(a), 16)}),
    "add, sub, public int mul, sum, reshape...": Row({"local": (_pair, _local_ops, 16)}),
    "integer `*`": Row({"int mul": (lambda n: _pair(n, frac=False), lambda s, a, b: a * b, 0)}),
    "fixed-point `*`": Row({"fixed mul": (_pair, lambda s, a, b: a * b, 16)}),
    "truncation": Row({"rescale(0)": (_one, lambda s, a: a.rescale(0), 16),
                       "rescale(8)": (_one, lambda s, a: a.rescale(8), 16)}),
    "`<`, `>`, sign": Row({"<": (_pair, lambda s, a, b: a < b, 16), ">": (_pair, lambda s, a, b: a > b, 16),
                          "sign": (_one, lambda s, a: mpc.sign_bit(a), 16)}),
    "sign on `bits <= 32` (lane `L` = 8/16/32)": Row({
        f"sign bits={b}": (_one, lambda s, a, b=b: mpc.sign_bit(a, bits=b), 0) for b in (8, 16, 32)}, split=True),
    "`==`": Row({"==": (_pair, lambda s, a, b: a == b, 16)}),
    "`where`, `relu`, `maximum`": Row({
        "where": (lambda n: (lambda s: (*_pair(n)(s), (_pair(n)(s)[0] < 0))),
                  lambda s, a, b, c: mpc.where(c, a, b), 16),
        "relu": (_one, lambda s, a: mpc.relu(a), 16),
        "maximum": (_pair, lambda s, a, b: mpc.maximum(a, b), 16)}, split=True),
    "`reciprocal`": Row({"reciprocal": (lambda n: _one(n, lambda k: np.linspace(0.05, 900.0, k)),
                                        lambda s, a: mpc.reciprocal(a), 16)}),
    # every slice opened to both (``to = -1``): each party sends its share of every element
    "`reveal_split`, `share_split`": Row({"reveal_split": (_one, lambda s, a: s.reveal_split(
        a, np.full(a.shape[0], -1), axis=0), 16)}),
    "`sigmoid`": Row({"sigmoid": (lambda n: _one(n, lambda k: np.linspace(-25.0, 25.0, k)),
                                  lambda s, a: mpc.sigmoid(a), 16)}),
}

# formula and prose cells: the exact text and the reading this test gives it
MATMUL = "`@` (m,k)x(k,n)"
MATMUL_CELLS = ("2 (1 for integers)", "`8(mk + kn) + 8mn` total", "`mn (+2mn)`")
TOURNAMENT_CELLS = {
    "`max`, `min` over n (binary)": (
        "`9 ceil(log2 n)` (27 for n = 8)", "`2024 ceil(P/64)` + 16 per select, per level", ""),
    "`argmax`, `argmin` over n (binary)": (
        "`9 ceil(log2 n)` (8 for n = 2)", "as `max` without the last select, + 16 per index select from level 2 on",
        ""),
    "`argmax(one_hot=True)` over n (binary)": (
        "`10 ceil(log2 n) - 2`", "as `max`, no last select, + 16 per pair for the descent", ""),
    "`tournament(arity=4)` per level": (
        "8 + 2 + 1 (groups of 4), 8 + 1 + 1 (of 3)",
        "`2024 ceil(P/64)`, 6 pairs per group of 4; 16 x (8 + 4) per group of 4", ""),
}


def test_every_row_of_the_table_is_checked_here():
    assert set(_table()) == set(SIMPLE) | {MATMUL} | set(TOURNAMENT_CELLS), \
        "docs/mpc.md's cost table and this test list different operations: add a case here"


@pytest.mark.parametrize("operation", list(SIMPLE))
def test_simple_row(operation):
    rounds_cell, bytes_cell, dealer_cell = _table()[operation]
    row = SIMPLE[operation]
    k = len(row.ops)
    cells = [(r, b, d) for r, b, d in zip(_split(rounds_cell, k), _split(bytes_cell, k), _split(dealer_cell, k))] \
        if row.split else [(rounds_cell, bytes_cell, dealer_cell)] * k
    for (label, (setup, op, frac_bits)), (r_cell, b_cell, d_cell) in zip(row.ops.items(), cells):
        rounds = int(_number(r_cell)[0])
        for n in row.sizes:
            costs = _measure(setup(n), op, frac_bits)
            what = f"{label} of {n}"
            for p, cost in enumerate(costs):
                assert cost.rounds == rounds, f"{what}: {cost.rounds} rounds, the table says {rounds}"
                if row.owner_only and p == 1:
                    assert cost.payload == 0 and cost.messages <= 1, cost
                    continue
                _check_bytes(cost, _number(b_cell), n, f"{what}, party {p}")
            _check_dealer(costs, _number(d_cell), n, what)


@pytest.mark.parametrize("frac_bits", [16, 0], ids=["fixed", "integer"])
@pytest.mark.parametrize("m,k,n", [(1, 7, 1), (5, 3, 9), (16, 40, 8), (33, 17, 2)])
def test_matmul_row(m, k, n, frac_bits):
    assert _table()[MATMUL] == MATMUL_CELLS, "the `@` row changed: update this test's reading of it"
    # reading: 2 rounds fixed-point, 1 integer; each party sends 8(mk + kn) (the Beaver
    # openings of both matrices) + 8mn (the truncation opening; fixed-point only); the
    # dealer sends mn words (the matrix triple's c) + 2mn (the truncation's r >> s, msb(r);
    # fixed-point only)
    fixed = frac_bits > 0

    def setup(s):
        x = np.linspace(-2, 2, m * k).reshape(m, k) if fixed else np.arange(m * k).reshape(m, k) % 5
        y = np.linspace(3, -1, k * n).reshape(k, n) if fixed else np.arange(k * n).reshape(k, n) % 3
        return s.share(x if s.party == 0 else None, owner=0), s.share(y if s.party == 1 else None, owner=1)

    costs = _measure(setup, lambda s, a, b: a @ b, frac_bits)
    for p, cost in enumerate(costs):
        assert cost.rounds == (2 if fixed else 1)
        _check_bytes(cost, 8 * (m * k + k * n) + (8 * m * n if fixed else 0), 1, f"@ party {p}")
    _check_dealer(costs, m * n + (2 * m * n if fixed else 0), 1, "@")


def _binary_levels(n: int, batch: int):
    """Pairs per level of a binary tournament over ``n`` values in ``batch`` rows."""
    levels = []
    while n > 1:
        levels.append(batch * (n // 2))
        n = (n + 1) // 2
    return levels


@pytest.mark.parametrize("n,batch", [(2, 1), (5, 3), (8, 1), (13, 2), (64, 40)])
def test_binary_tournament_rows(n, batch):
    table = _table()
    for name, cells in TOURNAMENT_CELLS.items():
        assert table[name] == cells, f"the {name} row changed: update this test's reading of it"
    # readings: rounds 9 ceil(log2 n) (max, argmax) and 10 ceil(log2 n) - 2 (one-hot);
    # (argmax: 8 for n = 2); bytes per level: 2024 ceil(P/64) for the P pairs of all rows,
    # plus 16 per select (one per pair); argmax drops the last level's value select and
    # adds 16 per pair for the index from level 2 on (level 1: public positions); one-hot drops
    # the last level's select and adds 16 per pair of every level below the top for the descent
    levels = _binary_levels(n, batch)
    depth = math.ceil(math.log2(n))
    assert len(levels) == depth
    compare = sum(MSB64 * math.ceil(p / 64) for p in levels)
    cases = {
        "max": (mpc.max, 9 * depth, compare + MUL * sum(levels)),
        "argmax": (mpc.argmax, 8 if n == 2 else 9 * depth, compare + MUL * sum(levels[:-1]) + MUL * sum(levels[1:])),
        "one_hot": (lambda x, axis: mpc.argmax(x, axis=axis, one_hot=True), 10 * depth - 2,
                    compare + MUL * sum(levels[:-1]) + MUL * sum(levels[:-1])),
        "min": (mpc.min, 9 * depth, compare + MUL * sum(levels)),
    }
    values = np.sin(np.arange(batch * n) * 1.7).reshape(batch, n) * 100

    for label, (fn, rounds, nbytes) in cases.items():
        costs = _measure(lambda s: (s.share(values if s.party == 0 else None, owner=0),),
                         lambda s, x, fn=fn: fn(x, axis=1))
        for p, cost in enumerate(costs):
            assert cost.rounds == rounds, f"{label} of {n} x{batch}: {cost.rounds} rounds, the table says {rounds}"
            _check_bytes(cost, nbytes, 1, f"{label} of {n} x{batch}, party {p}")


@pytest.mark.parametrize("n,batch", [(4, 1), (16, 1), (64, 3), (3, 2)])
def test_arity4_tournament_row(n, batch):
    cells = TOURNAMENT_CELLS["`tournament(arity=4)` per level"]
    assert _table()["`tournament(arity=4)` per level"] == cells
    # reading, per level: 8 + 2 + 1 rounds when it has a group of 4, 8 + 1 + 1 when its
    # largest group has 3; bytes 2024 ceil(P/64) for the P pairs (6 per group of 4, 3 per
    # group of 3) and 16 x (8 + 4) per group of 4 (indicator products + select). The bytes
    # of groups of 3 are not stated in the table (only in pet.mpc.tournament): checked for
    # rounds only.
    rounds = nbytes = 0
    stated_bytes = True
    length = n
    while length > 1:
        groups = [min(4, length - i) for i in range(0, length, 4)]
        top = max(groups)
        rounds += 8 + {4: 2, 3: 1, 2: 0}[top] + 1
        pairs = batch * sum(g * (g - 1) // 2 for g in groups)
        nbytes += MSB64 * math.ceil(pairs / 64) + MUL * (8 + 4) * batch * groups.count(4)
        stated_bytes &= set(groups) <= {4, 1}
        length = len(groups)
    values = np.cos(np.arange(batch * n) * 0.9).reshape(batch, n) * 10
    costs = _measure(lambda s: (s.share(values if s.party == 0 else None, owner=0),),
                     lambda s, x: mpc.tournament(x, axis=1, arity=4))
    for p, cost in enumerate(costs):
        assert cost.rounds == rounds
        if stated_bytes:
            _check_bytes(cost, nbytes, 1, f"arity 4 over {n} x{batch}, party {p}")


def test_number_cells_are_read_as_documented():
    assert _number("8 (owner)") == (8.0, 0.5)
    assert _number("31.6") == (31.6, pytest.approx(0.05))
    assert _number("~63") == (63.0, pytest.approx(1.89))
    assert _number("") is None
    assert _split("16 / 49 / 49", 3) == ["16", "49", "49"]
