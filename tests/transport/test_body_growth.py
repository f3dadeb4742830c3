"""A received value larger than the first body step grows its buffer in place (realloc),
not by allocating a bigger buffer and copying at every step: the old ``_grow(self._buf,
...)`` call held a second reference, so numpy's resize always refused and every 16 MB Beaver
opening was received as 4 + 8 + 16 MB of fresh buffers and 12 MB of copies. The bounded
growth (about what arrived, never what was announced) is unchanged and tested in
test_stream.py."""

import socket
import threading

import numpy as np

from pet.transport import codec
from pet.transport.stream import StreamChannel


def test_large_value_grows_in_place_without_copying(monkeypatch):
    def no_copy(buf, size):
        raise AssertionError("the body buffer was grown by a copy")

    monkeypatch.setattr(codec, "_grow", no_copy)
    a, b = socket.socketpair()
    sender, receiver = StreamChannel(a, timeout=30), StreamChannel(b, timeout=30)
    value = np.arange((3 * codec.BODY_STEP) // 8 + 11, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    thread = threading.Thread(target=sender.send, args=([value, b"tail"],), daemon=True)
    thread.start()
    got = receiver.recv()
    thread.join(30)
    np.testing.assert_array_equal(got[0], value)
    assert got[1] == b"tail"
    assert got[0].flags.writeable
    sender.close()
    receiver.close()


def test_body_reader_falls_back_to_a_copy_when_the_buffer_is_shared():
    slot = codec._Slot("a", np.dtype(np.uint64), (6,), 48)
    reader = codec.BodyReader([slot], step=16)
    with reader.view() as view:
        view[:] = bytes(range(16))
    held = reader._buf[:4]  # another reference: resize in place must not happen
    reader.advance(16)
    assert held.tolist() == list(range(4))
    while not reader.done:
        with reader.view() as view:
            n = view.nbytes
            view[:] = bytes([7] * n)
        reader.advance(n)
    out = reader.buffers[0]
    assert out.shape == (6,) and out.view(np.uint8)[:16].tolist() == list(range(16))
