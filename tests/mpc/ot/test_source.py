"""OTSource: every typed kind's correlation holds (Python-integer oracles), the message
form on the peer channel, prefetch, and a peer that stops mid-extension."""

import threading

import numpy as np
import pytest

from pet.errors import ChannelTimeout, InputError, PeerDisconnected, ProtocolError, TransportError
from pet.mpc.correlated import (
    B2A,
    AndTriple,
    CmpMask,
    MatmulTriple,
    ReuseMul,
    ReuseSetup,
    Triple,
    TruncPair,
    draw,
)
from pet.mpc.ot.source import OTSource
from pet.mpc.prg import PRG
from pet.transport import local_pair, run_parties

from .conftest import M64, ints

R = 1 << 64


def _get(specs, chunk=1 << 16):
    def party(p):
        def f(ch):
            return OTSource(ch, p, chunk=chunk).get(specs)
        return f

    return run_parties(party(0), party(1), timeout=300)


def _pymatmul(A, B):
    n = np.asarray(B).shape[1]
    A = [[int(v) for v in row] for row in np.asarray(A)]
    B = [[int(v) for v in row] for row in np.asarray(B)]
    k = len(B)
    return [[sum(A[i][l] * B[l][j] for l in range(k)) % R for j in range(n)] for i in range(len(A))]


def _same_fields_as_the_dealer(spec, f0, f1):
    for party, fields in ((0, f0), (1, f1)):
        dealer = draw(spec, PRG(), party)
        for name, v in dealer.items():
            assert fields[name].shape == v.shape and fields[name].dtype == np.uint64, (spec, name)


@pytest.mark.parametrize("m,k,n", [(3, 4, 5), (7, 2, 3), (1, 1, 1), (5, 9, 2), (4, 0, 3), (0, 3, 2), (2, 3, 0)])
def test_matmul_triples(m, k, n):
    spec = MatmulTriple(m, k, n)
    (f0,), (f1,) = _get([spec])
    _same_fields_as_the_dealer(spec, f0, f1)
    a, b, c = (f0[x] + f1[x] for x in "abc")
    got = [[int(v) for v in row] for row in c]
    assert got == _pymatmul(a, b)


def test_matmul_triple_edge_operands_and_many_chunks():
    # chunk of 64 OTs: every element of B its own extension message
    spec = MatmulTriple(3, 2, 4)
    (f0,), (f1,) = _get([spec], chunk=64)
    a, b, c = (f0[x] + f1[x] for x in "abc")
    assert [[int(v) for v in row] for row in c] == _pymatmul(a, b)


def test_reuse_setup_and_products_share_one_private_mask():
    specs = [ReuseSetup(0, 4, 6, 7), ReuseSetup(1, 3, 2, 9), ReuseMul(7, 0, 4, 6, 3), ReuseMul(9, 1, 3, 2, 5),
             ReuseMul(7, 0, 4, 6, 1)]
    r0, r1 = _get(specs)
    A0, A1 = r0[0]["A"], r1[1]["A"]
    assert r1[0] == {} and r0[1] == {}
    for spec in specs:
        i = specs.index(spec)
        _same_fields_as_the_dealer(spec, r0[i], r1[i])
    for i, (A, other) in ((2, (A0, r1)), (3, (A1, r0)), (4, (A0, r1))):
        s = [[int(v) for v in row] for row in (r0[i]["s"] + r1[i]["s"])]
        assert s == _pymatmul(A, other[i]["b"])


def test_reuse_mul_without_setup_is_refused():
    with pytest.raises(InputError, match="unknown private matrix"):
        OTSource(local_pair()[0], 0).get([ReuseMul(1, 0, 2, 2, 2)])


def test_every_elementwise_kind_in_one_request():
    specs = [Triple((100,)), TruncPair((70,), 16), AndTriple((5,), 2), CmpMask((64,)), B2A((3,), (0, 5, 63)),
             Triple((0,)), TruncPair((1,), 63)]
    r0, r1 = _get(specs)
    for i, spec in enumerate(specs):
        if spec.kind != "trunc":
            _same_fields_as_the_dealer(spec, r0[i], r1[i])
    a, b, c = (ints(r0[0][x] + r1[0][x]) for x in "abc")
    assert c == [(x * y) % R for x, y in zip(a, b)]
    for i, s in ((1, 16), (6, 63)):
        # the wrap-bit form: r = 0, one random bit per element at each party, shares of 2^(64-s) a b
        shape = specs[i].shape
        for f in (r0[i], r1[i]):
            assert set(f) == {"r", "wbit", "wprod"} and all(v.shape == shape for v in f.values())
            assert not f["r"].any() and set(ints(f["wbit"])) <= {0, 1}
        prod = ints(r0[i]["wprod"] + r1[i]["wprod"])
        assert prod == [(x * y) << (64 - s) for x, y in zip(ints(r0[i]["wbit"]), ints(r1[i]["wbit"]))]
    bits = ints(r0[1]["wbit"])
    assert 0 < sum(bits) < len(bits)  # random, not constant
    a, b, c = (r0[2][x] ^ r1[2][x] for x in "abc")
    assert (c == (a[None] & b)).all()
    assert ints(r0[3]["r"] + r1[3]["r"]) == ints(r0[3]["rb"] ^ r1[3]["rb"])
    rho = ints(r0[4]["rho"] ^ r1[4]["rho"])
    ra = (r0[4]["ra"] + r1[4]["ra"]).reshape(3, 3)
    assert [[int(v) for v in row] for row in ra] == [[(x >> j) & 1 for j in (0, 5, 63)] for x in rho]


def test_source_messages_are_distinct_from_session_messages():
    ch0, ch1 = local_pair(timeout=10)
    out = {}

    def p1():
        ch1.recv()  # whatever party 0 sends first
        ch1.send(["1:mul", None])  # a session message where an OT message is expected

    t = threading.Thread(target=p1)
    t.start()
    with pytest.raises(ProtocolError, match="session message"):
        OTSource(ch0, 0).get([Triple((4,))])
    t.join(10)
    assert not out


def test_prefetched_material_is_used_without_messages():
    def party(p):
        def f(ch):
            src = OTSource(ch, p)
            src.prefetch_many([[Triple((10,))], [MatmulTriple(2, 3, 2), AndTriple((2,), 1)]])
            before = src.messages
            m1 = src.get([Triple((10,))])
            m2 = src.get([MatmulTriple(2, 3, 2), AndTriple((2,), 1)])
            return before, src.messages, m1, m2
        return f

    (b0, a0, t0, m0), (b1, a1, t1, m1) = run_parties(party(0), party(1), timeout=120)
    assert a0 == b0 and a1 == b1
    assert ints(t0[0]["c"] + t1[0]["c"]) == [(x * y) % R for x, y in
                                              zip(ints(t0[0]["a"] + t1[0]["a"]), ints(t0[0]["b"] + t1[0]["b"]))]
    assert [[int(v) for v in row] for row in m0[0]["c"] + m1[0]["c"]] == _pymatmul(m0[0]["a"] + m1[0]["a"],
                                                                                    m0[0]["b"] + m1[0]["b"])


class _StopAfter:
    def __init__(self, ch, n, close):
        self.ch, self.n, self.close_it = ch, n, close

    def exchange(self, msg):
        if self.n == 0:
            if self.close_it:
                self.ch.close()
            raise RuntimeError("stopped")
        self.n -= 1
        return self.ch.exchange(msg)


@pytest.mark.parametrize("close", [True, False])
def test_a_peer_that_stops_mid_extension_raises_instead_of_hanging(close):
    ch0, ch1 = local_pair(timeout=2)

    def quitter():
        try:
            OTSource(_StopAfter(ch1, 2, close), 1, chunk=256).get([MatmulTriple(4, 8, 8)])
        except RuntimeError:
            pass

    t = threading.Thread(target=quitter)
    t.start()
    with pytest.raises(TransportError) as info:
        OTSource(ch0, 0, chunk=256).get([MatmulTriple(4, 8, 8)])
    assert isinstance(info.value, PeerDisconnected if close else ChannelTimeout)
    t.join(10)
    assert M64  # the conftest's constant is importable (keeps the helper module in use)
