"""A :class:`~pet.transport.channel.Channel` over a connected stream socket (TCP or TLS).

Sending hands the kernel the frame head and then a ``memoryview`` of each array buffer
(``sendall``; no join, no copy). Receiving reads the 20-byte prefix, checks the announced
size against ``max_frame_size`` *before* allocating, parses the header, allocates the arrays
and ``recv_into``\\ s straight into them.

A malformed frame, a TLS failure, or a timeout in the middle of a frame leaves the byte
stream at an unknown position, so the channel closes itself before raising. A timeout
before the first byte of a frame leaves the channel usable.
"""

from __future__ import annotations

import socket
import ssl

from pet.errors import ChannelClosed, ChannelTimeout, PeerDisconnected, PetError, TLSError, TransportError
from pet.transport import codec
from pet.transport.channel import Channel

__all__ = ["StreamChannel"]

_SMALL_FRAME = 64 << 10
_SOCKET_BUFFER = 4 << 20
_HEADER_CHUNK = 1 << 20


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
            header_len, body_len = codec.parse_prefix(self._prefix, max_frame_size=self.max_frame_size)
            header = self._recv_header(header_len, timeout)
            value, slots = codec.decode_header(header, max_depth=self.max_depth)
            codec.check_body(slots, body_len)
            buffers = codec.allocate(slots)
            for piece in codec.body_views(buffers):
                if piece.nbytes:
                    self._recv_into(piece, timeout, started=True)
        except PetError:
            self._abort()
            raise
        return codec.fill(value, slots, buffers), codec.PREFIX.size + header_len + body_len

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
            except (socket.timeout, TimeoutError):
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
                raise PeerDisconnected(f"{self.name}: the peer closed the connection {where}")
            got += n
        return got

    # -- errors and closing -----------------------------------------------------------------

    def _translate(self, exc: BaseException, doing: str, timeout) -> PetError:
        if isinstance(exc, PetError):
            return exc
        if isinstance(exc, (socket.timeout, TimeoutError)):
            self._abort()
            return ChannelTimeout(f"{self.name}: {doing} blocked for {timeout:g} s (peer not responding)")
        if isinstance(exc, ssl.SSLError):
            self._abort()
            reason = getattr(exc, "reason", None) or str(exc)
            return TLSError(f"{self.name}: TLS failure while {doing}: {reason}")
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            self._abort()
            return PeerDisconnected(f"{self.name}: the peer closed the connection while {doing} ({exc})")
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
