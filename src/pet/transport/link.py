"""A shaped link: latency and bandwidth of a real network, on any channel.

Two organisations talk over links with tens of milliseconds of round trip and 100 Mbit/s
to 1 Gbit/s, never over loopback. :class:`Link` models one such link and
:meth:`Link.wrap` applies it to a :class:`~pet.transport.Channel` end, so every figure
can be measured for a WAN as well as for loopback, with the real protocol code.

The model, per direction (each end shapes what it sends):

1. a message of ``n`` bytes handed to ``send`` at time ``t`` starts transmission at
   ``start = max(t, busy)``, where ``busy`` is when the previous message of this direction
   finished transmitting (messages queue behind each other);
2. it finishes transmitting at ``busy = start + 8 n / bandwidth``;
3. it is delivered to the peer at ``busy + rtt / 2``.

``send`` never blocks (as with a large socket buffer): the frame is copied and handed to
a delivery thread that writes it to the underlying channel at its delivery time, in order.
Over TLS the connection must not be written by one thread while another reads it, so there
the sender's own thread waits until the frame is due and then sends it (``exchange``
through the inner channel's, which interleaves both directions in one thread): the
arrival times are the model's, but a sender is held for its own frames' delay.
Closing waits for nothing: queued messages are still delivered, then the underlying
channel is closed, so the peer sees every message and then the disconnect.

Shaping happens at the sender only, so it works across processes (each side wraps its own
end with the same :class:`Link`) and adds no bytes to the wire; counters
(:attr:`Channel.stats`) are those of the underlying channel. Where the underlying link is
itself slow (a real network), its time adds to the model's.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from pet.errors import InputError
from pet.transport import codec
from pet.transport.channel import UNSET, Channel

__all__ = ["Link", "ShapedChannel"]

_UNITS_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_UNITS_RATE = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bps": 1.0, "kbps": 1e3, "mbps": 1e6,
               "gbps": 1e9}


@dataclass(frozen=True)
class Link:
    """A network link: round-trip time ``rtt`` in seconds and ``bandwidth`` in bits per
    second per direction (``None``: unlimited).

    ``Link(rtt=0.02, bandwidth=100e6)`` is a 100 Mbit/s link with 20 ms round trips; a
    message of ``n`` bytes then arrives ``0.01 + 8 n / 1e8`` seconds after it is sent,
    later if earlier messages are still being transmitted.
    """

    rtt: float = 0.0
    bandwidth: float | None = None

    def __post_init__(self):
        if isinstance(self.rtt, bool) or not isinstance(self.rtt, (int, float)) or not 0 <= self.rtt < 3600:
            raise InputError(f"Link rtt must be a number of seconds in [0, 3600), got {self.rtt!r}")
        if self.bandwidth is not None and (isinstance(self.bandwidth, bool)
                                           or not isinstance(self.bandwidth, (int, float))
                                           or not self.bandwidth >= 1e3):
            raise InputError(f"Link bandwidth must be None or bits per second >= 1000, got {self.bandwidth!r}")

    @classmethod
    def parse(cls, text: str) -> Link:
        """A link from ``"rtt=20ms,bw=100mbit"`` (units: s/ms/us; bit/kbit/mbit/gbit)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("a link is written like rtt=20ms,bw=100mbit")
        rtt, bw = 0.0, None
        for part in text.split(","):
            key, _, value = part.strip().partition("=")
            key, value = key.strip().lower(), value.strip().lower()
            m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)", value)
            if not m:
                raise InputError(f"cannot read {part.strip()!r} in link {text!r} (e.g. rtt=20ms,bw=100mbit)")
            number, unit = float(m.group(1)), m.group(2)
            if key == "rtt":
                if unit not in _UNITS_TIME:
                    raise InputError(f"rtt unit must be one of {sorted(_UNITS_TIME)}, got {unit!r}")
                rtt = number * _UNITS_TIME[unit]
            elif key in ("bw", "bandwidth"):
                if unit not in _UNITS_RATE:
                    raise InputError(f"bandwidth unit must be one of {sorted(_UNITS_RATE)}, got {unit!r}")
                bw = number * _UNITS_RATE[unit]
            else:
                raise InputError(f"unknown link setting {key!r}: use rtt= and bw=")
        return cls(rtt=rtt, bandwidth=bw)

    def transmit_seconds(self, nbytes: int) -> float:
        """Seconds to put ``nbytes`` on the wire at this bandwidth."""
        return 0.0 if self.bandwidth is None else 8.0 * nbytes / self.bandwidth

    def wrap(self, channel: Channel) -> ShapedChannel:
        """``channel`` with what it sends shaped by this link."""
        return ShapedChannel(channel, self)

    def __str__(self) -> str:
        bw = "unlimited" if self.bandwidth is None else f"{self.bandwidth / 1e6:g} Mbit/s"
        return f"rtt {self.rtt * 1e3:g} ms, {bw}"


#: Seconds :meth:`ShapedChannel.close` waits beyond the queued messages' delivery time.
CLOSE_SLACK = 10.0


class ShapedChannel(Channel):
    """A channel end whose sends are delayed as :class:`Link` says (see the module doc).

    Receives, counters, limits and attributes such as ``peer_name`` are the underlying
    channel's.
    """

    def __init__(self, inner: Channel, link: Link):
        if not isinstance(inner, Channel):
            raise InputError("ShapedChannel wraps a pet.transport.Channel")
        if not isinstance(link, Link):
            raise InputError("link must be a pet.transport.Link")
        super().__init__(timeout=inner.timeout, max_frame_size=inner.max_frame_size, max_depth=inner.max_depth,
                         name=inner.name)
        self.inner = inner
        self.link = link
        self.stats = inner.stats
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._busy_until = 0.0
        self._error: BaseException | None = None
        self._closing = False
        # An OpenSSL connection must not be read and written from two threads at once (see
        # pet.transport.stream): over TLS the delay is waited out in the sender's own thread
        # and the frame then goes through the inner channel (its exchange interleaves the two
        # directions in one thread); one lock serialises this channel's sends and receives.
        self._sync = bool(getattr(inner, "is_tls", False))
        self._thread = None
        if self._sync:
            self._recv_lock = self._send_lock
        else:
            self._thread = threading.Thread(target=self._deliver, name=f"{inner.name}-link", daemon=True)
            self._thread.start()

    def __getattr__(self, name):  # attributes of the underlying channel (peer_name, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def timeout(self):
        return self.inner.timeout if "inner" in self.__dict__ else self.__dict__.get("_timeout")

    @timeout.setter
    def timeout(self, value):
        if "inner" in self.__dict__:
            self.inner.timeout = value
        self.__dict__["_timeout"] = value

    def exchange(self, obj, timeout=UNSET):
        """Sending never blocks here, so no helper thread is needed: send, then receive.
        Over TLS: wait until the frame is due, then the inner channel's exchange."""
        if not self._sync:
            self.send(obj)
            return self.recv(timeout)
        with self._send_lock:
            if self._error is not None:
                raise self._error
            self._wait_due(self._encode(obj).nbytes)
            return self.inner.exchange(obj, timeout)

    def _due(self, nbytes: int) -> float:
        """Book the link for a frame of ``nbytes`` sent now; its delivery time."""
        now = time.monotonic()
        with self._cond:
            start = max(now, self._busy_until)
            self._busy_until = start + self.link.transmit_seconds(nbytes)
            return self._busy_until + self.link.rtt / 2

    def _wait_due(self, nbytes: int) -> None:
        delay = self._due(nbytes) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    # -- Channel implementation -----------------------------------------------------------

    def _send_frame(self, frame: codec.EncodedFrame) -> None:
        if self._error is not None:
            raise self._error
        if self._sync:  # TLS: in this thread, once due (the caller holds the channel's lock)
            self._wait_due(frame.nbytes)
            self.inner._send_frame(frame)
            return
        copy = codec.EncodedFrame(head=frame.join(), buffers=(), nbytes=frame.nbytes)
        due = self._due(frame.nbytes)
        with self._cond:
            self._queue.append((due, copy))
            self._cond.notify()

    def _recv_value(self, timeout):
        return self.inner._recv_value(timeout)

    def _close(self) -> None:
        """Deliver what is queued, then close the underlying channel, before returning (as a
        real link keeps the bytes already in flight): the delivery thread is a daemon, so a
        process that exits right after ``close()`` would otherwise drop its last messages
        and the peer would see a disconnection instead of them. Bounded by the queue's own
        delivery time plus :data:`CLOSE_SLACK` seconds."""
        if self._sync:  # nothing is queued: every frame was sent in its sender's thread
            try:
                self.inner.close()
            except Exception:  # noqa: BLE001, S110 - closing must not fail
                pass
            return
        with self._cond:
            self._closing = True
            self._cond.notify()
            until = max(self._busy_until + self.link.rtt / 2 - time.monotonic(), 0.0)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=until + CLOSE_SLACK)

    def _deliver(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    break
                due, frame = self._queue[0]
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with self._cond:
                self._queue.popleft()
            try:
                if not self.inner.closed:
                    self.inner._send_frame(frame)
            except BaseException as exc:  # noqa: BLE001 - raised at the sender's next send
                self._error = exc
                with self._cond:
                    self._queue.clear()
                break
        try:
            self.inner.close()
        except Exception:  # noqa: BLE001, S110 - closing must not fail
            pass
