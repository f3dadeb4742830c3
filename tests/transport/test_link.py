"""The shaped link: the latency and the bandwidth are both felt, as the model says.

Timing tests assert the model's lower bound exactly (a shaped message can never arrive
early) and a generous upper bound (shaping adds little beyond the model), so a loaded
machine cannot make them fail spuriously.
"""

import time

import numpy as np
import pytest

from pet.errors import InputError, PeerDisconnected
from pet.transport import Link, local_pair, run_parties, tcp
from tests.helpers import free_port

SLACK = 1.5  # seconds of scheduling noise tolerated above the model


def test_parse_and_validate():
    link = Link.parse("rtt=20ms,bw=100mbit")
    assert link == Link(rtt=0.02, bandwidth=100e6)
    assert Link.parse("rtt=0.5s") == Link(rtt=0.5)
    assert Link.parse("bw=1gbit").bandwidth == 1e9
    for bad in ("rtt=fast", "lat=20ms", "bw=100furlongs", ""):
        with pytest.raises(InputError):
            Link.parse(bad)
    with pytest.raises(InputError):
        Link(rtt=-1)
    with pytest.raises(InputError):
        Link(rtt=0.01, bandwidth=0)


def test_ping_pong_pays_one_round_trip_per_exchange():
    link, n = Link(rtt=0.05), 6

    def ping(ch):
        t0 = time.monotonic()
        for i in range(n):
            ch.send(i)
            assert ch.recv() == i
        return time.monotonic() - t0

    def pong(ch):
        for _ in range(n):
            ch.send(ch.recv())

    elapsed, _ = run_parties(ping, pong, link=link, timeout=60)
    assert elapsed >= n * link.rtt
    assert elapsed < n * link.rtt + SLACK


def test_bulk_transfer_pays_bandwidth_and_queues():
    link = Link(rtt=0.02, bandwidth=100e6)
    blocks = [np.arange(250_000, dtype=np.uint64) for _ in range(4)]  # 4 x 2 MB = 8 MB

    def sender(ch):
        t0 = time.monotonic()
        for b in blocks:
            ch.send(b)  # never blocks: the link queues them
        queued = time.monotonic() - t0
        ch.recv()
        return queued, time.monotonic() - t0, ch.stats.bytes_sent

    def receiver(ch):
        got = [ch.recv() for _ in blocks]
        ch.send("done")
        return got

    (queued, total, sent), got = run_parties(sender, receiver, link=link, timeout=60)
    for a, b in zip(got, blocks):
        np.testing.assert_array_equal(a, b)
    model = link.transmit_seconds(sent) + link.rtt  # all four back to back, then the reply's trip
    assert queued < model / 2
    assert total >= model
    assert total < model + SLACK


def test_messages_sent_before_close_are_delivered_then_disconnect():
    a, b = local_pair(timeout=10)
    a = Link(rtt=0.1).wrap(a)
    a.send("first")
    a.send("second")
    a.close()
    assert b.recv() == "first"
    assert b.recv() == "second"
    with pytest.raises(PeerDisconnected):
        b.recv()


def test_close_returns_after_the_queued_messages_are_delivered():
    # a process exits right after close(): the delivery thread (a daemon) dies with it, so
    # close() must not return while messages are still queued (Leiden over a 1 Gbit/s,
    # 20 ms link lost its last message this way and the peer saw a disconnection)
    a, b = local_pair(timeout=10)
    a = Link(rtt=0.4).wrap(a)
    a.send("last")
    t0 = time.monotonic()
    a.close()
    assert time.monotonic() - t0 >= 0.2  # it waited for the half round trip
    assert b.recv(timeout=0.05) == "last"  # already delivered when close() returned
    with pytest.raises(PeerDisconnected):
        b.recv(timeout=5)


def test_counters_are_the_underlying_channels():
    a, b = local_pair(timeout=10)
    sa = Link(rtt=0.0).wrap(a)
    sa.send(b"x" * 100)
    b.recv()
    assert sa.stats is a.stats
    assert a.stats.messages_sent == 1 and a.stats.bytes_sent == b.stats.bytes_received


def test_shaping_over_tcp(tmp_path):
    link = Link(rtt=0.06)
    port = free_port()
    import threading

    out = {}

    def server():
        with link.wrap(tcp.listen("127.0.0.1", port, timeout=10)) as ch:
            for _ in range(3):
                ch.send(ch.recv())

    t = threading.Thread(target=server)
    t.start()
    with link.wrap(tcp.connect("127.0.0.1", port, timeout=10, retry_for=10)) as ch:
        t0 = time.monotonic()
        for i in range(3):
            ch.send(i)
            assert ch.recv() == i
        out["elapsed"] = time.monotonic() - t0
    t.join(10)
    assert out["elapsed"] >= 3 * link.rtt
    assert out["elapsed"] < 3 * link.rtt + SLACK


def test_run_local_shapes_the_peer_and_the_dealer_links():
    from pet import mpc
    from pet.transport.link import ShapedChannel

    link, n = Link(rtt=0.1), 4

    def fn(session):
        kinds = (type(session.channel), type(session.source.channel))
        x = session.share(np.arange(3.0), owner=0) if session.party == 0 else session.share(None, owner=0)
        t0 = time.monotonic()
        for _ in range(n):  # one exchange with the peer each: half a round trip each way
            session.exchange("ping", None)
        peer_seconds = time.monotonic() - t0
        t0 = time.monotonic()
        y = mpc.mul(x, x)  # a triple from the dealer (a request and a reply), then one opening
        mul_seconds = time.monotonic() - t0
        return kinds, peer_seconds, mul_seconds, session.reveal(y)

    for kinds, peer_seconds, mul_seconds, y in mpc.run_local(fn, link=link, timeout=60):
        assert kinds == (ShapedChannel, ShapedChannel)
        assert n * link.rtt / 2 <= peer_seconds < n * link.rtt / 2 + SLACK
        assert mul_seconds >= link.rtt  # the dealer's round trip, then the peer's half round trip
        np.testing.assert_allclose(y, np.arange(3.0) ** 2, atol=1e-3)


def test_cli_link_option_shapes_what_a_party_sends():
    import argparse

    from pet.cli._net import add_tls_arguments, shaped
    from pet.transport.link import ShapedChannel

    parser = argparse.ArgumentParser()
    add_tls_arguments(parser)
    args = parser.parse_args(["--link", "rtt=20ms,bw=100mbit"])
    assert args.link == Link(rtt=0.02, bandwidth=100e6)
    a, b = local_pair(timeout=10)
    with shaped(args, a) as sa, b:
        assert isinstance(sa, ShapedChannel) and sa.link == args.link
    assert shaped(parser.parse_args([]), b) is b
    with pytest.raises(SystemExit):
        parser.parse_args(["--link", "rtt=fast"])


def test_pet_dealer_link_option_shapes_what_the_dealer_sends():
    """``pet dealer --link``: every reply of the dealer arrives at least half a round trip
    after it was sent (the parties' own sends are not shaped here)."""
    import argparse
    import threading

    from pet import mpc
    from pet.cli import dealer as dealer_cli

    parser = argparse.ArgumentParser()
    dealer_cli.register(parser.add_subparsers())
    port = free_port()
    args = parser.parse_args(["dealer", "--listen", f"127.0.0.1:{port}", "--sessions", "1",
                              "--link", "rtt=400ms", "--wait", "30"])
    assert args.link == Link(rtt=0.4)
    served = threading.Thread(target=dealer_cli.run, args=(args,), daemon=True)
    served.start()
    out = {}

    def party(p, peer):
        dch = tcp.connect("127.0.0.1", port, retry_for=10, timeout=30)
        with dch, mpc.Session(p, peer, dealer=dch) as s:
            a = s.share(np.arange(4.0) if p == 0 else None, owner=0)
            t0 = time.monotonic()
            y = a * a  # one dealer request and its (shaped) reply, then one opening
            out[p] = (time.monotonic() - t0, s.reveal(y))

    c0, c1 = local_pair(timeout=30)
    threads = [threading.Thread(target=party, args=(p, ch)) for p, ch in ((0, c0), (1, c1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    served.join(30)
    for p in (0, 1):
        seconds, y = out[p]
        assert 0.2 <= seconds < 0.2 + SLACK
        np.testing.assert_allclose(y, np.arange(4.0) ** 2, atol=1e-3)


def test_a_shaped_tls_channel_reads_and_writes_only_in_the_callers_thread(tmp_path):
    """OpenSSL connections must not be read and written from two threads at once: over
    TLS the shaped channel sends in the caller's thread (the delivery thread wrote while the
    caller read, and dealer-free benchmark runs over a shaped TLS link failed with
    PeerDisconnected); many large exchanges in both directions arrive intact."""
    import threading

    from pet.transport import make_test_pki, tcp

    pki = make_test_pki(tmp_path, names=("party0", "party1"))
    listener = tcp.Listener("127.0.0.1", 0, tls=pki["party0"], timeout=30)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("server", listener.accept(accept_timeout=30)))
    t.start()
    client = tcp.connect("127.0.0.1", listener.port, tls=pki["party1"], retry_for=10, timeout=30)
    t.join(30)
    listener.close()
    link = Link(rtt=0.002, bandwidth=2e9)
    ends = [link.wrap(box["server"]), link.wrap(client)]
    threads_used = [set(), set()]
    for i, end in enumerate(ends):
        inner_send = end.inner._send_frame

        def spy(frame, _i=i, _send=inner_send):
            threads_used[_i].add(threading.get_ident())
            return _send(frame)
        end.inner._send_frame = spy

    data = [np.arange(300_000, dtype=np.int64) * (p + 1) for p in (0, 1)]
    out, callers = [None, None], [None, None]

    def party(p):
        callers[p] = threading.get_ident()
        got = []
        for k in range(12):
            got.append(ends[p].exchange({"k": k, "x": data[p] + k}))
            ends[p].send(["small", k])
            got.append(ends[p].recv())
        out[p] = got

    workers = [threading.Thread(target=party, args=(p,)) for p in (0, 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    for end in ends:
        end.close()
    for p in (0, 1):
        q = 1 - p
        assert out[p] is not None, "a party did not finish"
        for k in range(12):
            assert out[p][2 * k]["k"] == k and np.array_equal(out[p][2 * k]["x"], data[q] + k)
            assert out[p][2 * k + 1] == ["small", k]
        assert threads_used[p] <= {callers[p]}, "a frame was written outside the caller's thread"
