"""The :class:`Channel` interface and the in-memory channel pair.

A channel is one end of a reliable, ordered, bidirectional message pipe between two
parties. ``send(obj)`` encodes ``obj`` with :mod:`pet.transport.codec` (never pickle);
``recv()`` blocks until one whole message has arrived, at most ``timeout`` seconds of
silence. Both ends count what crosses them in :attr:`Channel.stats`.

Symmetric protocols in which both parties send a large message and then receive the
other's must use :meth:`Channel.exchange`: with real sockets, two simultaneous large
``send`` calls would both block once the kernel buffers fill.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass, fields

import numpy as np

from pet.errors import (
    PEER_FAILURE_REASONS,
    ChannelClosed,
    ChannelTimeout,
    InputError,
    PeerDisconnected,
    failure_reason,
)
from pet.transport import codec

__all__ = ["Channel", "ChannelStats", "LocalChannel", "local_pair", "DEFAULT_TIMEOUT"]

#: Default seconds a blocking receive waits for the peer before giving up.
DEFAULT_TIMEOUT = 120.0

UNSET = object()

#: Frames at most this large are sent before receiving in :meth:`Channel.exchange`;
#: larger ones are sent from a helper thread so both sides can send at once.
_EXCHANGE_INLINE_BYTES = 64 << 10


@dataclass
class ChannelStats:
    """Traffic counters of one channel end. Bytes include frame headers."""

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0

    def snapshot(self) -> ChannelStats:
        """A frozen copy, e.g. to measure one protocol: ``after - before``."""
        return ChannelStats(**{f.name: getattr(self, f.name) for f in fields(self)})

    def __sub__(self, other: ChannelStats) -> ChannelStats:
        return ChannelStats(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    @property
    def bytes_total(self) -> int:
        return self.bytes_sent + self.bytes_received


def check_timeout(timeout):
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise InputError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return None if timeout is None else float(timeout)


class Channel:
    """One end of a message channel between two parties.

    Parameters (keyword-only, shared by all implementations)
    ----------
    timeout : float or None
        Seconds a blocking ``recv`` waits (for the first byte of a message, and between
        pieces of it); ``None`` waits forever. Default :data:`DEFAULT_TIMEOUT`.
    max_frame_size : int
        Largest frame accepted or sent, in bytes (prefix + header + body).
    max_depth : int
        Deepest container nesting accepted or sent.
    name : str
        Used in error messages ("channel 'party0->party1' timed out after 5.0 s").

    A protocol that knows how large the peer's messages can be should lower the receive
    limit below ``max_frame_size`` -- for good with :attr:`max_recv_frame_size`, or for a
    few messages with ``with channel.recv_limit(n): ...`` -- so a lying peer is refused at
    the 20-byte frame prefix.

    :attr:`peer_name` is the name the peer proved with its TLS certificate (one of the
    pinned names, see :class:`~pet.transport.tls.TLSConfig`); ``None`` for plain TCP and
    in-memory channels, whose peer is not authenticated.

    Subclasses implement ``_send_frame(frame)``, ``_recv_value(timeout)`` and ``_close()``.
    """

    def __init__(self, *, timeout=DEFAULT_TIMEOUT, max_frame_size: int = codec.DEFAULT_MAX_FRAME_SIZE,
                 max_depth: int = codec.DEFAULT_MAX_DEPTH, name: str = "channel"):
        self.timeout = check_timeout(timeout)
        if not isinstance(max_frame_size, int) or max_frame_size < 64:
            raise InputError(f"max_frame_size must be an int >= 64, got {max_frame_size!r}")
        if not isinstance(max_depth, int) or max_depth < 1:
            raise InputError(f"max_depth must be a positive int, got {max_depth!r}")
        self.max_frame_size = max_frame_size
        self._recv_limit: int | None = None
        self.max_depth = max_depth
        self.name = name
        self.stats = ChannelStats()
        self._closed = False
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()

    #: The name the peer's TLS certificate carries (checked against the pinned names), or
    #: None when the peer is not authenticated (plain TCP, in-memory).
    peer_name: str | None = None

    #: How error messages call the other end: "the peer" (the other party) by default;
    #: the command line sets "the dealer" on a party's dealer link.
    peer_label: str = "the peer"

    #: Seconds :meth:`fail` may spend sending its goodbye and waiting for the peer to close.
    GOODBYE_SECONDS = 2.0

    # -- public API ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def max_recv_frame_size(self) -> int:
        """Largest incoming frame accepted (bytes): ``max_frame_size`` unless lowered.
        Assign an int (>= 64) to lower it, ``None`` to go back to ``max_frame_size``."""
        limit = self.max_frame_size
        return limit if self._recv_limit is None else min(limit, self._recv_limit)

    @max_recv_frame_size.setter
    def max_recv_frame_size(self, value: int | None) -> None:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 64):
            raise InputError(f"max_recv_frame_size must be an int >= 64 or None, got {value!r}")
        self._recv_limit = value

    @contextlib.contextmanager
    def recv_limit(self, nbytes: int):
        """Within the ``with`` block, refuse incoming frames above ``nbytes`` (prefix, header
        and body) with :class:`~pet.errors.FrameTooLarge`; the previous limit comes back
        afterwards. For protocol steps whose message sizes are known in advance."""
        previous = self._recv_limit
        self.max_recv_frame_size = nbytes if previous is None else min(nbytes, previous)
        try:
            yield self
        finally:
            self._recv_limit = previous

    def send(self, obj) -> None:
        """Send one message. Raises :class:`~pet.errors.PetTypeError` for a value the wire
        does not accept, :class:`~pet.errors.FrameTooLarge` above ``max_frame_size``, and
        :class:`~pet.errors.PeerDisconnected` if the peer is gone."""
        frame = self._encode(obj)
        with self._send_lock:
            self._ensure_open()
            self._send_frame(frame)
            self.stats.bytes_sent += frame.nbytes
            self.stats.messages_sent += 1

    def recv(self, timeout=UNSET):
        """Receive one message, waiting at most ``timeout`` seconds of silence (default:
        the channel's timeout; ``None`` waits forever). Raises
        :class:`~pet.errors.ChannelTimeout`, :class:`~pet.errors.PeerDisconnected`, or
        :class:`~pet.errors.ProtocolError` for a malformed frame (the channel is then
        closed)."""
        timeout = self.timeout if timeout is UNSET else check_timeout(timeout)
        with self._recv_lock:
            self._ensure_open()
            value, nbytes = self._recv_value(timeout)
            self.stats.bytes_received += nbytes
            self.stats.messages_received += 1
            return value

    def exchange(self, obj, timeout=UNSET):
        """Send ``obj`` and receive the peer's message, safely when both sides do this at
        the same time with large messages. Returns the received message."""
        frame = self._encode(obj)
        if frame.nbytes <= _EXCHANGE_INLINE_BYTES:
            with self._send_lock:
                self._ensure_open()
                self._send_frame(frame)
                self.stats.bytes_sent += frame.nbytes
                self.stats.messages_sent += 1
            return self.recv(timeout)
        error: list[BaseException] = []

        def sender():
            try:
                with self._send_lock:
                    self._ensure_open()
                    self._send_frame(frame)
                    self.stats.bytes_sent += frame.nbytes
                    self.stats.messages_sent += 1
            except BaseException as exc:  # re-raised in the caller below
                error.append(exc)

        thread = threading.Thread(target=sender, name=f"{self.name}-exchange-send", daemon=True)
        thread.start()
        try:
            value = self.recv(timeout)
        except BaseException:
            thread.join(0.5)
            if error:
                raise error[0] from None
            raise
        thread.join()
        if error:
            raise error[0]
        return value

    def close(self) -> None:
        """Close this end. The peer's pending and later ``recv`` calls raise
        :class:`~pet.errors.PeerDisconnected`; this side's raise
        :class:`~pet.errors.ChannelClosed`. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._close()

    def fail(self, reason: str) -> None:
        """Tell the peer this side stops early, then close: a best-effort goodbye control
        frame carrying ``reason``, a key of :data:`pet.errors.PEER_FAILURE_REASONS` (a
        fixed category such as ``"duplicate-keys"`` or ``"interrupted"``, never error text
        or data). The peer's pending or next ``recv`` raises :class:`~pet.errors.PeerFailed`
        whose message says why ("the peer failed: duplicate keys in its input"). Never
        raises for a gone peer; does nothing on a closed channel."""
        if reason not in PEER_FAILURE_REASONS:
            raise InputError(f"fail: reason must be one of {sorted(PEER_FAILURE_REASONS)}, got {reason!r}")
        if self._closed:
            return
        try:
            if self._send_lock.acquire(timeout=self.GOODBYE_SECONDS):
                try:
                    self._send_goodbye(codec.encode_goodbye(reason))
                finally:
                    self._send_lock.release()
        except Exception:  # noqa: BLE001, S110 - best effort: the peer may already be gone
            pass
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Leaving a ``with`` block by an exception sends the peer a goodbye naming the
        category of the failure (:meth:`fail`, :func:`pet.errors.failure_reason`; "dealer"
        when the exception came from another channel that is a dealer link); else close."""
        if exc is None:
            self.close()
        else:
            self.fail(self._reason_for(exc))
        return False

    def _reason_for(self, exc: BaseException) -> str:
        source = raised_by_channel(exc)
        if source is not None and source is not self and source.peer_label == "the dealer":
            return "dealer"
        return failure_reason(exc)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.name!r} {state}>"

    # -- helpers for subclasses -----------------------------------------------------------

    def _encode(self, obj) -> codec.EncodedFrame:
        frame = codec.encode(obj, max_depth=self.max_depth)
        if frame.nbytes > self.max_frame_size:
            from pet.errors import FrameTooLarge

            raise FrameTooLarge(
                f"{self.name}: message of {frame.nbytes} bytes exceeds max_frame_size={self.max_frame_size}"
            )
        return frame

    def _ensure_open(self) -> None:
        if self._closed:
            raise ChannelClosed(f"{self.name}: the channel is closed")

    def _timeout_error(self, timeout) -> ChannelTimeout:
        return ChannelTimeout(f"{self.name}: no message from {self.peer_label} within {timeout:g} s "
                              f"({self.peer_label} may have stopped: check its output or log)")

    def _send_goodbye(self, frame: codec.EncodedFrame) -> None:
        """Send the goodbye frame (the send lock is held); subclasses may shorten timeouts
        and wait briefly for the peer to read it before the close."""
        self._send_frame(frame)

    # -- to implement ---------------------------------------------------------------------

    def _send_frame(self, frame: codec.EncodedFrame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _recv_value(self, timeout):  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def raised_by_channel(exc: BaseException):
    """The innermost :class:`Channel` whose method raised ``exc`` (or the exception it was
    raised while handling), found from the traceback; None if no channel method did."""
    seen = 0
    while exc is not None and seen < 4:
        found = None
        tb = exc.__traceback__
        while tb is not None:
            candidate = tb.tb_frame.f_locals.get("self")
            if isinstance(candidate, Channel):
                found = candidate
            tb = tb.tb_next
        if found is not None:
            return found
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


_CLOSED = object()


class LocalChannel(Channel):
    """In-memory channel end for parties running as threads of one process.

    Messages go through the same codec as on a socket (so what works here works over TCP,
    and the byte counts are the real ones), with a single copy of array data.
    """

    def __init__(self, inbox: queue.SimpleQueue, outbox: queue.SimpleQueue, **kwargs):
        super().__init__(**kwargs)
        self._inbox = inbox
        self._outbox = outbox
        self._peer_closed = False

    def exchange(self, obj, timeout=UNSET):
        """In memory a send never blocks, so no helper thread is needed: send, then receive."""
        self.send(obj)
        return self.recv(timeout)

    def _send_frame(self, frame):
        if self._peer_closed:
            raise PeerDisconnected(f"{self.name}: the peer closed the channel")
        # The one copy (the sender may reuse its arrays). np.empty + copyto is about twice
        # as fast as filling a bytearray, which zeroes its memory first.
        data = np.empty(frame.nbytes, dtype=np.uint8)
        pos = len(frame.head)
        data[:pos] = np.frombuffer(frame.head, dtype=np.uint8)
        for buf in frame.buffers:
            if buf.nbytes:
                data[pos:pos + buf.nbytes] = np.frombuffer(buf, dtype=np.uint8)
                pos += buf.nbytes
        self._outbox.put(data)

    def _recv_value(self, timeout):
        if self._peer_closed:
            raise PeerDisconnected(f"{self.name}: the peer closed the channel")
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise self._timeout_error(timeout) from None
        if item is _CLOSED:
            if self._closed:
                raise ChannelClosed(f"{self.name}: the channel is closed")
            self._peer_closed = True
            raise PeerDisconnected(f"{self.name}: the peer closed the channel")
        # a bytearray, so arrays decode as writable views without a second copy
        value = codec.decode(memoryview(item), max_frame_size=self.max_recv_frame_size, max_depth=self.max_depth)
        return value, len(item)

    def _close(self):
        self._outbox.put(_CLOSED)  # the peer's recv raises PeerDisconnected
        self._inbox.put(_CLOSED)  # our own blocked recv (another thread) wakes up


def local_pair(*, timeout=DEFAULT_TIMEOUT, names: tuple[str, str] = ("party0", "party1"), **kwargs):
    """Two connected in-memory channel ends ``(end0, end1)``.

    Keyword arguments (``timeout``, ``max_frame_size``, ``max_depth``) apply to both ends.
    """
    a_to_b: queue.SimpleQueue = queue.SimpleQueue()
    b_to_a: queue.SimpleQueue = queue.SimpleQueue()
    end0 = LocalChannel(b_to_a, a_to_b, timeout=timeout, name=f"{names[0]}<->{names[1]}", **kwargs)
    end1 = LocalChannel(a_to_b, b_to_a, timeout=timeout, name=f"{names[1]}<->{names[0]}", **kwargs)
    return end0, end1
