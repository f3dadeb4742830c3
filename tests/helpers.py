"""Helpers shared by the whole test suite (import them as ``from tests.helpers import ...``;
``tests/conftest.py`` also exposes them as fixtures).

- :func:`free_port`: a loopback TCP port nobody listens on right now.
- :func:`pet_process` / :func:`run_pet`: the ``pet`` command line as a child process
  (``python -m pet ...`` with the interpreter running the tests).
- :func:`read_until_closed`: drain a raw socket until the other end closes it (or 10 s).
- :class:`RecordingChannel`: a channel proxy that records what one party receives and counts
  the ndarray payload it sends (for view/privacy tests and for cost tests).
"""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np

__all__ = ["free_port", "read_until_closed", "pet_process", "run_pet", "RecordingChannel", "payload_nbytes",
           "uint64_arrays"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> None:
    """Read and drop what ``sock`` receives until the other end closes it (or it fails, or
    ``timeout`` seconds pass without data): e.g. until a listener has refused a stranger."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass


def pet_process(*args, **popen_kwargs) -> subprocess.Popen:
    """Start ``python -m pet *args`` (arguments converted with ``str``) with text stdout and
    stderr pipes; read them with ``communicate(timeout=...)``."""
    kwargs = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kwargs.update(popen_kwargs)
    return subprocess.Popen([sys.executable, "-m", "pet", *map(str, args)], **kwargs)


def run_pet(*args, timeout: float = 120, **run_kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m pet *args`` to completion; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "pet", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **run_kwargs)


def uint64_arrays(msg) -> list:
    """Every uint64 ndarray inside a message (lists, tuples and dict values searched)."""
    if isinstance(msg, np.ndarray):
        return [msg] if msg.dtype == np.uint64 else []
    if isinstance(msg, (list, tuple)):
        return [a for m in msg for a in uint64_arrays(m)]
    if isinstance(msg, dict):
        return [a for m in msg.values() for a in uint64_arrays(m)]
    return []


def payload_nbytes(msg) -> int:
    """Bytes of ndarray payload in a message (lists, tuples and dict values searched): what a
    message costs without frame headers and small scalars such as labels."""
    if isinstance(msg, np.ndarray):
        return msg.nbytes
    if isinstance(msg, (list, tuple)):
        return sum(payload_nbytes(m) for m in msg)
    if isinstance(msg, dict):
        return sum(payload_nbytes(m) for m in msg.values())
    return 0


class RecordingChannel:
    """Proxy of a :class:`pet.transport.Channel` (or of anything with send/recv/exchange).

    ``received``: every message received, as returned to the caller.
    ``received_words``: a copy, taken on receipt, of every uint64 array received (so later
    in-place use by the receiver does not change the record); ``received_bytes()`` joins
    them as one uint8 array.
    ``payload_sent``: ndarray bytes sent (see :func:`payload_nbytes`).
    Everything else (``stats``, ``close``, ``timeout``...) is the wrapped channel's.
    """

    def __init__(self, channel):
        self.channel = channel
        self.received: list = []
        self.received_words: list = []
        self.payload_sent = 0

    def __getattr__(self, name):
        return getattr(self.channel, name)

    def _keep(self, msg):
        self.received.append(msg)
        self.received_words.extend(a.copy() for a in uint64_arrays(msg))
        return msg

    def send(self, msg, *args, **kwargs):
        self.payload_sent += payload_nbytes(msg)
        return self.channel.send(msg, *args, **kwargs)

    def recv(self, *args, **kwargs):
        return self._keep(self.channel.recv(*args, **kwargs))

    def exchange(self, msg, *args, **kwargs):
        self.payload_sent += payload_nbytes(msg)
        return self._keep(self.channel.exchange(msg, *args, **kwargs))

    def received_bytes(self) -> np.ndarray:
        """All uint64 words received, as bytes."""
        if not self.received_words:
            return np.zeros(0, dtype=np.uint8)
        return np.concatenate([a.ravel() for a in self.received_words]).view(np.uint8)
