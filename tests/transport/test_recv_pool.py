"""Large received values reuse the memory of earlier ones once the caller dropped them.

Over loopback the page faults of fresh receive buffers (about 4,000 per 16 MB Beaver
opening, each page zeroed by the kernel) were a third of a party's CPU time in the three
process 10^6 multiplication. Two fixes: ``codec.fill`` no longer builds a self-referencing
closure (a reference cycle that kept every received buffer alive until the garbage
collector ran), and ``StreamChannel`` keeps finished large buffers in a bounded
``codec.RecvPool`` and receives into one again once nothing else refers to it."""

import gc
import socket
import threading
import weakref

import numpy as np
import pytest

from pet.transport import codec
from pet.transport.stream import StreamChannel

N = (2 * codec.RECV_POOL_MIN_BYTES) // 8  # a value large enough to be pooled


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    sender, receiver = StreamChannel(a, timeout=30), StreamChannel(b, timeout=30)
    yield sender, receiver
    sender.close()
    receiver.close()


def _transfer(sender, receiver, obj):
    thread = threading.Thread(target=sender.send, args=(obj,), daemon=True)
    thread.start()
    got = receiver.recv()
    thread.join(30)
    return got


def _values(k):
    return np.arange(N, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(k)


def test_fill_leaves_no_reference_cycle_holding_the_buffers():
    slot = codec._Slot("a", np.dtype(np.uint64), (4,), 32)
    raw = np.arange(32, dtype=np.uint8)
    ref = weakref.ref(raw)
    value = codec.fill([slot, {"k": (slot,)}], [slot], [raw.view(np.uint64)])
    del raw
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        del value
        assert ref() is None  # freed by reference counting alone (the old closure needed gc)
    finally:
        if gc_was_enabled:
            gc.enable()


def test_a_dropped_value_is_received_into_the_same_memory_again(pair):
    sender, receiver = pair
    gc.disable()
    try:
        first = _transfer(sender, receiver, [_values(1), b"tail"])
        np.testing.assert_array_equal(first[0], _values(1))
        address = first[0].__array_interface__["data"][0]
        del first
        second = _transfer(sender, receiver, [_values(2), b"tail"])
    finally:
        gc.enable()
    np.testing.assert_array_equal(second[0], _values(2))
    assert second[1] == b"tail"
    assert second[0].flags.writeable
    assert receiver._recv_pool.reused == 1
    assert second[0].__array_interface__["data"][0] == address


def test_a_value_still_held_is_never_overwritten(pair):
    sender, receiver = pair
    held = _transfer(sender, receiver, [_values(1)])[0]
    view = held[10:20]  # a view holds the buffer too
    del held
    got = _transfer(sender, receiver, [_values(2)])[0]
    np.testing.assert_array_equal(view, _values(1)[10:20])
    np.testing.assert_array_equal(got, _values(2))
    assert receiver._recv_pool.reused == 0


def test_pool_is_bounded_and_ignores_small_and_much_smaller_values():
    pool = codec.RecvPool(max_bytes=3 << 20, min_bytes=1 << 20)
    small = np.empty((1 << 20) - 1, dtype=np.uint8)
    pool.offer(small)
    assert pool.nbytes == 0  # below min_bytes: never pooled
    held = np.empty(2 << 20, dtype=np.uint8)
    pool.offer(held)
    newer = np.empty(2 << 20, dtype=np.uint8)
    pool.offer(newer)  # over max_bytes: the oldest is forgotten (even though still held)
    assert pool.nbytes == 2 << 20 and pool._bufs[0] is newer
    del held, newer
    assert pool.take(1 << 19) is None  # below min_bytes
    assert pool.take((1 << 20) - 1) is None  # the 2 MiB buffer is more than twice as large
    assert pool.take(3 << 20) is None  # too small for it
    got = pool.take(1 << 20)
    assert got is not None and got.size == 2 << 20
    assert pool.take(1 << 20) is None  # held by `got`: not handed out twice
