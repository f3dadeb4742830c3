"""TCP (optionally mutual-TLS) channels between two processes or hosts.

One party listens, the other connects; either may start first, because ``connect`` keeps
retrying for ``retry_for`` seconds. Once the socket is up (and TLS has authenticated both
sides and checked the pinned peer name), the two ends exchange a one-frame hello carrying
the wire version, so a peer that is not pet, speaks another version, or rejects our
certificate is reported at connect time.

**No plaintext on the open network by accident.** Without ``tls=``, ``listen``/``connect``
refuse any address that is not loopback (``127.0.0.0/8``, ``::1``, ``localhost``) with an
:class:`~pet.errors.InputError`, unless ``insecure=True`` says the network is trusted.
``"0.0.0.0"``, ``"::"`` and ``""`` (every interface) are not loopback.

**Strangers do not stop a listener.** ``listen``/``Listener.accept`` handle each incoming
connection's TLS handshake and hello in a thread of its own; one that fails (a wrong or
missing certificate, a certificate for another role, garbage, silence) is logged on the
``pet.transport`` logger and skipped, and the listener keeps waiting for the real peer until
``accept_timeout``; the timeout error then lists what was refused.

Example::

    # party 0                                      # party 1
    tls0 = TLSConfig.from_dir("certs", "party0")   tls1 = TLSConfig.from_dir("certs", "party1")
    ch = tcp.listen("0.0.0.0", 9000, tls=tls0)     ch = tcp.connect("host0", 9000, tls=tls1)
    ch.send(x)                                     x = ch.recv()
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import select
import socket
import ssl
import threading
import time

from pet.errors import (
    ChannelTimeout,
    InputError,
    PeerDisconnected,
    PetError,
    ProtocolError,
    TLSError,
    TransportError,
)
from pet.transport import codec
from pet.transport.channel import DEFAULT_TIMEOUT
from pet.transport.stream import StreamChannel, tune_socket
from pet.transport.tls import TLSConfig

__all__ = ["Listener", "listen", "connect", "parse_address", "is_loopback"]

_HELLO = "pet-hello"
#: Seconds allowed for the TLS handshake and the hello once a socket is connected.
HANDSHAKE_TIMEOUT = 30.0
#: The hello is a few dozen bytes: a larger first frame is refused at its prefix.
_HELLO_LIMIT = 4096
#: Handshakes a listener runs at once; further connections wait in the kernel backlog.
_MAX_PENDING_HANDSHAKES = 16

log = logging.getLogger("pet.transport")


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


def _ip_is_loopback(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def is_loopback(host: str) -> bool:
    """True when ``host`` can only mean this machine: a loopback IP address, or a name (such
    as ``localhost``) all of whose addresses are loopback. ``""``, ``"0.0.0.0"`` and ``"::"``
    (every interface) are not; a name that does not resolve is not."""
    host = str(host).strip("[]")
    if not host:
        return False
    if _ip_is_loopback(host):
        return True
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return False  # an IP address that is not loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(_ip_is_loopback(info[4][0]) for info in infos)


def _refuse_plaintext(what: str, host: str, tls, insecure: bool) -> None:
    if tls is None and not insecure and not is_loopback(host):
        raise InputError(
            f"refusing to {what} {host!r} without TLS: plaintext TCP is allowed on loopback only. "
            "Pass tls=TLSConfig(...) (mutual TLS), or insecure=True if this network is trusted")


def _check_tls(tls):
    if tls is not None and not isinstance(tls, TLSConfig):
        raise InputError(f"tls must be a pet.transport.tls.TLSConfig or None, got {type(tls).__name__}")


def _hello(channel: StreamChannel, tls: TLSConfig | None) -> None:
    try:
        channel.send((_HELLO, codec.VERSION))
        with channel.recv_limit(_HELLO_LIMIT):
            reply = channel.recv(timeout=HANDSHAKE_TIMEOUT)
    except ChannelTimeout:
        channel.close()
        raise ChannelTimeout(f"{channel.name}: connected, but the peer sent no hello within "
                             f"{HANDSHAKE_TIMEOUT:g} s (is it a pet party?)") from None
    except PeerDisconnected as exc:
        channel.close()
        if tls is None:
            raise PeerDisconnected(f"{exc}, during the pet hello: if the peer uses TLS (--tls-dir or "
                                   "--tls-cert), this side must too -- give both sides TLS options, or "
                                   "neither") from None
        raise PeerDisconnected(f"{exc}, during the pet hello (it may have refused this side's "
                               "certificate or its role name: see its output)") from None
    except PetError:
        channel.close()
        raise
    if not (isinstance(reply, tuple) and len(reply) == 2 and reply[0] == _HELLO):
        channel.close()
        raise ProtocolError(f"{channel.name}: the peer's first message is not a pet hello")
    if reply[1] != codec.VERSION:
        channel.close()
        raise ProtocolError(f"{channel.name}: peer speaks wire version {reply[1]}, we speak {codec.VERSION}")


def explain_tls_failure(reason: str, tls: TLSConfig) -> str:
    """A sentence naming the likely fix for an OpenSSL handshake ``reason`` code (the code
    itself kept in brackets for searching)."""
    code = str(reason)
    if "CERTIFICATE_VERIFY_FAILED" in code:
        text = (f"the peer's certificate is not signed by {str(tls.ca)!r} (the CA this side trusts): "
                "both sides need certificates from the same CA (ca.pem in --tls-dir, or --tls-ca)")
    elif any(k in code for k in ("DECRYPT_ERROR", "UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN",
                                 "CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE")):
        text = ("the peer refused this side's certificate: it is not signed by the CA the peer trusts "
                "(both sides need certificates from the same CA: check ca.pem in --tls-dir, or --tls-ca)")
    elif any(k in code for k in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNEXPECTED_EOF", "RECORD_LAYER",
                                 "PACKET_LENGTH_TOO_LONG", "EOF occurred", "UNEXPECTED_MESSAGE")):
        text = ("the peer does not speak TLS (it runs without --tls-dir/--tls-cert, or is not a pet "
                "party): give both sides TLS options, or neither")
    elif code.startswith("peer certificate names"):
        text = (f"{code}; check the peer's role, or the --tls-peer-name / --tls-dealer-name flags")
        return text
    else:
        return code
    return f"{text} [{code}]"


def _wrap(sock: socket.socket, tls: TLSConfig | None, *, server: bool, name: str, timeout,
          handshake_timeout: float = HANDSHAKE_TIMEOUT, **kwargs):
    tune_socket(sock)
    peer_name = None
    if tls is not None:
        sock.settimeout(handshake_timeout)
        try:
            ctx = tls.server_context() if server else tls.client_context()
            sock = ctx.wrap_socket(sock, server_side=server)
            peer_name = tls.check_peer(sock)
        except (ssl.SSLError, TLSError) as exc:
            try:
                sock.close()
            except OSError:
                pass
            reason = getattr(exc, "reason", None) or str(exc)
            raise TLSError(f"{name}: TLS handshake failed: {explain_tls_failure(reason, tls)}") from None
        except TimeoutError:
            sock.close()
            raise ChannelTimeout(f"{name}: TLS handshake timed out after {handshake_timeout:g} s") from None
        except OSError as exc:
            sock.close()
            raise TLSError(f"{name}: TLS handshake failed: {exc}") from None
        except BaseException:
            sock.close()
            raise
    channel = StreamChannel(sock, timeout=timeout, name=name, **kwargs)
    channel.peer_name = peer_name
    _hello(channel, tls)
    return channel


class Listener:
    """A listening socket that accepts one party at a time.

    ``Listener(host, 0)`` picks a free port, readable as :attr:`port` -- handy in tests.
    Without ``tls``, ``host`` must be loopback unless ``insecure=True`` (module docstring).
    Each incoming connection shakes hands in a thread of its own (at most
    ``_MAX_PENDING_HANDSHAKES`` at once); a peer that completes its handshake while no
    :meth:`accept` is waiting is kept for the next call (the dealer accepts two parties that
    may connect at the same moment), and closed by :meth:`close`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tls: TLSConfig | None = None,
                 timeout=DEFAULT_TIMEOUT, insecure: bool = False, **channel_kwargs):
        _check_tls(tls)
        _refuse_plaintext("listen on", host, tls, insecure)
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
        self._lock = threading.Lock()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._closed = False
        #: What the last :meth:`accept` refused: one line per connection that failed its
        #: TLS handshake (wrong CA, wrong role, no certificate) or the hello.
        self.refused: list[str] = []

    def _handshake(self, sock: socket.socket, addr, handshake_timeout: float) -> None:
        """Thread body: TLS handshake, pinned name and hello of one incoming connection."""
        where = f"{addr[0]}:{addr[1]}"
        try:
            channel = _wrap(sock, self.tls, server=True, name=f"{self.host}:{self.port}<-{where}",
                            timeout=self.timeout, handshake_timeout=handshake_timeout, **self._channel_kwargs)
        except BaseException as exc:  # noqa: BLE001 - a stranger's failure is reported, not raised
            try:
                sock.close()
            except OSError:
                pass
            self._results.put(("refused", f"{where}: {type(exc).__name__}: {exc}"))
            return
        with self._lock:
            if not self._closed:
                self._results.put(("ok", channel))
                return
        channel.close()

    def accept(self, *, accept_timeout=120.0) -> StreamChannel:
        """Wait up to ``accept_timeout`` seconds (``None``: forever) for a peer that
        completes the TLS handshake (with a pinned name) and the hello; return the channel
        to it. Connections that fail are logged on ``pet.transport`` and skipped (listed in
        :attr:`refused` and in the timeout error)."""
        deadline = None if accept_timeout is None else time.monotonic() + accept_timeout
        self.refused = []
        while True:
            while True:  # collect finished handshakes
                try:
                    kind, item = self._results.get_nowait()
                except queue.Empty:
                    break
                self._pending -= 1
                if kind == "ok":
                    return item
                self.refused.append(item)
                log.warning("%s:%s: refused a connection: %s", self.host, self.port, item)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ChannelTimeout(self._timeout_message(accept_timeout))
            wait = 0.02 if self._pending else 1.0
            if remaining is not None:
                wait = min(wait, remaining)
            if self._pending >= _MAX_PENDING_HANDSHAKES:
                time.sleep(wait)
                continue
            try:
                ready, _, _ = select.select([self._sock], [], [], wait)
            except (OSError, ValueError) as exc:
                raise TransportError(f"listening on {self.host}:{self.port} failed: {exc}") from None
            if not ready:
                continue
            try:
                sock, addr = self._sock.accept()
            except (TimeoutError, BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                raise TransportError(f"accepting on {self.host}:{self.port} failed: {exc}") from None
            sock.setblocking(True)
            limit = HANDSHAKE_TIMEOUT if remaining is None else max(1.0, min(HANDSHAKE_TIMEOUT, remaining))
            self._pending += 1
            threading.Thread(target=self._handshake, args=(sock, addr, limit), daemon=True,
                             name=f"pet-handshake-{addr[0]}:{addr[1]}").start()

    def _timeout_message(self, accept_timeout) -> str:
        msg = (f"no peer connected to {self.host}:{self.port} within {accept_timeout:g} s "
               "(is the other party running, and pointed at this address?)")
        if self.refused:
            shown = "; ".join(self.refused[-3:])
            msg += f"; refused {len(self.refused)} connection(s) meanwhile, last: {shown}"
        return msg

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (``accept`` then raises)."""
        return self._closed

    def close(self) -> None:
        """Stop listening; close peers that completed a handshake but were not accepted."""
        with self._lock:
            self._closed = True
        self._sock.close()
        while True:
            try:
                kind, item = self._results.get_nowait()
            except queue.Empty:
                break
            if kind == "ok":
                item.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def listen(host: str, port: int, *, tls: TLSConfig | None = None, timeout=DEFAULT_TIMEOUT,
           accept_timeout=120.0, insecure: bool = False, **channel_kwargs) -> StreamChannel:
    """Listen on ``host:port``, accept one peer, stop listening, return the channel.

    ``timeout`` is the channel's receive timeout; ``accept_timeout`` how long to wait for
    the peer to come (a :class:`~pet.errors.ChannelTimeout` saying so afterwards, listing
    the connections that failed their handshake meanwhile). Plain TCP (``tls=None``) is
    refused on a non-loopback ``host`` unless ``insecure=True``.
    """
    with Listener(host, port, tls=tls, timeout=timeout, insecure=insecure, **channel_kwargs) as listener:
        return listener.accept(accept_timeout=accept_timeout)


def connect(host: str, port: int, *, tls: TLSConfig | None = None, timeout=DEFAULT_TIMEOUT,
            retry_for: float = 60.0, insecure: bool = False, **channel_kwargs) -> StreamChannel:
    """Connect to a listening peer, retrying refused connections for ``retry_for`` seconds
    (so the two parties can start in either order). Returns the channel. Plain TCP
    (``tls=None``) is refused to a non-loopback ``host`` unless ``insecure=True``."""
    _check_tls(tls)
    if not isinstance(port, int) or not 0 < port <= 65535:
        raise InputError(f"port must be an int in 1..65535, got {port!r}")
    _refuse_plaintext("connect to", host, tls, insecure)
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
    if tls is None and not insecure and not _ip_is_loopback(sock.getpeername()[0]):
        address = sock.getpeername()[0]
        sock.close()  # the name resolved to another address at connect time: nothing was sent
        raise InputError(f"refusing to connect to {host!r} ({address}, not loopback) without TLS: "
                         "pass tls=TLSConfig(...), or insecure=True if this network is trusted")
    local = sock.getsockname()
    name = f"{local[0]}:{local[1]}->{host}:{port}"
    return _wrap(sock, tls, server=False, name=name, timeout=timeout, **channel_kwargs)
