"""Real two-process runs over loopback TCP."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from pet.errors import PeerDisconnected
from pet.transport import tcp


def spawn(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)])


def test_array_round_trip_with_a_child_process():
    with tcp.Listener("127.0.0.1", 0, timeout=30) as listener:
        child = spawn(f"""
            from pet.transport import tcp
            with tcp.connect("127.0.0.1", {listener.port}, retry_for=30) as ch:
                x = ch.recv()
                ch.send({{"sum": int(x.sum()), "echo": x}})
        """)
        with listener.accept(accept_timeout=30) as channel:
            data = np.arange(3_000_000, dtype=np.int64)
            channel.send(data)
            reply = channel.recv()
        assert child.wait(30) == 0
    assert reply["sum"] == int(data.sum())
    assert np.array_equal(reply["echo"], data)


def test_peer_process_killed_mid_message():
    with tcp.Listener("127.0.0.1", 0, timeout=30) as listener:
        # the child announces a 400 MB frame, sends part of it, then is killed
        child = spawn(f"""
            import time
            import numpy as np
            from pet.transport import codec, tcp
            ch = tcp.connect("127.0.0.1", {listener.port}, retry_for=30)
            frame = codec.encode(np.zeros(50_000_000))
            ch.socket.sendall(frame.head)
            ch.socket.sendall(frame.buffers[0][: 10_000_000])
            print("sent", flush=True)
            time.sleep(60)
        """)
        with listener.accept(accept_timeout=30) as channel:
            time.sleep(0.5)
            os.kill(child.pid, signal.SIGKILL)
            start = time.monotonic()
            with pytest.raises(PeerDisconnected, match="middle of a message"):
                channel.recv()
            assert time.monotonic() - start < 10
        child.wait(10)
