"""The dealer's correlated randomness: real randomness, correct correlations, seed
compression (traffic), mismatch detection."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import ProtocolError
from pet.mpc import dealer
from pet.mpc.correlated import DealerClient
from pet.mpc.ring_matmul import matmul_u64
from pet.transport import run_parties

U = np.uint64
SID = bytes(range(16))  # a fixed session id for clients used without a Session
SPECS = [
    ("triple", (5, 3)),
    ("matmul", 4, 6, 3),
    ("trunc", (7,), 16),
    ("and", (9,), 2),
    ("cmpmask", (64,)),
    ("b2a", (5,), (0, 3, 63)),
    ("reuse_setup", 1, 3, 4, 99),
    ("reuse_mul", 99, 1, 3, 4, 2),
]


def _material(specs, batch=True):
    def party(p):
        def body(chans):
            client = DealerClient(chans[2], p, SID)
            if batch:
                out = client.get(specs)
            else:
                out = [client.get([s])[0] for s in specs]
            client.close()  # also receives any corrections not read yet
            return [dict(m) for m in out], chans[2].stats.snapshot()
        return body

    r = run_parties(party(0), party(1), lambda ch: dealer.serve(ch[0], ch[1]), timeout=60)
    return r[0], r[1]


def test_every_kind_has_the_right_correlation_with_nonzero_randomness():
    (m0, st0), (m1, st1) = _material(SPECS)
    t0, t1 = m0[0], m1[0]
    a, b, c = t0["a"] + t1["a"], t0["b"] + t1["b"], t0["c"] + t1["c"]
    np.testing.assert_array_equal(c, a * b)
    assert a.any() and b.any() and not np.array_equal(t0["c"], t1["c"])
    mm0, mm1 = m0[1], m1[1]
    np.testing.assert_array_equal(mm0["c"] + mm1["c"], matmul_u64(mm0["a"] + mm1["a"], mm0["b"] + mm1["b"]))
    tr0, tr1 = m0[2], m1[2]
    r = tr0["r"] + tr1["r"]
    np.testing.assert_array_equal(tr0["rs"] + tr1["rs"], r >> U(16))
    np.testing.assert_array_equal(tr0["rm"] + tr1["rm"], r >> U(63))
    an0, an1 = m0[3], m1[3]
    np.testing.assert_array_equal(an0["c"] ^ an1["c"], (an0["a"] ^ an1["a"])[None] & (an0["b"] ^ an1["b"]))
    cm0, cm1 = m0[4], m1[4]
    np.testing.assert_array_equal(cm0["rb"] ^ cm1["rb"], cm0["r"] + cm1["r"])
    b0, b1 = m0[5], m1[5]
    rho = b0["rho"] ^ b1["rho"]
    for i, j in enumerate((0, 3, 63)):
        np.testing.assert_array_equal(b0["ra"][..., i] + b1["ra"][..., i], (rho >> U(j)) & U(1))
    A = m1[6]["A"]  # owner 1 knows the mask
    assert "A" not in m0[6]
    s_owner, s_other, B = m1[7]["s"], m0[7]["s"], m0[7]["b"]
    np.testing.assert_array_equal(s_owner + s_other, matmul_u64(A, B))


def test_seed_compression_party0_receives_nothing_party1_one_element_per_triple():
    n = 100_000
    (m0, st0), (m1, st1) = _material([("triple", (n,))])
    assert st0.messages_received == 1  # only the handshake seed
    assert st0.bytes_received < 200
    assert "c" in m1[0] and "c" in m0[0]
    assert 8 * n <= st1.bytes_received < 8 * n + 1000  # one ring element per triple


def test_batched_and_one_by_one_requests_agree_in_structure():
    (m0, _), (m1, _) = _material(SPECS[:4], batch=False)
    t0, t1 = m0[0], m1[0]
    np.testing.assert_array_equal(t0["c"] + t1["c"], (t0["a"] + t1["a"]) * (t0["b"] + t1["b"]))


def test_dealer_detects_parties_asking_for_different_material():
    def party(p):
        def body(chans):
            client = DealerClient(chans[2], p, SID)
            return client.get([("triple", (3,) if p == 0 else (4,))])
        return body

    with pytest.raises(ProtocolError, match="different"):
        run_parties(party(0), party(1), lambda ch: dealer.serve(ch[0], ch[1]), timeout=30)


def test_dealer_rejects_two_parties_with_the_same_id():
    def party(chans):
        return DealerClient(chans[2], 0, SID)

    with pytest.raises(ProtocolError):
        run_parties(party, party, lambda ch: dealer.serve(ch[0], ch[1]), timeout=30)


def test_mul_traffic_and_rounds_are_as_documented():
    n = 10_000

    def prog(s):
        a = s.share(np.ones(n) if s.party == 0 else None, owner=0)
        b = s.share(np.ones(n) if s.party == 1 else None, owner=1)
        before, rounds = s.channel.stats.snapshot(), s.rounds
        a * b
        diff = s.channel.stats - before
        return diff.bytes_sent, s.rounds - rounds

    (sent0, rounds0), (sent1, rounds1) = mpc.run_local(prog)
    assert rounds0 == rounds1 == 2
    assert 24 * n <= sent0 < 24 * n + 500  # d, e (16 bytes) + truncation opening (8 bytes)


def test_prefetched_material_is_used_by_the_next_matching_operation():
    n = 1000

    def prog(s):
        a = s.share(np.full(n, 1.5) if s.party == 0 else None, owner=0)
        b = s.share(np.full(n, -2.0) if s.party == 1 else None, owner=1)
        s.source.prefetch([("triple", (n,)), ("trunc", (n,), 16)])
        s.source.wait()
        before = s.source.channel.stats.snapshot()
        c = a * b  # uses the prefetched material: no dealer traffic now
        online = s.source.channel.stats - before
        d = a * b  # a fresh request
        return s.reveal(c), s.reveal(d), online.messages_sent, online.messages_received

    (c0, d0, sent0, rx0), (c1, d1, sent1, rx1) = mpc.run_local(prog)
    np.testing.assert_array_equal(c0, np.full(n, -3.0))
    np.testing.assert_array_equal(d1, np.full(n, -3.0))
    assert sent0 == sent1 == rx0 == rx1 == 0


def test_session_accepts_any_correlated_source():
    def party(p):
        def body(chans):
            source = DealerClient(chans[2], p)  # a CorrelatedSource object instead of a channel
            with mpc.Session(p, chans[1 - p], dealer=source) as s:
                a = s.share(np.array([2.5, -1.0]) if p == 0 else None, owner=0)
                return s.reveal(a * a)
        return body

    r0, r1, _ = run_parties(party(0), party(1), lambda ch: dealer.serve(ch[0], ch[1]), timeout=60)
    np.testing.assert_array_equal(r0, [6.25, 1.0])
    np.testing.assert_array_equal(r1, r0)
