"""TCP (optionally mutual-TLS) channels between two processes or hosts.

One party listens, the other connects; either may start first, because ``connect`` keeps
retrying for ``retry_for`` seconds. Once the socket is up (and TLS has authenticated both
sides), the two ends exchange a one-frame hello carrying the wire version, so a peer that
is not pet, speaks another version, or rejects our certificate is reported at connect
time rather than in the middle of a protocol.

Example::

    # party 0                                   # party 1
    ch = tcp.listen("0.0.0.0", 9000)            ch = tcp.connect("host0", 9000)
    ch.send(x)                                  x = ch.recv()
"""

from __future__ import annotations

import socket
import ssl
import time

from pet.errors import ChannelTimeout, InputError, ProtocolError, TLSError, TransportError
from pet.transport import codec
from pet.transport.channel import DEFAULT_TIMEOUT
from pet.transport.stream import StreamChannel, tune_socket
from pet.transport.tls import TLSConfig

__all__ = ["Listener", "listen", "connect", "parse_address"]

_HELLO = "pet-hello"
#: Seconds allowed for the TLS handshake and the hello once a socket is connected.
HANDSHAKE_TIMEOUT = 30.0


def parse_address(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``"host:port"`` (or ``":port"`` / ``"port"``) -> ``(host, port)``."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host, port = default_host, text
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise InputError(f"address {text!r}: expected HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise InputError(f"address {text!r}: port must be in 0..65535")
    return host, number


def _check_tls(tls):
    if tls is not None and not isinstance(tls, TLSConfig):
        raise InputError(f"tls must be a pet.transport.tls.TLSConfig or None, got {type(tls).__name__}")


def _hello(channel: StreamChannel, tls: TLSConfig | None) -> None:
    channel.send((_HELLO, codec.VERSION))
    try:
        reply = channel.recv(timeout=HANDSHAKE_TIMEOUT)
    except ChannelTimeout:
        channel.close()
        raise ChannelTimeout(f"{channel.name}: connected, but the peer sent no hello within "
                             f"{HANDSHAKE_TIMEOUT:g} s (is it a pet party?)") from None
    if not (isinstance(reply, tuple) and len(reply) == 2 and reply[0] == _HELLO):
        channel.close()
        raise ProtocolError(f"{channel.name}: the peer's first message is not a pet hello")
    if reply[1] != codec.VERSION:
        channel.close()
        raise ProtocolError(f"{channel.name}: peer speaks wire version {reply[1]}, we speak {codec.VERSION}")


def _wrap(sock: socket.socket, tls: TLSConfig | None, *, server: bool, name: str, timeout, **kwargs):
    tune_socket(sock)
    if tls is not None:
        ctx = tls.server_context() if server else tls.client_context()
        sock.settimeout(HANDSHAKE_TIMEOUT)
        try:
            sock = ctx.wrap_socket(sock, server_side=server)
            tls.check_peer(sock)
        except (ssl.SSLError, TLSError) as exc:
            try:
                sock.close()
            except OSError:
                pass
            reason = getattr(exc, "reason", None) or str(exc)
            raise TLSError(f"{name}: TLS handshake failed: {reason}") from None
        except (socket.timeout, TimeoutError):
            sock.close()
            raise ChannelTimeout(f"{name}: TLS handshake timed out after {HANDSHAKE_TIMEOUT:g} s") from None
        except OSError as exc:
            sock.close()
            raise TLSError(f"{name}: TLS handshake failed: {exc}") from None
    channel = StreamChannel(sock, timeout=timeout, name=name, **kwargs)
    _hello(channel, tls)
    return channel


class Listener:
    """A listening socket that accepts one party at a time.

    ``Listener(host, 0)`` picks a free port, readable as :attr:`port` -- handy in tests.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tls: TLSConfig | None = None,
                 timeout=DEFAULT_TIMEOUT, **channel_kwargs):
        _check_tls(tls)
        self.host, self.tls, self.timeout = host, tls, timeout
        self._channel_kwargs = channel_kwargs
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise TransportError(f"cannot listen on {host}:{port}: {exc}") from None
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]

    def accept(self, *, accept_timeout=120.0) -> StreamChannel:
        """Wait up to ``accept_timeout`` seconds (``None``: forever) for a peer; return the
        channel to it."""
        self._sock.settimeout(accept_timeout)
        try:
            sock, addr = self._sock.accept()
        except (socket.timeout, TimeoutError):
            raise ChannelTimeout(
                f"no peer connected to {self.host}:{self.port} within {accept_timeout:g} s "
                "(is the other party running, and pointed at this address?)"
            ) from None
        name = f"{self.host}:{self.port}<-{addr[0]}:{addr[1]}"
        return _wrap(sock, self.tls, server=True, name=name, timeout=self.timeout, **self._channel_kwargs)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def listen(host: str, port: int, *, tls: TLSConfig | None = None, timeout=DEFAULT_TIMEOUT,
           accept_timeout=120.0, **channel_kwargs) -> StreamChannel:
    """Listen on ``host:port``, accept one peer, stop listening, return the channel.

    ``timeout`` is the channel's receive timeout; ``accept_timeout`` how long to wait for
    the peer to come (a :class:`~pet.errors.ChannelTimeout` saying so afterwards).
    """
    with Listener(host, port, tls=tls, timeout=timeout, **channel_kwargs) as listener:
        return listener.accept(accept_timeout=accept_timeout)


def connect(host: str, port: int, *, tls: TLSConfig | None = None, timeout=DEFAULT_TIMEOUT,
            retry_for: float = 60.0, **channel_kwargs) -> StreamChannel:
    """Connect to a listening peer, retrying refused connections for ``retry_for`` seconds
    (so the two parties can start in either order). Returns the channel."""
    _check_tls(tls)
    if not isinstance(port, int) or not 0 < port <= 65535:
        raise InputError(f"port must be an int in 1..65535, got {port!r}")
    deadline = time.monotonic() + max(0.0, float(retry_for))
    delay = 0.02
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=min(10.0, max(1.0, retry_for)))
            break
        except OSError as exc:
            if time.monotonic() + delay > deadline:
                raise TransportError(
                    f"could not connect to {host}:{port} within {retry_for:g} s: {exc} "
                    "(is the other party listening there?)"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    local = sock.getsockname()
    name = f"{local[0]}:{local[1]}->{host}:{port}"
    return _wrap(sock, tls, server=False, name=name, timeout=timeout, **channel_kwargs)
