"""Dealer-free comparison leaves: random 1-out-of-16 OT on 4-bit digits (CrypTFlow2's
millionaires' protocol, the way Cheetah compares).

``msb(x)`` of ``x = x_0 + x_1`` is ``msb(x_0) ^ msb(x_1) ^ [A < B]`` with party 0's
``A = ~x_0 mod 2^63`` and party 1's ``B = x_1 mod 2^63`` (the carry into bit 63). The
two parties compare ``A`` and ``B`` digit by digit (16 digits of 4 bits): per digit, an
OT gives XOR shares of ``lt_j = [A_j < B_j]`` and ``eq_j = [A_j == B_j]``; the prefix
tree of :func:`pet.mpc.boolean.msb` (``lt = lt_hi ^ eq_hi & lt_lo``, ``eq = eq_hi & eq_lo``)
then needs 4 levels instead of 6 and 15 AND bits per element instead of 63, and no
``cmpmask`` (whose bit decomposition alone cost 64 OTs per element).

Offline (:class:`CmpLeaves`, served by :class:`~pet.mpc.ot.source.OTSource` in the same
extension as the tree's AND triples, so :meth:`~pet.mpc.Session.prepare` can make it
ahead of the inputs): per element and digit a *random* 1-out-of-16 OT with 2-bit
messages, from four random 1-out-of-2 OTs (:class:`LeafOT`, 64 IKNP OTs and 1 KiB of
``u`` per element, no corrections). Party 0 is the sender for the first half of the
elements, party 1 for the second half, so both do the same work. The sender gets
``table`` (per element 16 uint32: the 16 messages of each digit), the receiver
``choice`` (16 random nibbles per element) and ``mc`` (the chosen messages).

Online (:func:`leaf_shares`, 2 messages each way): the receiver sends ``d = B ^ choice``
(8 bytes per element); the sender answers per digit the 16 entries
``T_v = M_{v ^ d} ^ R ^ (lt(v), eq(v))`` (64 bytes per element) with its own random
shares ``R``; the receiver's share is ``T_{b} ^ M_{c}``. What each party learns: ``d`` is
uniform (``choice`` is), every ``T_v`` with ``v != b`` is masked by a message the
receiver cannot compute (:mod:`pet.mpc.ot._kernels`, ``leaf_send``) and ``T_b`` by the
sender's fresh ``R``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pet.errors import InputError, ProtocolError
from pet.mpc.correlated import Spec
from pet.mpc.ot import _kernels
from pet.mpc.ot.requests import OTRequest, random_words

__all__ = ["CmpLeaves", "LeafOT", "plan", "leaf_shares", "halves"]


_LUT = _kernels.leaf_spread_table()


def halves(n: int) -> tuple:
    """``(h, n)``: party 0 sends the leaf OTs of elements ``0..h``, party 1 of ``h..n``."""
    return n // 2, n


@dataclasses.dataclass(frozen=True)
class CmpLeaves(Spec):
    """Random 1-out-of-16 OTs for the comparison leaves of ``shape`` (1-D) elements (see
    the module doc). Served by the OT source only: the dealer protocol has no such kind."""

    shape: tuple
    kind: ClassVar[str] = "cmpleaf"

    def __post_init__(self):
        if not isinstance(self.shape, (tuple, list)) or len(self.shape) != 1 \
                or isinstance(self.shape[0], bool) or not isinstance(self.shape[0], (int, np.integer)) \
                or not 0 <= int(self.shape[0]) <= (1 << 40):
            raise InputError("cmpleaf shape must be a 1-D shape (n,) with 0 <= n <= 2^40")
        object.__setattr__(self, "shape", (int(self.shape[0]),))

    def fields(self, party):
        h, n = halves(self.shape[0])
        ns, nr = (h, n - h) if party == 0 else (n - h, h)
        return (("table", (ns, 16)), ("choice", (nr,)), ("mc", (nr,)))

    def receiver(self):
        return None

    def corrections(self, m0, m1, state):
        raise ProtocolError("cmpleaf correlations are made by the OT source only (no dealer kind)")


class LeafOT(OTRequest):
    """``n`` random 1-out-of-16 OTs on 16 digits each (64 random 1-out-of-2 OTs per
    element, OT ``64 e + 4 j + i`` = bit ``i`` of digit ``j``): the sender gets ``table``
    ((n, 16) uint32), the receiver ``choice`` ((n,) uint64, 16 nibbles) and ``mc``
    ((n,) uint32, 2 bits per digit). No corrections: 16 bytes of ``u`` per OT."""

    kind = "leaf16"

    def __init__(self, n: int, sender: int):
        super().__init__(64 * int(n), sender)
        self.n = int(n)
        self._choice = None
        self._out = None

    def choice_words(self):
        if self._choice is None:
            self._choice = random_words(self.n)
        return self._choice

    def on_sender(self, lo, hi, h0, h1):
        if self._out is None:
            self._out = np.zeros((self.n, 16), dtype=np.uint32)
        _kernels.leaf_send(h0, h1, self._out[lo // 64:hi // 64], _LUT)
        return None

    def on_receiver(self, lo, hi, ht, corr):
        if self._out is None:
            self._out = np.zeros(self.n, dtype=np.uint32)
        _kernels.leaf_recv(ht, self.choice_words()[lo // 64:hi // 64], self._out[lo // 64:hi // 64])

    def result(self):
        if self.role == "sender":
            return {"table": self._out if self._out is not None else np.zeros((self.n, 16), dtype=np.uint32)}
        return {"choice": self.choice_words(), "mc": self._out if self._out is not None
                else np.zeros(self.n, dtype=np.uint32)}


def plan(spec: CmpLeaves, party: int):
    """The OT requests of a :class:`CmpLeaves` spec and the function building its fields."""
    h, n = halves(spec.shape[0])
    reqs = [LeafOT(h, 0), LeafOT(n - h, 1)]
    mine, theirs = (0, 1) if party == 0 else (1, 0)

    def finish(res):
        return {"table": res[mine]["table"], "choice": res[theirs]["choice"], "mc": res[theirs]["mc"]}

    return reqs, finish


def leaf_shares(session, val: np.ndarray, mat: dict):
    """XOR shares of the comparison leaves of ``val`` (this party's 63-bit operand per
    element, ``A`` at party 0 and ``B`` at party 1; length a multiple of 4): packed words
    ``g`` (``lt_j``) and ``p`` (``eq_j``), element ``e``'s digit ``j`` in bit
    ``16 (e % 4) + j`` of word ``e // 4``. Two messages each way (see the module doc)."""
    n = val.shape[0]
    h, _ = halves(n)
    party = session.party
    (slo, shi), (rlo, rhi) = ((0, h), (h, n)) if party == 0 else ((h, n), (0, h))
    if mat["table"].shape != (shi - slo, 16) or mat["choice"].shape != (rhi - rlo,):
        raise InputError("cmpleaf material does not match the number of elements")
    g = np.zeros(n // 4, dtype=np.uint64)
    p = np.zeros(n // 4, dtype=np.uint64)
    d_mine = val[rlo:rhi] ^ mat["choice"]
    d_peer = session.exchange(f"cmpleaf-d({n})", d_mine)
    if not isinstance(d_peer, np.ndarray) or d_peer.dtype != np.uint64 or d_peer.shape != (shi - slo,):
        raise ProtocolError("the peer's comparison offsets have the wrong size")
    tables = np.empty((shi - slo, 16), dtype=np.uint32)
    rnd = random_words(shi - slo)
    _kernels.leaf_tables(val[slo:shi], d_peer, mat["table"], rnd, party == 0, tables,
                         g[slo // 4:shi // 4], p[slo // 4:shi // 4])
    t_peer = session.exchange(f"cmpleaf-t({n})", tables)
    if not isinstance(t_peer, np.ndarray) or t_peer.dtype != np.uint32 or t_peer.shape != (rhi - rlo, 16):
        raise ProtocolError("the peer's comparison tables have the wrong shape")
    _kernels.leaf_open(val[rlo:rhi], t_peer, mat["mc"], g[rlo // 4:rhi // 4], p[rlo // 4:rhi // 4])
    return g, p
