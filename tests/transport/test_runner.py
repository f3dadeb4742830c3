"""run_parties: results, first exception wins, hangs become named timeouts."""

import threading
import time

import numpy as np
import pytest

from pet.errors import InputError, PartyTimeout, TransportError
from pet.transport import run_parties


def test_results_in_party_order_and_real_traffic():
    def p0(ch):
        ch.send(np.arange(5))
        return ch.recv() + 1

    def p1(ch):
        x = ch.recv()
        ch.send(x * 10)
        return int(x.sum())

    r0, r1 = run_parties(p0, p1, timeout=10)
    assert np.array_equal(r0, np.arange(5) * 10 + 1)
    assert r1 == 10


def test_first_exception_is_reraised_and_blocked_peer_is_released_promptly():
    released = threading.Event()

    class Boom(RuntimeError):
        pass

    def failing(ch):
        time.sleep(0.1)
        raise Boom("party 0 failed")

    def waiting(ch):
        try:
            ch.recv(timeout=None)  # would block forever without the runner closing channels
        except TransportError:  # PeerDisconnected or ChannelClosed, whichever close lands first
            released.set()
            raise

    start = time.monotonic()
    with pytest.raises(Boom, match="party 0 failed"):
        run_parties(failing, waiting, timeout=60)
    assert time.monotonic() - start < 5
    assert released.wait(5)


def test_hanging_party_is_named_in_a_timeout():
    stop = threading.Event()

    def quick(ch):
        return 1

    def stuck(ch):
        stop.wait(10)  # ignores its channel: simulates a compute hang

    start = time.monotonic()
    with pytest.raises(PartyTimeout, match="party1"):
        run_parties(quick, stuck, timeout=0.5)
    assert time.monotonic() - start < 5
    stop.set()


def test_three_parties_get_a_mesh_of_channels():
    def make(i):
        def fn(chans):
            assert chans[i] is None
            for ch in chans:
                if ch is not None:
                    ch.send(i)
            return sorted(ch.recv() for ch in chans if ch is not None)
        return fn

    assert run_parties(make(0), make(1), make(2), timeout=10) == [[1, 2], [0, 2], [0, 1]]


def test_bad_arguments():
    with pytest.raises(InputError):
        run_parties(lambda ch: 1)
    with pytest.raises(InputError):
        run_parties(lambda ch: 1, "not callable")
