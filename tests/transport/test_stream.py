"""Channels over real sockets: malformed frames, fragments, peer death, timeouts, big arrays."""

import socket
import struct
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pet.errors import ChannelClosed, ChannelTimeout, FrameTooLarge, PeerDisconnected, ProtocolError
from pet.transport import StreamChannel, codec, tcp
from tests.helpers import free_port

from .test_codec import same, values


@pytest.fixture
def raw_pair():
    """A StreamChannel on one end of a socketpair and the raw peer socket."""
    a, b = socket.socketpair()
    channel = StreamChannel(a, timeout=5, name="under-test")
    yield channel, b
    channel.close()
    b.close()


def prefix(header_len, body_len, magic=codec.MAGIC, version=codec.VERSION):
    return codec.PREFIX.pack(magic, version, 0, 0, header_len, body_len)


MALFORMED = {
    "bad magic": prefix(1, 0, magic=b"HTTP") + b"N",
    "bad version": prefix(1, 0, version=9) + b"N",
    "unknown tag": prefix(1, 0) + b"Z",
    "header does not parse (truncated int)": prefix(3, 0) + b"i\x00\x00",
    "trailing header bytes": prefix(2, 0) + b"NN",
    "bad dtype code": prefix(3, 8) + b"a\x63\x00" + bytes(8),
    "body size disagrees with header": prefix(11, 4) + b"a\x04\x01" + struct.pack("<Q", 1) + bytes(4),
    "list count beyond header": prefix(5, 0) + b"l\xff\xff\xff\x00",
    "invalid utf-8": prefix(7, 0) + b"s\x02\x00\x00\x00\xff\xfe",
    "nesting too deep": prefix(5 * 40 + 1, 0) + b"l\x01\x00\x00\x00" * 40 + b"N",
    "unhashable dict key": prefix(11, 0) + b"m\x01\x00\x00\x00l\x00\x00\x00\x00N",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_frames_are_rejected_and_close_the_channel(raw_pair, case):
    channel, peer = raw_pair
    peer.sendall(MALFORMED[case])
    start = time.monotonic()
    with pytest.raises(ProtocolError):
        channel.recv()
    assert time.monotonic() - start < 2
    assert channel.closed
    with pytest.raises(ChannelClosed):
        channel.recv()


@pytest.mark.parametrize("announced", [1 << 40, (4 << 30) + 1, (1 << 64) - 1])
def test_oversized_length_prefix_is_refused_before_allocating(raw_pair, announced):
    channel, peer = raw_pair
    peer.sendall(prefix(0, announced - codec.PREFIX.size) if announced < (1 << 63) else prefix(10, announced))
    tracemalloc.start()
    try:
        with pytest.raises(FrameTooLarge):
            channel.recv()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert channel.closed


def test_configured_frame_limit_is_enforced_on_receive():
    a, b = socket.socketpair()
    sender = StreamChannel(a, timeout=5)
    receiver = StreamChannel(b, timeout=5, max_frame_size=10_000)
    sender.send(np.zeros(2000))  # 16 KB: fits the kernel buffer, no reader needed
    with pytest.raises(FrameTooLarge):
        receiver.recv()
    sender.close()


def test_lying_header_length_allocates_only_what_arrives(raw_pair):
    channel, peer = raw_pair
    peer.sendall(prefix(60 << 20, 0) + b"l")
    peer.shutdown(socket.SHUT_WR)
    tracemalloc.start()
    try:
        with pytest.raises(PeerDisconnected, match="middle of a message"):
            channel.recv()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_peer_death_mid_message(raw_pair):
    channel, peer = raw_pair
    frame = codec.encode(np.arange(1000)).join()
    peer.sendall(frame[: len(frame) // 2])
    peer.close()
    with pytest.raises(PeerDisconnected, match="middle of a message"):
        channel.recv()
    assert channel.closed


def test_peer_closing_between_messages(raw_pair):
    channel, peer = raw_pair
    peer.close()
    with pytest.raises(PeerDisconnected):
        channel.recv()


def test_silent_peer_times_out_promptly_and_names_the_channel(raw_pair):
    channel, _peer = raw_pair
    start = time.monotonic()
    with pytest.raises(ChannelTimeout, match=r"under-test.*0\.3 s"):
        channel.recv(timeout=0.3)
    assert time.monotonic() - start < 2
    assert not channel.closed  # no byte arrived: the stream is still in sync


def test_peer_stalling_mid_frame_times_out_and_closes(raw_pair):
    channel, peer = raw_pair
    peer.sendall(codec.encode(np.arange(100)).join()[:30])
    with pytest.raises(ChannelTimeout, match="middle of a message"):
        channel.recv(timeout=0.3)
    assert channel.closed


def test_close_from_another_thread_unblocks_recv(raw_pair):
    channel, _peer = raw_pair
    threading.Timer(0.2, channel.close).start()
    start = time.monotonic()
    with pytest.raises(ChannelClosed):
        channel.recv(timeout=None)
    assert time.monotonic() - start < 2


@settings(max_examples=30, deadline=None)
@given(value=values, cuts=st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_frames_arriving_in_fragments(value, cuts):
    a, b = socket.socketpair()
    channel = StreamChannel(a, timeout=5)
    frame = codec.encode(value).join() + codec.encode("next").join()

    def dribble():
        pos, i = 0, 0
        while pos < len(frame):
            step = cuts[i % len(cuts)]
            b.sendall(frame[pos:pos + step])
            pos += step
            i += 1

    thread = threading.Thread(target=dribble)
    thread.start()
    try:
        assert same(value, channel.recv())
        assert channel.recv() == "next"
    finally:
        thread.join()
        channel.close()
        b.close()


def connected_pair(**kwargs):
    listener = tcp.Listener("127.0.0.1", 0, **kwargs)
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("server", listener.accept(accept_timeout=10)))
    thread.start()
    client = tcp.connect("127.0.0.1", listener.port, retry_for=10, **kwargs)
    thread.join()
    listener.close()
    return box["server"], client


@settings(max_examples=40, deadline=None)
@given(values)
def test_round_trip_over_loopback_tcp(value):
    server, client = connected_pair(timeout=10)
    with server, client:
        client.send(value)
        assert same(value, server.recv())
        server.send(value)
        assert same(value, client.recv())
        assert client.stats.bytes_sent == server.stats.bytes_received


def test_200_mb_array_over_loopback_tcp_both_directions_at_once():
    server, client = connected_pair(timeout=60)
    big = np.arange(25_000_000, dtype=np.uint64)  # 200 MB
    other = big[::-1].copy()
    box = {}
    with server, client:
        thread = threading.Thread(target=lambda: box.setdefault("s", server.exchange(other)))
        thread.start()
        got = client.exchange(big)
        thread.join()
        assert np.array_equal(got, other)
        assert np.array_equal(box["s"], big)
        assert client.stats.bytes_sent > 200_000_000


def test_connect_retries_until_the_listener_appears():
    port = free_port()
    box = {}

    def late_listener():
        time.sleep(0.5)
        box["server"] = tcp.listen("127.0.0.1", port, accept_timeout=10)

    thread = threading.Thread(target=late_listener)
    thread.start()
    client = tcp.connect("127.0.0.1", port, retry_for=10)
    thread.join()
    with client, box["server"] as server:
        client.send("hello")
        assert server.recv() == "hello"


def test_connect_gives_up_with_a_clear_message():
    port = free_port()
    from pet.errors import TransportError

    with pytest.raises(TransportError, match="could not connect"):
        tcp.connect("127.0.0.1", port, retry_for=0.3)


def test_listener_reports_a_peer_that_never_comes():
    with tcp.Listener("127.0.0.1", 0) as listener:
        with pytest.raises(ChannelTimeout, match="no peer connected"):
            listener.accept(accept_timeout=0.3)


def test_non_pet_peer_is_reported_at_connect_time():
    # the listener skips the stranger (it keeps waiting for the real peer) and names it when
    # its wait ends; the connecting side of a non-pet server gets a ProtocolError at once
    with tcp.Listener("127.0.0.1", 0) as listener:
        raw = socket.create_connection(("127.0.0.1", listener.port))
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ChannelTimeout, match="magic"):
            listener.accept(accept_timeout=2)
        raw.close()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def http_server():
        conn, _ = server.accept()
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(20))
        conn.recv(100)
        conn.close()

    thread = threading.Thread(target=http_server)
    thread.start()
    with pytest.raises(ProtocolError, match="magic"):
        tcp.connect("127.0.0.1", server.getsockname()[1], retry_for=5)
    thread.join(10)
    server.close()


# -- a few bytes must not commit gigabytes (issue 13, item 5) ------------------------------

_BIG = 256 << 20


def _bytes_header(n):
    return b"b" + struct.pack("<Q", n)


def _array_header(shape, code=5):  # code 5 = uint8
    return b"a" + bytes([code, len(shape)]) + b"".join(struct.pack("<Q", n) for n in shape)


@pytest.mark.parametrize("header", [_bytes_header(_BIG), _array_header((_BIG,)), _array_header((1 << 14, 1 << 14))],
                         ids=["bytes", "array", "2d-array"])
def test_announcing_256_mib_allocates_only_what_arrives(raw_pair, header):
    """A 30-byte frame head announcing a 256 MiB value, then 1 MiB of body, then silence:
    the receiver holds about what arrived, not what was announced."""
    channel, peer = raw_pair
    channel.timeout = 1.0
    sender = threading.Thread(target=peer.sendall, args=(prefix(len(header), _BIG) + header + bytes(1 << 20),),
                              daemon=True)
    tracemalloc.start()
    try:
        sender.start()
        with pytest.raises(ChannelTimeout, match="middle of a message"):
            channel.recv()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sender.join(5)
    assert peak < 16 << 20, peak
    assert channel.closed


def test_body_arriving_in_pieces_still_decodes_exactly():
    """Values larger than the first allocation step grow their buffer as data arrives."""
    a, b = socket.socketpair()
    sender, receiver = StreamChannel(a, timeout=20), StreamChannel(b, timeout=20)
    value = {"x": np.arange(3_000_001, dtype=np.int64).reshape(1, -1), "b": bytes(range(256)) * 40_000,
             "s": np.float32(2.5), "e": np.zeros((0, 7)), "t": (b"", b"abc")}
    thread = threading.Thread(target=sender.send, args=(value,))
    thread.start()
    got = receiver.recv()
    thread.join()
    assert same(got, value)
    assert got["x"].flags.writeable and got["x"].flags.c_contiguous
    sender.close(), receiver.close()


_ODD_SHAPES = {
    "zero next to 2**64-1": (0, (1 << 64) - 1),
    "2**64-1 next to zero": ((1 << 64) - 1, 0),
    "negative as int64": (1 << 63, 0),
    "product overflows int64": (1 << 32, 1 << 32, 0),
    "product overflows with itemsize": (0, 1 << 62, 4),
}


@pytest.mark.parametrize("case", sorted(_ODD_SHAPES))
def test_odd_array_shapes_are_protocol_errors(raw_pair, case):
    channel, peer = raw_pair
    header = _array_header(_ODD_SHAPES[case], code=4)  # int64
    frame = prefix(len(header), 0) + header
    with pytest.raises(ProtocolError):
        codec.decode(frame)
    peer.sendall(frame)
    start = time.monotonic()
    with pytest.raises(ProtocolError):
        channel.recv()
    assert time.monotonic() - start < 2
    assert channel.closed


def test_odd_shape_through_a_local_pair_is_a_protocol_error():
    from pet.transport import local_pair

    header = _array_header((0, (1 << 64) - 1))
    a, b = local_pair(timeout=5)
    a._outbox.put(bytearray(prefix(len(header), 0) + header))
    with pytest.raises(ProtocolError):
        b.recv()


def test_receive_limit_can_be_lowered_per_channel_and_restored():
    a, b = socket.socketpair()
    sender, receiver = StreamChannel(a, timeout=5), StreamChannel(b, timeout=5)
    with receiver.recv_limit(4096):
        sender.send(bytes(100))
        assert receiver.recv() == bytes(100)
    sender.send(bytes(10_000))  # the limit is back to max_frame_size
    assert receiver.recv() == bytes(10_000)
    receiver.max_recv_frame_size = 4096
    sender.send(bytes(10_000))
    with pytest.raises(FrameTooLarge):
        receiver.recv()
    assert receiver.closed
    sender.close()
    with pytest.raises(Exception, match="max_recv_frame_size"):
        receiver.max_recv_frame_size = 3


def test_interleaved_reader_allocates_only_what_arrives():
    """The TLS exchange path (one thread, non-blocking) reads frames with the same
    grow-as-it-arrives buffers."""
    from types import SimpleNamespace

    from pet.transport.stream import _IncomingFrame

    header = _bytes_header(_BIG)
    data = prefix(len(header), _BIG) + header + bytes(1 << 20)
    reader = _IncomingFrame(SimpleNamespace(max_recv_frame_size=codec.DEFAULT_MAX_FRAME_SIZE,
                                            max_depth=codec.DEFAULT_MAX_DEPTH))
    tracemalloc.start()
    try:
        pos = 0
        while pos < len(data):
            with reader.view() as view:
                n = min(view.nbytes, len(data) - pos, 65536)
                view[:n] = data[pos:pos + n]
            reader.advance(n)
            pos += n
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not reader.done
    assert peak < 16 << 20, peak
