"""IKNP extension: random and correlated OTs in both directions against plain oracles,
chunking, request agreement, stream continuity and a peer that stops mid-extension."""

import threading

import numpy as np
import pytest

from pet.errors import ChannelTimeout, PeerDisconnected, ProtocolError, TransportError
from pet.mpc.ot import BitProduct, GilboaProduct, OTEngine, RandomOT
from pet.mpc.ot.requests import random_words
from pet.transport import local_pair

from .conftest import M64, ints, run_engines

SIZES = [1, 127, 128, 100_000]


def _select_rows(m0, m1, choices):
    return (m0 & ~choices[None, :]) | (m1 & choices[None, :])


@pytest.mark.parametrize("count", [64, 128, 192, 100_032])
@pytest.mark.parametrize("sender", [0, 1])
def test_random_ot_receiver_gets_the_chosen_message(count, sender):
    def fn(eng, p):
        return eng.extend([RandomOT(count, sender, 128)])[0]

    r = run_engines(fn)
    snd, rcv = r[sender], r[1 - sender]
    ch = rcv["choices"]
    np.testing.assert_array_equal(rcv["m"], _select_rows(snd["m0"], snd["m1"], ch))
    # the other message is unrelated: m0 and m1 differ in about half their bits
    diff = np.unpackbits((snd["m0"] ^ snd["m1"]).view(np.uint8)).mean()
    assert 0.45 < diff < 0.55 or count < 1000


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("sender", [0, 1])
def test_correlated_ot_shares_sum_to_the_product_of_the_bits(n, sender):
    """One correlated OT per element (BitProduct of bit 0, full 64-bit width)."""
    s_words, r_words = random_words(n), random_words(n)

    def fn(eng, p):
        value = s_words if p == sender else r_words
        return eng.extend([BitProduct(n, sender, [0], [[1]], value)])[0]["out"]

    o0, o1 = run_engines(fn)
    expected = (s_words & r_words & np.uint64(1))
    np.testing.assert_array_equal(o0[0] + o1[0], expected)
    # each share alone is uniform-looking (not the bit)
    if n >= 128:
        assert len(set(ints(o0[0]))) > n // 2


EDGES = [0, 1, 2, 3, (1 << 63) - 1, 1 << 63, (1 << 63) + 1, M64 - 1, M64, 0xDEADBEEF_12345678]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("sender", [0, 1])
def test_gilboa_products_against_python_integers(n, sender):
    a, b = random_words(n), random_words(n)
    k = min(n, len(EDGES))
    a[:k] = np.array(EDGES[:k], dtype=np.uint64)
    b[:k] = np.array(EDGES[::-1][:k], dtype=np.uint64)

    def fn(eng, p):
        return eng.extend([GilboaProduct(n, sender, a if p == sender else b)])[0]["share"]

    s0, s1 = run_engines(fn)
    got = ints(s0 + s1)
    assert got == [(x * y) % (1 << 64) for x, y in zip(ints(a), ints(b))]


def test_many_chunks_and_mixed_requests_in_one_call():
    """chunk = 256 OTs: requests cross chunk boundaries, directions have different totals."""
    n = 1000
    a, b = random_words(n), random_words(n)
    s, r = random_words(300), random_words(300)

    def fn(eng, p):
        reqs = [RandomOT(640, 1, 7), GilboaProduct(n, 0, a if p == 0 else b),
                BitProduct(300, 1, [0, 5, 63], [[1, 2, 4], [3, 0, 1 << 63]], s if p == 1 else r),
                RandomOT(64, 0, 128)]
        out = eng.extend(reqs)
        return out, eng.messages

    (o0, m0), (o1, m1) = run_engines(fn, chunk=256)
    np.testing.assert_array_equal(o0[0]["m"], _select_rows(o1[0]["m0"], o1[0]["m1"], o0[0]["choices"]))
    np.testing.assert_array_equal(o1[3]["m"], _select_rows(o0[3]["m0"], o0[3]["m1"], o1[3]["choices"]))
    assert ints(o0[1]["share"] + o1[1]["share"]) == [(x * y) % (1 << 64) for x, y in zip(ints(a), ints(b))]
    bits = lambda w, j: (w >> np.uint64(j)) & np.uint64(1)  # noqa: E731
    prod = [bits(s, j) * bits(r, j) for j in (0, 5, 63)]
    np.testing.assert_array_equal(o0[2]["out"][0] + o1[2]["out"][0], prod[0] + 2 * prod[1] + 4 * prod[2])
    np.testing.assert_array_equal(o0[2]["out"][1] + o1[2]["out"][1], 3 * prod[0] + (prod[2] << np.uint64(63)))
    # party 0 sends 64000 + 64 OTs, party 1 640 + 300 * 3 padded: 250 + 1 chunks, + 1 for corrections
    assert m0 == m1 == 252


def test_one_message_each_way_for_small_random_ots_two_with_corrections():
    def fn(eng, p):
        eng.extend([RandomOT(128, 0), RandomOT(64, 1, 3)])
        after_rot = eng.channel.stats.messages_sent
        eng.extend([GilboaProduct(10, 0, random_words(10)), GilboaProduct(10, 1, random_words(10)),
                    RandomOT(64, 1)])
        return after_rot, eng.channel.stats.messages_sent - after_rot

    for first, second in run_engines(fn):
        assert (first - 1, second) == (1, 2)  # 1 = the base-OT message


def test_streams_continue_across_calls():
    """Two calls with the same choice bits send different u matrices (never a restarted
    seed stream: two u's from one stream would reveal the choices)."""
    seen = []

    class Spy:
        def __init__(self, ch):
            self.ch = ch
            self.stats = ch.stats

        def exchange(self, msg):
            if isinstance(msg, dict) and "u" in msg and msg["u"].size:
                seen.append(msg["u"].copy())
            return self.ch.exchange(msg)

    ch0, ch1 = local_pair(timeout=30)
    choices = random_words(2)

    def p1():
        eng = OTEngine(ch1, 1)
        eng.extend([RandomOT(128, 1)])
        eng.extend([RandomOT(128, 1)])

    t = threading.Thread(target=p1)
    t.start()
    eng = OTEngine(Spy(ch0), 0)
    eng.extend([RandomOT(128, 1, choices=choices)])
    eng.extend([RandomOT(128, 1, choices=choices)])
    t.join(30)
    assert len(seen) == 2 and not np.array_equal(seen[0], seen[1])


def test_different_requests_at_the_two_parties_are_a_protocol_error():
    def fn(eng, p):
        return eng.extend([RandomOT(128 if p == 0 else 192, 0)])

    with pytest.raises(ProtocolError, match="different OTs"):
        run_engines(fn, timeout=30)


def test_a_malformed_u_matrix_is_a_protocol_error():
    ch0, ch1 = local_pair(timeout=10)
    out = {}

    def honest():
        try:
            OTEngine(ch0, 0).extend([RandomOT(128, 0)])
        except Exception as exc:  # noqa: BLE001
            out["exc"] = exc

    t = threading.Thread(target=honest)
    t.start()
    OTEngine(ch1, 1)
    msg = ch1.recv()
    ch1.send({"u": np.zeros((128, 1), dtype=np.uint64), "d": np.zeros(0, dtype=np.uint64), "h": msg["h"]})
    t.join(20)
    assert isinstance(out.get("exc"), ProtocolError)


class _StopAfter:
    """A channel that closes (or goes silent) after ``n`` exchanges."""

    def __init__(self, ch, n, close):
        self.ch, self.n, self.close_it, self.stats = ch, n, close, ch.stats

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
        eng = OTEngine(ch1, 1, chunk=256)
        eng.channel = _StopAfter(ch1, 2, close)
        try:
            eng.extend([GilboaProduct(100, 0, random_words(100))])
        except RuntimeError:
            pass

    t = threading.Thread(target=quitter)
    t.start()
    eng = OTEngine(ch0, 0, chunk=256)
    with pytest.raises(TransportError) as info:
        eng.extend([GilboaProduct(100, 0, random_words(100))])
    assert isinstance(info.value, PeerDisconnected if close else ChannelTimeout)
    t.join(10)


@pytest.mark.parametrize("n", [1, 63, 64, 1000])
@pytest.mark.parametrize("sender", [0, 1])
def test_chosen_bit_product_is_bit_times_word(n, sender):
    """One correlated OT per element: shares of c * a (c the receiver's bit, a the sender's
    word) against Python integers, across chunk boundaries (chunk = 256 OTs), next to a
    Gilboa product in the same extension."""
    from pet.mpc.ot.requests import ChosenBitProduct

    a = random_words(n)
    c = random_words(n) & np.uint64(1)
    g = random_words(5)

    def fn(eng, p):
        out = eng.extend([ChosenBitProduct(n, sender, a if p == sender else c),
                          GilboaProduct(5, sender, g if p == sender else g[::-1].copy())])
        return out[0]["share"], eng.ots_sent + eng.ots_received

    (s0, ots0), (s1, _) = run_engines(fn, chunk=256)
    assert ints(s0 + s1) == [(int(x) * int(y)) % (1 << 64) for x, y in zip(ints(a), ints(c))]
    assert ots0 == -(-n // 64) * 64 + 5 * 64  # one OT per element (padded to 64), 64 per Gilboa product
