"""Typed correlated-randomness specs, and a dealer that survives hostile clients: malformed
hellos and requests are refused (that connection or session only), oversized requests are
bounded, and the two connections of a session are paired by session id, never by order."""

import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from pet import mpc
from pet.errors import InputError, PeerDisconnected, PetError, ProtocolError
from pet.mpc import dealer
from pet.mpc.correlated import (
    B2A,
    PROTOCOL_VERSION,
    AndTriple,
    CmpMask,
    DealerClient,
    MatmulTriple,
    ReuseMul,
    ReuseSetup,
    Triple,
    TruncPair,
    as_spec,
    spec_from_wire,
)
from pet.mpc.ring_matmul import matmul_u64
from pet.transport import local_pair, run_parties, tcp
from tests.helpers import read_until_closed

U = np.uint64

LEGACY = [
    ("triple", (5, 3)),
    ("matmul", 4, 6, 3),
    ("trunc", (7,), 16),
    ("and", (9,), 2),
    ("cmpmask", (64,)),
    ("b2a", (5,), (0, 3, 63)),
    ("reuse_setup", 1, 3, 4, 99),
    ("reuse_mul", 99, 1, 3, 4, 2),
]
TYPED = [Triple((5, 3)), MatmulTriple(4, 6, 3), TruncPair((7,), 16), AndTriple((9,), 2), CmpMask((64,)),
         B2A((5,), (0, 3, 63)), ReuseSetup(1, 3, 4, 99), ReuseMul(99, 1, 3, 4, 2)]


# -- typed specs ------------------------------------------------------------------------------

def test_typed_specs_have_the_legacy_wire_form_and_round_trip():
    for legacy, typed in zip(LEGACY, TYPED):
        wire = typed.to_wire()
        assert wire == [v if not isinstance(v, tuple) else list(v) for v in legacy]  # same bytes as version 1
        assert spec_from_wire(wire) == typed
        assert as_spec(legacy) == typed
        assert hash(spec_from_wire(wire)) == hash(typed)


def test_fields_receivers_and_sizes():
    t = Triple((5, 3))
    assert t.fields(0) == (("a", (5, 3)), ("b", (5, 3)), ("c", (5, 3)))
    assert t.fields(1) == (("a", (5, 3)), ("b", (5, 3)))
    assert t.receiver() == 1 and t.correction_fields() == (("c", (5, 3)),)
    assert t.elements() == 6 * 15  # 3 + 2 drawn, 1 corrected
    assert MatmulTriple(4, 6, 3).elements() == 2 * (24 + 18) + 12 + 12
    assert ReuseSetup(1, 3, 4, 99).receiver() is None and ReuseSetup(1, 3, 4, 99).fields(0) == ()
    assert ReuseMul(99, 1, 3, 4, 2).receiver() == 0
    assert ReuseMul(99, 1, 3, 4, 2).correction_fields() == (("s", (3, 2)),)
    assert B2A((5,), (0, 3, 63)).fields(0)[1] == ("ra", (5, 3))
    with pytest.raises(AttributeError):
        t.shape = (1,)  # frozen


@pytest.mark.parametrize("wire", [
    ["triple", ["x"]],                 # int("x")-style string where an int belongs
    ["triple", "5"],
    ["triple", [True]],
    ["triple", [5.0]],
    ["triple", [-1]],
    ["triple", [1] * 9],               # too many dimensions
    ["triple", [1 << 41]],
    ["triple"],                        # missing parameter
    ["triple", [5], 1],                # extra parameter
    ["matmul", 4, "6", 3],
    ["trunc", [7], 64],
    ["and", [9], 0],
    ["b2a", [5], [64]],
    ["b2a", [5], []],
    ["reuse_setup", 2, 3, 4, 99],
    ["reuse_mul", -1, 1, 3, 4, 2],
    ["launch_missiles", [1]],          # unknown kind
    [7, [1]],
    [],
    "triple",
    {"kind": "triple"},
    [np.arange(3), [1]],
])
def test_from_wire_refuses_malformed_specs(wire):
    with pytest.raises(ProtocolError):
        spec_from_wire(wire)


def test_local_construction_validates_with_input_error():
    with pytest.raises(InputError):
        Triple(("x",))
    with pytest.raises(InputError):
        as_spec(("triple", "nonsense"))


def test_session_correlated_accepts_legacy_tuples_and_typed_specs_alike():
    def prog(s):
        legacy, typed = s.correlated([("triple", (50,)), Triple((50,))])
        return {k: legacy[k] for k in "abc"}, {k: typed[k] for k in "abc"}

    (l0, t0), (l1, t1) = mpc.run_local(prog)
    for m0, m1 in ((l0, l1), (t0, t1)):
        np.testing.assert_array_equal(m0["c"] + m1["c"], (m0["a"] + m1["a"]) * (m0["b"] + m1["b"]))


# -- session ids ---------------------------------------------------------------------------

def test_both_parties_derive_the_same_fresh_session_id():
    ids = mpc.run_local(lambda s: s.session_id)
    assert ids[0] == ids[1] and len(ids[0]) == 16
    assert mpc.run_local(lambda s: s.session_id)[0] != ids[0]


def test_serve_refuses_two_connections_of_different_sessions():
    def client(p, sid):
        def body(chans):
            return DealerClient(chans[2], p, sid)
        return body

    with pytest.raises(ProtocolError, match="refused|different sessions"):
        run_parties(client(0, b"a" * 16), client(1, b"b" * 16), lambda ch: dealer.serve(ch[0], ch[1]), timeout=30)


class _NamedChannel:
    """A channel end whose TLS peer name is ``peer_name`` (as a TLS StreamChannel has)."""

    def __init__(self, ch, peer_name):
        self._ch, self.peer_name = ch, peer_name

    def __getattr__(self, name):
        return getattr(self._ch, name)


def test_tls_certificate_name_must_match_the_claimed_party():
    def client(p, sid=b"s" * 16):
        def body(chans):
            c = DealerClient(chans[2], p, sid)
            c.close()
            return c.session_id
        return body

    def named_dealer(names):
        return lambda ch: dealer.serve(_NamedChannel(ch[0], names[0]), _NamedChannel(ch[1], names[1]))

    # party 1 presents the certificate of party 0: refused
    with pytest.raises(PetError):
        run_parties(client(0), client(1), named_dealer(("party0", "party0")), timeout=30)
    # the right names (and no TLS, peer_name None) pair
    run_parties(client(0), client(1), named_dealer(("party0", "party1")), timeout=30)
    run_parties(client(0), client(1), named_dealer((None, None)), timeout=30)


# -- a running dealer ------------------------------------------------------------------------

class _ThreadDealer:
    """serve_listener in a thread on a free port, log lines collected."""

    def __init__(self, **kwargs):
        self.listener = tcp.Listener("127.0.0.1", 0, timeout=30)
        self.port = self.listener.port
        self.lines: list[str] = []
        self.result = None
        self.error = None
        kwargs.setdefault("sessions", 0)

        def run():
            try:
                self.result = dealer.serve_listener(self.listener, log=self.lines.append, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def connect(self):
        return tcp.connect("127.0.0.1", self.port, retry_for=10, timeout=10)

    def close(self):
        self.listener.close()


def _session(port, p, peer, results, key, shape):
    """One party of a real Session with a TCP dealer: a * b and a < b on ``shape``."""
    dch = tcp.connect("127.0.0.1", port, retry_for=10, timeout=30)
    with dch, mpc.Session(p, peer, dealer=dch) as s:
        x = np.arange(np.prod(shape), dtype=float).reshape(shape) - 3.5
        a = s.share(x if p == 0 else None, owner=0)
        b = s.share(-x / 2 if p == 1 else None, owner=1)
        results[key, p] = (s.reveal(a * b), s.reveal(a < b))


def _run_real_session(port, shape=(6,)):
    results = {}
    c0, c1 = local_pair(timeout=30)
    threads = [threading.Thread(target=_session, args=(port, p, ch, results, "s", shape))
               for p, ch in ((0, c0), (1, c1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    x = np.arange(np.prod(shape), dtype=float).reshape(shape) - 3.5
    for p in (0, 1):
        prod, less = results["s", p]
        np.testing.assert_allclose(prod, x * (-x / 2), atol=1e-3)
        np.testing.assert_array_equal(less, x < -x / 2)


def _eventually(cond, seconds=10.0):
    """``cond()`` becomes true within ``seconds`` (the dealer logs after the parties finish)."""
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _hello(party=0, session=b"h" * 16, version=PROTOCOL_VERSION):
    return {"hello": "pet.mpc.dealer", "version": version, "party": party, "session": session}


BAD_HELLOS = [
    _hello(party="x"),
    _hello(party="0"),
    _hello(party=True),
    _hello(party=2),
    _hello(party=[0]),
    _hello(party=np.arange(2)),
    _hello(version="2"),
    _hello(version=1),
    _hello(session=b"short"),
    _hello(session="s" * 16),
    {**_hello(), "extra": 1},
    {"hello": "pet.mpc.dealer", "version": PROTOCOL_VERSION, "party": 0},
    ["hello"],
    "pet.mpc.dealer",
    None,
]


def _expect_refusal(ch):
    """The dealer's answer to a bad hello: an error reply, then the connection closes."""
    reply = ch.recv(timeout=5)
    assert isinstance(reply, dict) and reply.get("error") and reply.get("seed") == b""


def test_thread_dealer_refuses_malformed_hellos_then_serves_a_real_session():
    d = _ThreadDealer(wait=5, hello_timeout=2)
    try:
        for hello in BAD_HELLOS:
            with d.connect() as ch:
                ch.send(hello)
                _expect_refusal(ch)
        _run_real_session(d.port)
        assert d.error is None and d.thread.is_alive()
        assert sum("refused" in line for line in d.lines) == len(BAD_HELLOS)
        _eventually(lambda: any("done" in line for line in d.lines))
    finally:
        d.close()


def _paired_raw_clients(port, sid):
    """Two raw dealer connections of session ``sid`` after a valid handshake."""
    chans = [tcp.connect("127.0.0.1", port, retry_for=10, timeout=10) for _ in range(2)]
    for p, ch in enumerate(chans):
        ch.send(_hello(p, sid))
    for ch in chans:
        reply = ch.recv(timeout=60)
        assert isinstance(reply.get("seed"), bytes) and len(reply["seed"]) == 16
    return chans


@pytest.mark.parametrize("request_", [
    ["get", [["triple", [1 << 14, 1 << 14]]]],        # 2^28 elements: above the limit
    ["get", [["triple", [1 << 10]]] * 40_000],        # many small specs summing above the limit
    ["get", [["triple", ["x"]]]],
    ["get", [["warp_drive", [3]]]],
    ["get", [["reuse_mul", 5, 0, 3, 4, 2]]],          # no such private matrix
    ["get", "triple"],
    ["fetch", []],
    [np.arange(4)],
    {"get": 1},
])
def test_malformed_or_oversized_requests_fail_that_session_only(request_):
    d = _ThreadDealer(wait=5, hello_timeout=2, max_elements=1 << 27)
    try:
        chans = _paired_raw_clients(d.port, b"r" * 16)
        for ch in chans:
            ch.send(request_)
        for ch in chans:
            reply = ch.recv(timeout=60)  # an error message, then the dealer hangs up
            assert isinstance(reply, dict) and "error" in reply
            ch.close()
        _run_real_session(d.port)
        assert d.error is None and d.thread.is_alive()
        assert any("failed" in line for line in d.lines)
        _eventually(lambda: any("done" in line for line in d.lines))
    finally:
        d.close()


def test_session_id_mismatch_never_pairs():
    d = _ThreadDealer(wait=4, hello_timeout=2)  # room for a loaded machine
    try:
        a, b = d.connect(), d.connect()
        a.send(_hello(0, b"1" * 16))
        b.send(_hello(1, b"2" * 16))
        for ch in (a, b):  # neither gets a seed: both are refused once the wait is over
            reply = ch.recv(timeout=60)
            assert reply.get("seed") == b"" and "did not reach" in reply["error"]
            ch.close()
        _run_real_session(d.port)
    finally:
        d.close()


def test_second_hello_for_the_same_party_of_a_session_is_refused():
    d = _ThreadDealer(wait=5, hello_timeout=2)
    try:
        a, b = d.connect(), d.connect()
        a.send(_hello(0, b"3" * 16))
        b.send(_hello(0, b"3" * 16))
        c = d.connect()
        c.send(_hello(1, b"3" * 16))  # party 1 pairs with whichever party 0 came first
        replies = sorted((a.recv(timeout=60), b.recv(timeout=60)), key=lambda r: "error" in r)
        assert len(replies[0]["seed"]) == 16 and len(c.recv(timeout=60)["seed"]) == 16
        assert replies[1]["seed"] == b"" and replies[1]["error"]  # refused (or, if it came last, timed out)
        for ch in (a, b, c):
            ch.close()
    finally:
        d.close()


def test_two_concurrent_sessions_connecting_interleaved_are_paired_by_session_id():
    d = _ThreadDealer(wait=10, hello_timeout=5)
    try:
        sids = {"A": b"A" * 16, "B": b"B" * 16}
        shapes = {"A": (3,), "B": (5,)}  # a cross-pairing would be a request mismatch
        clients, out, errors = {}, {}, []
        # connect and send hellos interleaved: A0, B1, B0, A1
        order = [("A", 0), ("B", 1), ("B", 0), ("A", 1)]
        for key, p in order:
            ch = d.connect()
            ch.send(_hello(p, sids[key]))
            clients[key, p] = ch

        def run(key, p):
            try:
                ch = clients[key, p]
                client = DealerClient.__new__(DealerClient)  # the hello is already sent: read the seed
                DealerClient.__init__(client, ch, p)
                reply = ch.recv(timeout=60)
                client._prg = mpc.prg.PRG(reply["seed"])
                client.session_id = sids[key]
                (m,) = client.get([Triple(shapes[key])])
                out[key, p] = {k: m[k] for k in m.keys() | {"c"}}
                client.close()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=run, args=kp) for kp in order]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        for key in sids:
            m0, m1 = out[key, 0], out[key, 1]
            np.testing.assert_array_equal(m0["c"] + m1["c"], (m0["a"] + m1["a"]) * (m0["b"] + m1["b"]))
            assert m0["a"].shape == shapes[key]
        # and two real Sessions at the same time, each with its own peer channel
        results = {}
        pairs = {key: local_pair(timeout=30) for key in ("P", "Q")}
        threads = [threading.Thread(target=_session, args=(d.port, p, pairs[key][p], results, key, shape))
                   for key, shape in (("P", (4,)), ("Q", (7,))) for p in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for key, n in (("P", 4), ("Q", 7)):
            x = np.arange(n, dtype=float) - 3.5
            for p in (0, 1):
                np.testing.assert_allclose(results[key, p][0], x * (-x / 2), atol=1e-3)
        _eventually(lambda: sum("done" in line for line in d.lines) == 4)
    finally:
        d.close()


def test_reuse_mul_must_match_its_setup():
    def client(p):
        def body(chans):
            c = DealerClient(chans[2], p, b"u" * 16)
            c.get([ReuseSetup(0, 3, 4, 7)])
            return [dict(m) for m in c.get([ReuseMul(7, 0, 3, 5, 2)])]  # n differs from the setup
        return body

    with pytest.raises(PetError):
        run_parties(client(0), client(1), lambda ch: dealer.serve(ch[0], ch[1]), timeout=30)


def test_every_kind_still_correlates_through_typed_specs():
    def party(p):
        def body(chans):
            c = DealerClient(chans[2], p, b"t" * 16)
            mats = c.get(TYPED)
            c.close()  # also receives the corrections
            return [dict(m) for m in mats]
        return body

    m0, m1, _ = run_parties(party(0), party(1), lambda ch: dealer.serve(ch[0], ch[1]), timeout=60)
    mm0, mm1 = m0[1], m1[1]
    np.testing.assert_array_equal(mm0["c"] + mm1["c"], matmul_u64(mm0["a"] + mm1["a"], mm0["b"] + mm1["b"]))
    np.testing.assert_array_equal(m1[7]["s"] + m0[7]["s"], matmul_u64(m1[6]["A"], m0[7]["b"]))


# -- the pet dealer command ---------------------------------------------------------------------

def test_pet_dealer_command_survives_garbage_and_oversized_requests():
    proc = subprocess.Popen([sys.executable, "-m", "pet", "dealer", "--listen", "127.0.0.1:0", "--sessions", "0",
                             "--wait", "5", "--max-elements", "100000"], stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)\s*$", proc.stderr.readline()).group(1))
        # garbage bytes instead of a transport hello
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"\xff" * 64 + b"GET / HTTP/1.1\r\n\r\n")
            read_until_closed(raw)
        # a malformed hello: party "x"
        with tcp.connect("127.0.0.1", port, retry_for=10, timeout=10) as ch:
            ch.send(_hello(party="x"))
            _expect_refusal(ch)
        # a valid pair asking for more than --max-elements
        chans = _paired_raw_clients(port, b"o" * 16)
        for ch in chans:
            ch.send(["get", [["triple", [100_000]]]])
        for ch in chans:
            reply = ch.recv(timeout=60)
            assert "above the dealer's limit" in reply["error"]
            ch.close()
        # a real session is served correctly
        _run_real_session(port)
        time.sleep(1.0)  # the dealer logs a session's end after both parties closed
        assert proc.poll() is None
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    assert "refused" in err and "failed" in err and "done" in err, err


def test_a_request_frame_above_the_dealers_receive_limit_is_refused_before_allocation():
    """The dealer reads requests under a receive limit (issue 13 item 5: per-protocol frame
    limits): a frame announcing more than REQUEST_MAX_BYTES fails that session only."""
    d = _ThreadDealer(wait=5, hello_timeout=2)
    try:
        chans = _paired_raw_clients(d.port, b"L" * 16)
        big = ["get", [["triple", [1]]], b"\0" * (dealer.REQUEST_MAX_BYTES + 1)]
        chans[1].send(["get", [["triple", [1]]]])
        try:
            chans[0].send(big)
        except PeerDisconnected:
            pass  # refused from the frame prefix: the dealer hung up while the body was still coming
        for ch in chans:
            try:
                reply = ch.recv(timeout=60)
            except Exception:  # noqa: BLE001 - the dealer may hang up without a reply
                reply = None
            assert reply is None or (isinstance(reply, dict) and "error" in reply)
            ch.close()
        _eventually(lambda: any("FrameTooLarge" in line or "max_frame" in line or "exceeds" in line
                                for line in d.lines))
        _run_real_session(d.port)
        assert d.error is None and d.thread.is_alive()
    finally:
        d.close()
