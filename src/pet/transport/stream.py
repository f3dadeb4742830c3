"""A :class:`~pet.transport.channel.Channel` over a connected stream socket (TCP or TLS).

Sending hands the kernel the frame head and then a ``memoryview`` of each array buffer
(``sendall``; no join, no copy). Receiving reads the 20-byte prefix, checks the announced
size against the channel's receive limit (``max_frame_size``, or a lower
``max_recv_frame_size``) *before* allocating, parses the header, and ``recv_into``\\ s the
body straight into numpy buffers that grow in bounded steps as the bytes arrive (at most
about twice what the peer actually sent is ever allocated, whatever the header announced).
A large value is received into the buffer of an earlier one once nothing else refers to it
(:class:`~pet.transport.codec.RecvPool`, 64 MiB per channel): no fresh pages, so no page
faults, for repeated large messages.

A malformed frame, a TLS failure, or a timeout in the middle of a frame leaves the byte
stream at an unknown position, so the channel closes itself before raising. A timeout
before the first byte of a frame leaves the channel usable.
"""

from __future__ import annotations

import select
import socket
import ssl
import time

from pet.errors import ChannelClosed, ChannelTimeout, PeerDisconnected, PetError, TLSError, TransportError
from pet.transport import codec
from pet.transport.channel import UNSET, Channel, check_timeout

__all__ = ["StreamChannel"]

_SMALL_FRAME = 64 << 10
_SOCKET_BUFFER = 4 << 20
_HEADER_CHUNK = 1 << 20
_TLS_CHUNK = 256 << 10


def tune_socket(sock: socket.socket) -> None:
    """TCP_NODELAY (protocol rounds are latency-bound) and large kernel buffers."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # pragma: no cover - not TCP (e.g. a socketpair in tests)
        pass
    for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, _SOCKET_BUFFER)
        except OSError:  # pragma: no cover
            pass


class StreamChannel(Channel):
    """Channel over a connected socket (plain or ``ssl.SSLSocket``).

    Extra parameter: ``send_timeout`` -- seconds a ``send`` may block because the peer is
    not reading (default: the receive ``timeout``).
    """

    def __init__(self, sock: socket.socket, *, send_timeout=None, **kwargs):
        super().__init__(**kwargs)
        self._sock = sock
        self.send_timeout = send_timeout
        self._prefix = bytearray(codec.PREFIX.size)
        #: large receive buffers of earlier messages, reused once the caller dropped them
        self._recv_pool = codec.RecvPool()
        if isinstance(sock, ssl.SSLSocket):
            # An OpenSSL connection must not be read and written from two threads at once:
            # one lock for both directions; exchange() interleaves them in one thread.
            self._recv_lock = self._send_lock

    @property
    def socket(self) -> socket.socket:
        return self._sock

    @property
    def is_tls(self) -> bool:
        return isinstance(self._sock, ssl.SSLSocket)

    # -- sending ------------------------------------------------------------------------

    def _send_frame(self, frame: codec.EncodedFrame) -> None:
        timeout = self.send_timeout if self.send_timeout is not None else self.timeout
        try:
            self._sock.settimeout(timeout)
            if frame.nbytes <= _SMALL_FRAME:
                self._sock.sendall(frame.join())
            else:
                self._sock.sendall(frame.head)
                for buf in frame.buffers:
                    if buf.nbytes:
                        self._sock.sendall(buf)
        except Exception as exc:
            raise self._translate(exc, "sending", timeout) from None

    # -- exchanging (TLS) ------------------------------------------------------------------

    def exchange(self, obj, timeout=UNSET):
        """Send ``obj`` and receive the peer's message. Over TLS, large frames are sent and
        received in one thread by non-blocking I/O (OpenSSL connections are not safe for
        concurrent use from two threads); plain TCP uses the base class's helper thread."""
        if not self.is_tls:
            return super().exchange(obj, timeout)
        timeout = self.timeout if timeout is UNSET else check_timeout(timeout)
        frame = self._encode(obj)
        with self._send_lock:
            self._ensure_open()
            if frame.nbytes <= _SMALL_FRAME:
                self._send_frame(frame)
                self.stats.bytes_sent += frame.nbytes
                self.stats.messages_sent += 1
                value, nbytes = self._recv_value(timeout)
            else:
                value, nbytes = self._interleaved(frame, timeout)
                self.stats.bytes_sent += frame.nbytes
                self.stats.messages_sent += 1
            self.stats.bytes_received += nbytes
            self.stats.messages_received += 1
            return value

    def _interleaved(self, frame: codec.EncodedFrame, timeout):
        """Write ``frame`` while reading one incoming frame, with select() and non-blocking
        SSL calls in this thread. Returns ``(value, bytes received)``."""
        sock = self._sock
        outgoing = [memoryview(frame.head)] + [b for b in frame.buffers if b.nbytes]
        incoming = _IncomingFrame(self)
        would_block = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)
        try:
            sock.setblocking(False)
            last = time.monotonic()
            while outgoing or not incoming.done:
                progressed = False
                if outgoing:
                    try:
                        n = sock.send(outgoing[0][:_TLS_CHUNK])
                    except would_block:
                        n = 0
                    if n:
                        progressed = True
                        outgoing[0] = outgoing[0][n:]
                        if not outgoing[0].nbytes:
                            outgoing.pop(0)
                if not incoming.done:
                    with incoming.view() as view:
                        try:
                            n = sock.recv_into(view, view.nbytes)
                        except would_block:
                            n = None
                    if n == 0:
                        raise PeerDisconnected(f"{self.name}: {self.peer_label} closed the connection "
                                               f"{'in the middle of a message' if incoming.started else ''}".rstrip())
                    if n:
                        progressed = True
                        incoming.advance(n)
                if progressed:
                    last = time.monotonic()
                    continue
                if not incoming.done and sock.pending():
                    continue
                wait = None if timeout is None else max(0.0, last + timeout - time.monotonic())
                if wait == 0.0:
                    raise ChannelTimeout(f"{self.name}: exchange stalled for {timeout:g} s "
                                         f"({self.peer_label} not responding)")
                select.select([sock] if not incoming.done else [], [sock] if outgoing else [], [],
                              wait if wait is None else min(wait, 1.0))
        except PetError:
            self._abort()
            raise
        except Exception as exc:
            raise self._translate(exc, "exchanging", timeout) from None
        finally:
            if not self._closed:
                try:
                    sock.setblocking(True)
                except OSError:
                    pass
        return incoming.value(), incoming.nbytes

    # -- receiving ----------------------------------------------------------------------

    def _recv_value(self, timeout):
        try:
            self._sock.settimeout(timeout)
        except OSError as exc:
            raise self._translate(exc, "receiving", timeout) from None
        view = memoryview(self._prefix)
        got = self._recv_into(view, timeout, started=False)
        if got == 0:  # clean timeout before the first byte is reported by _recv_into
            raise self._timeout_error(timeout)
        try:
            header_len, body_len = codec.parse_prefix(self._prefix, max_frame_size=self.max_recv_frame_size)
            header = self._recv_header(header_len, timeout)
            value, slots = codec.decode_header(header, max_depth=self.max_depth)
            codec.check_body(slots, body_len)
            body = codec.BodyReader(slots, pool=self._recv_pool)  # grow with the data that arrives, or reuse
            while not body.done:
                with body.view() as piece:
                    self._recv_into(piece, timeout, started=True)
                    n = piece.nbytes
                body.advance(n)
        except PetError:
            self._abort()
            raise
        return codec.fill(value, slots, body.buffers), codec.PREFIX.size + header_len + body_len

    def _recv_header(self, header_len: int, timeout) -> bytearray:
        """Read the header in pieces of at most 1 MiB, so a lying length prefix costs only
        what the peer actually sent."""
        header = bytearray(min(header_len, _HEADER_CHUNK))
        self._recv_into(memoryview(header), timeout, started=True)
        while len(header) < header_len:
            piece = bytearray(min(header_len - len(header), _HEADER_CHUNK))
            self._recv_into(memoryview(piece), timeout, started=True)
            header += piece
        return header

    def _recv_into(self, view: memoryview, timeout, *, started: bool) -> int:
        """Fill ``view`` completely. Returns 0 only for a timeout before any byte of a new
        frame arrived (the stream is still in sync); raises otherwise."""
        need = view.nbytes
        got = 0
        while got < need:
            try:
                n = self._sock.recv_into(view[got:], need - got)
            except TimeoutError:
                if not started and got == 0:
                    return 0
                self._abort()
                raise ChannelTimeout(
                    f"{self.name}: peer stalled in the middle of a message for {timeout:g} s"
                ) from None
            except Exception as exc:
                self._abort()
                raise self._translate(exc, "receiving", timeout) from None
            if n == 0:
                if self._closed_by_us:
                    raise ChannelClosed(f"{self.name}: the channel was closed while receiving")
                self._abort()
                where = "in the middle of a message" if (started or got) else "before sending a message"
                raise PeerDisconnected(f"{self.name}: {self.peer_label} closed the connection {where}")
            got += n
        return got

    def _send_goodbye(self, frame: codec.EncodedFrame) -> None:
        """Send the goodbye with a short timeout, half-close, and read (and drop) what the
        peer still sends until it closes, for at most ``GOODBYE_SECONDS``: closing a socket
        with unread input makes the kernel reset the connection, which could discard the
        goodbye before the peer reads it."""
        sock = self._sock
        sock.settimeout(self.GOODBYE_SECONDS)
        sock.sendall(frame.join())
        raw = sock  # the plain-socket methods below bypass TLS: only a FIN and a drain
        try:
            socket.socket.shutdown(raw, socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + self.GOODBYE_SECONDS
        scratch = bytearray(1 << 16)
        while time.monotonic() < deadline:
            try:
                if not socket.socket.recv_into(raw, scratch):
                    return
            except OSError:
                return

    # -- errors and closing -----------------------------------------------------------------

    def _translate(self, exc: BaseException, doing: str, timeout) -> PetError:
        if isinstance(exc, PetError):
            return exc
        if isinstance(exc, (socket.timeout, TimeoutError)):
            self._abort()
            return ChannelTimeout(f"{self.name}: {doing} blocked for {timeout:g} s ({self.peer_label} not responding)")
        if isinstance(exc, ssl.SSLError):
            self._abort()
            reason = getattr(exc, "reason", None) or str(exc)
            return TLSError(f"{self.name}: TLS failure while {doing}: {reason}")
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            self._abort()
            return PeerDisconnected(f"{self.name}: {self.peer_label} closed the connection while {doing} ({exc})")
        if isinstance(exc, OSError):
            self._abort()
            if self._closed_by_us:
                return ChannelClosed(f"{self.name}: the channel was closed while {doing}")
            return TransportError(f"{self.name}: socket error while {doing}: {exc}")
        return TransportError(f"{self.name}: unexpected error while {doing}: {exc!r}")

    _closed_by_us = False

    def _abort(self) -> None:
        """Close after an error that leaves the stream out of sync."""
        if not self._closed:
            self._closed = True
            self._shutdown()

    def _shutdown(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in another thread
        except OSError:
            pass
        try:
            self._sock.close()
        except OSError:  # pragma: no cover
            pass

    def _close(self) -> None:
        self._closed_by_us = True
        self._shutdown()


class _IncomingFrame:
    """Incremental reader of one frame for :meth:`StreamChannel._interleaved`: hands out the
    next buffer to fill and checks prefix and header as they complete (the header is read
    in 1 MiB pieces; the body goes into buffers that grow with the data that arrived, see
    :class:`~pet.transport.codec.BodyReader`)."""

    def __init__(self, channel: StreamChannel):
        self.channel = channel
        self.prefix = bytearray(codec.PREFIX.size)
        self.stage = "prefix"
        self.header_parts: list[bytearray] = []
        self.header_left = self.body_len = 0
        self.piece: bytearray | None = self.prefix
        self.got = 0
        self.started = False
        self.done = False
        self.nbytes = 0
        self.tree = self.slots = self.body = None

    def view(self) -> memoryview:
        """The next place to write received bytes into (release it before :meth:`advance`)."""
        if self.stage == "body":
            return self.body.view()
        return memoryview(self.piece)[self.got:]

    def advance(self, n: int) -> None:
        self.started = True
        self.nbytes += n
        if self.stage == "body":
            self.body.advance(n)
            self.done = self.body.done
            return
        self.got += n
        if self.got < len(self.piece):
            return
        self.got = 0
        self.piece = None
        while self.piece is None and not self.done:
            if self.stage == "prefix":
                header_len, self.body_len = codec.parse_prefix(
                    self.prefix, max_frame_size=self.channel.max_recv_frame_size)
                self.header_left = header_len
                self.stage = "header"
            elif self.stage == "header" and self.header_left:
                part = bytearray(min(self.header_left, _HEADER_CHUNK))
                self.header_left -= len(part)
                self.header_parts.append(part)
                self.piece = part
            else:
                header = b"".join(self.header_parts)
                self.tree, self.slots = codec.decode_header(header, max_depth=self.channel.max_depth)
                codec.check_body(self.slots, self.body_len)
                self.body = codec.BodyReader(self.slots, pool=getattr(self.channel, "_recv_pool", None))
                self.stage = "body"
                self.done = self.body.done
                return

    def value(self):
        return codec.fill(self.tree, self.slots, self.body.buffers)
