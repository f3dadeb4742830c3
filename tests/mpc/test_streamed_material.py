"""Streamed dealer material: large triples and truncation pairs are passed over in the PRG
(``PRG.skip``) and read in pieces (``PRG.stream``) by the dealer and the parties, never as
whole arrays. The keystream words, the correlations, the messages and the bytes are those
of drawing the fields in order; these tests check that against independent oracles (the
sequential PRG, numpy, Python ints) at sizes on both sides of the streaming threshold."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import InputError, ProtocolError
from pet.mpc import correlated, dealer, ring
from pet.mpc.correlated import STREAM_MIN_ELEMENTS, DealerClient, Triple, TruncPair, field_pieces
from pet.mpc.prg import CHUNK_WORDS, PRG
from pet.mpc.truncation import trunc_masked
from pet.transport import run_parties

U = np.uint64
SEED = bytes(range(16))
BIG = STREAM_MIN_ELEMENTS + 3 * CHUNK_WORDS + 5  # several pieces and a partial last piece


# -- the seekable keystream -------------------------------------------------------------

def test_skip_and_stream_read_the_words_of_the_sequential_stream():
    ref = PRG(SEED).words(4 * CHUNK_WORDS)
    prg = PRG(SEED)
    first = prg.words(3)
    off = prg.skip(8 * (CHUNK_WORDS + 1))  # an odd number of words: the next field starts mid-block
    after = prg.words(5)
    np.testing.assert_array_equal(first, ref[:3])
    np.testing.assert_array_equal(after, ref[CHUNK_WORDS + 4:CHUNK_WORDS + 9])
    np.testing.assert_array_equal(prg.words_at(off, CHUNK_WORDS + 1), ref[3:CHUNK_WORDS + 4])
    reader = prg.stream(off)
    buf = np.empty(CHUNK_WORDS + 2, dtype=U)
    np.testing.assert_array_equal(reader.words_into(buf, 10), ref[3:13])
    np.testing.assert_array_equal(reader.words_into(buf, CHUNK_WORDS), ref[13:CHUNK_WORDS + 13])
    assert prg.position == 8 * (CHUNK_WORDS + 9)


def test_byte_offsets_that_are_not_word_aligned():
    ref = PRG(SEED).bytes(200)
    prg = PRG(SEED)
    prg.bytes(5)
    prg.skip(11)
    assert prg.bytes(40) == ref[16:56]
    assert prg.stream(21).words(2).tobytes() == ref[21:37]


def test_words_into_refuses_a_buffer_without_the_spare_block():
    with pytest.raises(InputError, match="n \\+ 2"):
        PRG(SEED).stream(0).words_into(np.empty(10, dtype=U), 9)


def test_field_pieces_mixes_streams_and_arrays():
    ref = PRG(SEED).words(BIG)
    plain = np.arange(BIG, dtype=U)
    seen = []
    for i0, m, (a, b) in field_pieces([PRG(SEED).stream(0), plain], BIG):
        seen.append(m)
        np.testing.assert_array_equal(a, ref[i0:i0 + m])
        np.testing.assert_array_equal(b, plain[i0:i0 + m])
    assert sum(seen) == BIG and max(seen) == CHUNK_WORDS and len(seen) > 2


# -- the dealer's streamed corrections ----------------------------------------------------

@pytest.mark.parametrize("spec", [Triple((BIG,)), Triple((7, BIG // 7)), TruncPair((BIG,), 16), TruncPair((BIG,), 37)],
                         ids=["triple", "triple-2d", "trunc16", "trunc37"])
def test_streamed_corrections_equal_the_drawn_ones(spec):
    assert spec.streamed()
    seeds = [bytes([p]) * 16 for p in (0, 1)]
    drawn = [spec.draw(PRG(s), p) for p, s in enumerate(seeds)]
    expected = spec.corrections(drawn[0], drawn[1], {})
    streams = []
    for p, s in enumerate(seeds):
        prg = PRG(s)
        streams.append({name: prg.stream(prg.skip(8 * int(np.prod(shape)))) for name, shape in spec.fields(p)})
    got = spec.stream_corrections(*streams)
    assert set(got) == set(expected)
    for name in expected:
        assert got[name].shape == expected[name].shape and got[name].dtype == U
        np.testing.assert_array_equal(got[name], expected[name])


def test_small_specs_are_not_streamed():
    assert not Triple((STREAM_MIN_ELEMENTS - 1,)).streamed()
    assert not TruncPair((10,), 16).streamed()


def _material(specs, read):
    """Both parties' material for one request of ``specs`` from a real dealer thread;
    ``read(mats)`` runs at each party once its corrections arrived."""
    def party(p):
        def body(chans):
            client = DealerClient(chans[2], p, bytes(16))
            mats = client.get(specs)
            client.close()  # receives the corrections
            return read(mats), chans[2].stats.snapshot()
        return body

    r = run_parties(party(0), party(1), lambda ch: dealer.serve(ch[0], ch[1]), timeout=120)
    return r[0], r[1]


def test_streamed_material_has_the_correlations_and_the_dealer_bytes_of_a_triple():
    n = BIG
    specs = [Triple((3,)), Triple((n,)), TruncPair((n,), 16), Triple((5,))]  # small ones around: positions agree
    (m0, st0), (m1, st1) = _material(specs, lambda mats: [dict(m) for m in mats])
    for k in (0, 1, 3):
        a, b = m0[k]["a"] + m1[k]["a"], m0[k]["b"] + m1[k]["b"]
        np.testing.assert_array_equal(m0[k]["c"] + m1[k]["c"], a * b)
        assert a.any() and b.any()
    r = m0[2]["r"] + m1[2]["r"]
    np.testing.assert_array_equal(m0[2]["rs"] + m1[2]["rs"], r >> U(16))
    np.testing.assert_array_equal(m0[2]["rm"] + m1[2]["rm"], r >> U(63))
    assert st0.messages_received == 1  # party 0 receives only its seed
    assert 8 * (3 * n + 8) <= st1.bytes_received < 8 * (3 * n + 8) + 1000  # c, rs, rm: as unstreamed


def test_streamed_fields_read_in_pieces_match_the_drawn_fields():
    def read(mats):
        t = mats[0]
        pieces = [np.concatenate([a.copy() for _, _, (a,) in field_pieces([t.stream(name)], BIG)])
                  for name in ("a", "b")]
        assert "a" in t and len(t) >= 2 and t.get("zz") is None
        whole = [t["a"], t["b"]]
        assert t.stream("a") is None  # drawn now: an array from here on
        return pieces, whole

    for (pieces, whole), _ in _material([Triple((BIG,))], read):
        for p, w in zip(pieces, whole):
            np.testing.assert_array_equal(p, w)


# -- the protocol on streamed material, against numpy and Python ints -----------------------

@pytest.mark.parametrize("n", [STREAM_MIN_ELEMENTS - 1, BIG])
def test_fixed_point_mul_on_both_sides_of_the_threshold(n):
    k = np.arange(n, dtype=np.float64)
    x = 300.0 * np.sin(k * 0.37)
    y = 90.0 * np.cos(k * 1.1) + 0.25

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        c = a * b
        return s.reveal(c), s.rounds

    (got, rounds), _ = mpc.run_local(prog, timeout=300)
    exact = ring.decode(ring.encode(x, 16), 16) * ring.decode(ring.encode(y, 16), 16)
    assert np.max(np.abs(got - exact)) <= 2.0 ** -16 + 1e-12  # floor or floor + 1 ulp
    assert rounds == 2 + 2 + 1  # two sharings, Beaver + truncation, the reveal


def test_integer_mul_without_truncation_is_exact_modulo_2_64():
    n = BIG
    x = (np.arange(n, dtype=np.int64) * 7919) - 10**9
    y = (np.arange(n, dtype=np.int64) % 1000) - 500

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        return s.reveal(a * b)

    got, _ = mpc.run_local(prog, timeout=300)
    expected = [(int(u) * int(v)) for u, v in zip(x[:: 997], y[:: 997])]  # Python ints
    assert got[:: 997].tolist() == expected


def test_prefetched_streamed_material_is_used_and_exact():
    n = BIG
    x = np.linspace(-50, 50, n)

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        s.prepare(mpc.arithmetic.mul_specs(n, 16))
        return s.reveal(a * a)

    got, _ = mpc.run_local(prog, timeout=300)
    enc = ring.decode(ring.encode(x, 16), 16)
    assert np.max(np.abs(got - enc * enc)) <= 2.0 ** -16 + 1e-12


class _FakeSession:
    party = 0

    def __init__(self, reply):
        self.reply = reply

    def exchange(self, op, payload):
        return self.reply


def test_truncation_refuses_an_opening_of_the_wrong_size():
    mat = {"r": np.zeros(8, U), "rs": np.zeros(8, U), "rm": np.zeros(8, U)}
    with pytest.raises(ProtocolError, match="truncation"):
        trunc_masked(_FakeSession(np.zeros(4, U)), np.zeros(8, U), 16, mat)


def test_material_source_of_plain_dicts_is_the_array():
    arr = np.arange(6, dtype=U).reshape(2, 3)
    out = correlated.material_source({"a": arr}, "a")
    assert out.shape == (6,) and out.base is not None


# -- reused buffers: the dealer's answers and a product's openings --------------------------

def test_two_streamed_triples_of_one_size_in_one_request_get_distinct_buffers():
    specs = [Triple((BIG,)), Triple((BIG,)), TruncPair((BIG,), 16)]
    (m0, _), (m1, _) = _material(specs, lambda mats: [dict(m) for m in mats])
    for k in (0, 1):
        a, b = m0[k]["a"] + m1[k]["a"], m0[k]["b"] + m1[k]["b"]
        np.testing.assert_array_equal(m0[k]["c"] + m1[k]["c"], a * b)
    assert not np.shares_memory(m1[0]["c"], m1[1]["c"])


def test_dealer_buffers_are_reused_across_requests_never_within_one():
    buffers = dealer._Buffers(max_elements=10)
    buffers.next_request()
    first = [buffers.take(4), buffers.take(4)]
    assert not np.shares_memory(first[0], first[1])
    big = buffers.take(5)  # 4 + 4 + 5 > 10: handed out, not kept
    buffers.next_request()
    again = [buffers.take(4), buffers.take(4), buffers.take(5)]
    assert {id(a) for a in again[:2]} == {id(a) for a in first}
    assert again[2] is not big


def test_consecutive_large_products_in_one_session_stay_exact():
    n = BIG
    x = np.linspace(-70, 70, n)
    y = np.cos(np.arange(n) * 0.01) * 30

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        first = a * b
        second = b * a * b  # reuses the first product's buffers twice more
        small = a[:5] * b[:5]
        return s.reveal(first), s.reveal(second), s.reveal(small)

    (first, second, small), _ = mpc.run_local(prog, timeout=300)
    ex, ey = ring.decode(ring.encode(x, 16), 16), ring.decode(ring.encode(y, 16), 16)
    assert np.max(np.abs(first - ex * ey)) <= 2.0 ** -16 + 1e-12
    assert np.max(np.abs(second - ey * ex * ey)) <= 1e-3 * (1 + np.abs(ey).max())
    np.testing.assert_allclose(small, (ex * ey)[:5], atol=2.0 ** -15)


def test_session_scratch_is_reused_per_name_and_bounded():
    from pet.mpc import session as session_mod

    def prog(s):
        a1 = s.scratch("x", 10)
        a2 = s.scratch("x", 6)
        b = s.scratch("y", 10)
        return np.shares_memory(a1, a2), np.shares_memory(a1, b), a2.shape

    r, _ = mpc.run_local(prog, timeout=60)
    assert r[0] and not r[1] and r[2] == (6,)
    session_mod_limit = session_mod.SCRATCH_MAX_ELEMENTS
    assert session_mod_limit >= 1 << 20  # a 10^6-element product's openings are kept


def test_session_scratch_above_the_limit_is_fresh(monkeypatch):
    from pet.mpc import session as session_mod

    monkeypatch.setattr(session_mod, "SCRATCH_MAX_ELEMENTS", 8)

    def prog(s):
        return np.shares_memory(s.scratch("x", 9), s.scratch("x", 9))

    assert mpc.run_local(prog, timeout=60) == [False, False]
