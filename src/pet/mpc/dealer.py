"""The dealer: a third party that produces correlated randomness for two parties.

Trust model: semi-honest, and trusted not to collude with either party (as CrypTen's
TTP and SPU's beaver server). It never sees inputs, shares or outputs; it learns the
kinds and shapes of the operations, the session id and the timing (see "What the dealer
learns" in ``docs/mpc.md``). It is never one of the computing parties.

Protocol with each party (see :class:`~pet.mpc.correlated.DealerClient`), version
:data:`~pet.mpc.correlated.PROTOCOL_VERSION`:

1. handshake: the party sends hello ``{"hello": "pet.mpc.dealer", "version", "party",
   "session"}`` (the 16-byte session id both parties derived from their own hello
   exchange). The dealer pairs the party-0 and party-1 hellos carrying the same session
   id, and answers each with a fresh 16-byte seed from ``os.urandom``. Over TLS, the
   peer's certificate name must be ``party{party}``;
2. per request: both parties send ``["get", specs]``; the dealer parses both (typed
   specs, :func:`~pet.mpc.correlated.spec_from_wire`), checks they are identical (else
   the session fails with :class:`~pet.errors.ProtocolError`) and within
   ``max_elements`` ring elements, replays both parties' PRGs and sends the receiving
   party its corrections;
3. ``["close"]`` from both ends the session.

Traffic: one ring element per triple (to one party) plus the small requests.

A malformed hello or request fails only its own connection or session, with a short
error message to the client (never a value: the dealer sees none). :func:`serve` runs
one session over two given channels; :func:`serve_listener` accepts connections, pairs
them by session id and serves sessions concurrently (``pet dealer``).
"""

from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np

from pet.errors import ChannelTimeout, InputError, PeerDisconnected, ProtocolError
from pet.mpc.correlated import PROTOCOL_VERSION, SESSION_ID_BYTES, spec_from_wire
from pet.mpc.prg import PRG, new_seed

__all__ = ["DEFAULT_MAX_ELEMENTS", "HELLO_TIMEOUT", "serve", "serve_listener"]

#: Default bound on the ring elements one request (all its specs) makes the dealer hold:
#: 2^27 elements = 1 GiB. Also bounds the reusable masks a session keeps.
DEFAULT_MAX_ELEMENTS = 1 << 27
#: Ring elements of correction buffers a session keeps between requests for reuse (64 MiB).
KEEP_BUFFER_ELEMENTS = 1 << 23
#: Seconds a new connection has to send its dealer hello.
HELLO_TIMEOUT = 30.0
#: Largest number of specs in one request.
_MAX_SPECS = 1 << 16
_HELLO_KEYS = {"hello", "version", "party", "session"}


#: Largest dealer hello accepted, in bytes (a hello is a small dict: a few hundred bytes).
HELLO_MAX_BYTES = 64 << 10
#: Largest request frame accepted, in bytes: a request lists specs (kinds and shapes), at
#: most 65,536 of them, so a few MiB; the limit applies before anything is allocated.
REQUEST_MAX_BYTES = 16 << 20

def _stderr_log(line: str) -> None:
    print(f"pet dealer: {line}", file=sys.stderr, flush=True)


def _check_max_elements(max_elements) -> int:
    if isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 1:
        raise InputError(f"max_elements must be a positive int, got {max_elements!r}")
    return max_elements


# -- handshake ----------------------------------------------------------------------------

def _is_str(value, text: str) -> bool:
    return isinstance(value, str) and value == text


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_hello(hello) -> tuple[int, bytes]:
    """``(party, session_id)`` of a hello message; ProtocolError for anything else (type
    checks come before any comparison, so no value can make a comparison raise)."""
    if not isinstance(hello, dict) or not _is_str(hello.get("hello"), "pet.mpc.dealer"):
        raise ProtocolError("the first message is not a pet.mpc.dealer hello")
    version = hello.get("version")
    if not (_is_int(version) and version == PROTOCOL_VERSION):
        shown = version if _is_int(version) else type(version).__name__
        raise ProtocolError(f"dealer protocol version {str(shown)[:20]} is not {PROTOCOL_VERSION} "
                            "(update pet on both parties and the dealer)")
    if len(hello) != len(_HELLO_KEYS) or not all(isinstance(k, str) and k in _HELLO_KEYS for k in hello):
        raise ProtocolError(f"the dealer hello must have exactly the keys {sorted(_HELLO_KEYS)}")
    party = hello["party"]
    if not (_is_int(party) and party in (0, 1)):
        raise ProtocolError("the dealer hello's party must be 0 or 1")
    session = hello["session"]
    if not isinstance(session, bytes) or len(session) != SESSION_ID_BYTES:
        raise ProtocolError(f"the dealer hello's session must be {SESSION_ID_BYTES} bytes")
    return party, session


def _read_hello(channel, timeout=None) -> tuple[int, bytes]:
    """Receive and check one party's hello (``timeout`` seconds; ``None``: the channel's).
    Over TLS the certificate name must match the claimed party."""
    if hasattr(channel, "recv_limit"):
        with channel.recv_limit(HELLO_MAX_BYTES):
            hello = channel.recv() if timeout is None else channel.recv(timeout=timeout)
    else:
        hello = channel.recv() if timeout is None else channel.recv(timeout=timeout)
    party, session = _parse_hello(hello)
    peer_name = getattr(channel, "peer_name", None)
    if peer_name is not None and peer_name != f"party{party}":
        raise ProtocolError(f"a client with the certificate of {str(peer_name)[:40]!r} claims to be party {party}")
    return party, session


def _refuse(channel, reason: str) -> None:
    """Tell a client why it is refused (best effort) and close its channel."""
    try:
        channel.send({"seed": b"", "error": reason})
    except Exception:  # noqa: BLE001, S110 - the client may be gone or not speak the protocol
        pass
    try:
        channel.close()
    except Exception:  # noqa: BLE001, S110 - best effort: the client may be gone
        pass


# -- one session --------------------------------------------------------------------------

def _parse_request(req, max_elements: int):
    """``"close"`` or the list of typed specs of one request (ProtocolError otherwise,
    also when it asks for more than ``max_elements`` ring elements)."""
    if isinstance(req, list) and len(req) == 1 and _is_str(req[0], "close"):
        return "close"
    if not (isinstance(req, list) and len(req) == 2 and _is_str(req[0], "get") and isinstance(req[1], list)):
        raise ProtocolError("malformed dealer request (expected ['get', specs] or ['close'])")
    if len(req[1]) > _MAX_SPECS:
        raise ProtocolError(f"a dealer request may hold at most {_MAX_SPECS} specs")
    specs = [spec_from_wire(s) for s in req[1]]
    total = sum(s.elements() for s in specs)
    if total > max_elements:
        raise ProtocolError(f"the request asks for {total} ring elements, above the dealer's limit of "
                            f"{max_elements} (split the operation, or raise pet dealer --max-elements)")
    return specs


def _reuse_elements(state: dict) -> int:
    return sum(a.size for _, a in state.values())


class _Buffers:
    """Output arrays of streamed corrections, reused from one request to the next of a
    session (a channel's ``send`` copies or writes out the arrays before it returns, so once
    a request's answer is sent its buffers are free): large answers then cost no fresh
    pages. :meth:`take` never hands out one buffer twice within a request; the buffers
    kept are bounded by ``max_elements`` (beyond it, fresh arrays that are not kept)."""

    def __init__(self, max_elements: int):
        self.max_elements = max_elements
        self._free: list = []
        self._used: list = []

    def next_request(self) -> None:
        self._free.extend(self._used)
        self._used = []

    def take(self, n: int) -> np.ndarray:
        for i, buf in enumerate(self._free):
            if buf.size == n:
                self._used.append(self._free.pop(i))
                return buf
        buf = np.empty(n, dtype=np.uint64)
        if sum(b.size for b in self._free + self._used) + n <= self.max_elements:
            self._used.append(buf)
        return buf


def _answer(specs, prgs, state: dict, max_elements: int, buffers: _Buffers | None = None) -> list:
    """Both parties' correction lists for one request."""
    out: list[list] = [[], []]
    alloc = buffers.take if buffers is not None else None
    for spec in specs:
        if spec.streamed():  # large elementwise specs: fields read in pieces, never whole
            streams = [{name: prg.stream(prg.skip(8 * math.prod(shape))) for name, shape in spec.fields(p)}
                       for p, prg in enumerate(prgs)]
            corr = spec.stream_corrections(*streams, alloc=alloc)
        else:
            m0 = spec.draw(prgs[0], 0)
            m1 = spec.draw(prgs[1], 1)
            corr = spec.corrections(m0, m1, state)
        rec = spec.receiver()
        for p in (0, 1):
            out[p].append(corr if rec == p else {})
    if _reuse_elements(state) > max_elements:
        raise ProtocolError(f"the session keeps more than {max_elements} ring elements of reusable masks")
    return out


def _serve_paired(chans, *, max_elements: int) -> int:
    """Send both seeds, then answer requests until both parties close."""
    prgs = []
    for ch in chans:
        seed = new_seed()
        ch.send({"seed": seed})
        prgs.append(PRG(seed))
    state: dict = {}
    buffers = _Buffers(min(max_elements, KEEP_BUFFER_ELEMENTS))
    served = 0
    while True:
        reqs = [_recv_from_party(ch, p) for p, ch in enumerate(chans)]
        parsed = [_parse_request(r, max_elements) for r in reqs]
        if parsed[0] == "close" and parsed[1] == "close":
            return served
        for p in (0, 1):
            if parsed[p] == "close":  # it stopped early (failed or interrupted)
                raise PeerDisconnected(f"party {p} disconnected: it ended its session while party {1 - p} "
                                       "still needed correlated randomness")
        if parsed[0] != parsed[1]:
            raise ProtocolError("the parties asked the dealer for different things (different operations, "
                                "shapes or order)")
        buffers.next_request()  # the previous answer is sent: its buffers are free
        out = _answer(parsed[0], prgs, state, max_elements, buffers)
        for p in (0, 1):
            if any(s.receiver() == p for s in parsed[0]):
                chans[p].send(out[p])
        del out
        served += 1


def _recv_from_party(channel, party: int):
    """The next request of ``party`` (at most :data:`REQUEST_MAX_BYTES` on the wire); its
    disconnection names it."""
    try:
        if hasattr(channel, "recv_limit"):
            with channel.recv_limit(REQUEST_MAX_BYTES):
                return channel.recv()
        return channel.recv()
    except PeerDisconnected as exc:
        raise PeerDisconnected(f"party {party} disconnected in the middle of the session ({exc})") from None


def _run_session(chans, *, max_elements: int) -> int:
    """:func:`_serve_paired` with cleanup: on any failure both parties are told (best
    effort) and both channels closed, so the other party fails promptly."""
    try:
        return _serve_paired(chans, max_elements=max_elements)
    except PeerDisconnected:
        for ch in chans:
            ch.close()
        raise
    except BaseException as exc:
        reason = str(exc)[:300] if isinstance(exc, ProtocolError) else f"dealer failed ({type(exc).__name__})"
        for ch in chans:
            try:
                ch.send({"error": reason})
            except Exception:  # noqa: BLE001, S110 - best effort: the client may be gone
                pass
            ch.close()
        raise


def serve(channel_a, channel_b, *, max_elements: int = DEFAULT_MAX_ELEMENTS) -> int:
    """Serve one two-party session over ``channel_a`` and ``channel_b`` (either order:
    the hello says which party is which). Returns the number of requests served.

    Raises :class:`~pet.errors.ProtocolError` if the hellos are malformed, are not
    parties 0 and 1, carry different session ids, or the parties ask for different or
    too much material (more than ``max_elements`` ring elements in one request), and
    :class:`~pet.errors.PeerDisconnected` if a party goes away without closing the
    session (both channels are closed first, so the other party fails promptly).
    """
    max_elements = _check_max_elements(max_elements)
    chans = [channel_a, channel_b]
    try:
        hellos = [_read_hello(ch) for ch in chans]
        if sorted(p for p, _ in hellos) != [0, 1]:
            raise ProtocolError("the dealer needs one party 0 and one party 1")
        if hellos[0][1] != hellos[1][1]:
            raise ProtocolError("the two dealer connections belong to different sessions (session ids differ)")
    except BaseException as exc:
        for ch in chans:
            _refuse(ch, str(exc)[:300] if isinstance(exc, ProtocolError) else "malformed dealer hello")
        raise
    if hellos[0][0] == 1:
        chans.reverse()
    return _run_session(chans, max_elements=max_elements)


# -- many sessions over a listener ----------------------------------------------------------

class _Pairing:
    """Hellos waiting for the other party of their session, by session id."""

    def __init__(self, max_waiting: int):
        self.max_waiting = max_waiting
        self._waiting: dict = {}  # session id -> (party, channel, since)

    def offer(self, session: bytes, party: int, channel):
        """The pair ``[channel0, channel1]`` if the other party is waiting, else ``None``
        (this one waits). ProtocolError for a second hello of the same party."""
        other = self._waiting.get(session)
        if other is None:
            if len(self._waiting) >= self.max_waiting:
                raise ProtocolError("too many sessions are waiting for their other party; try again later")
            self._waiting[session] = (party, channel, time.monotonic())
            return None
        if other[0] == party:
            raise ProtocolError(f"party {party} of this session is already connected")
        del self._waiting[session]
        return [channel, other[1]] if party == 0 else [other[1], channel]

    def expired(self, max_age: float) -> list:
        """Remove and return the channels that waited longer than ``max_age`` seconds."""
        now = time.monotonic()
        old = [sid for sid, (_, _, since) in self._waiting.items() if now - since > max_age]
        return [self._waiting.pop(sid)[1] for sid in old]

    def drain(self) -> list:
        chans = [ch for _, ch, _ in self._waiting.values()]
        self._waiting.clear()
        return chans

    def __len__(self):
        return len(self._waiting)


class _Server:
    """State of :func:`serve_listener` shared by its threads (one lock, one condition)."""

    def __init__(self, listener, *, sessions, wait, hello_timeout, max_elements, log, max_connections):
        self.listener = listener
        self.sessions, self.wait, self.hello_timeout = sessions, wait, hello_timeout
        self.max_elements, self.log, self.max_connections = max_elements, log, max_connections
        self.cond = threading.Condition()
        self.pairing = _Pairing(max(1, max_connections // 2))
        self.stop = False
        self.connections = 0  # open client connections (in hello, waiting, or in a session)
        self.started = self.completed = self.failed = 0
        self.last_progress = time.monotonic()

    # acceptor threads: accept, hand the connection to a hello thread
    def accept_loop(self) -> None:
        while not self.stop:
            try:
                ch = self.listener.accept(accept_timeout=0.5)
            except ChannelTimeout as exc:
                if not str(exc).startswith("no peer connected"):
                    self.log(f"refused a connection: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a stranger's failed TLS or pet handshake, or the socket closed
                if self.stop or getattr(self.listener, "closed", False):
                    break  # the listener is gone: accept would fail at once, forever
                self.log(f"refused a connection: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            with self.cond:
                full = self.connections >= self.max_connections or self.stop
                if not full:
                    self.connections += 1
            if full:
                self.log("refused a connection: too many open connections")
                _refuse(ch, "the dealer has too many open connections; try again later")
                continue
            threading.Thread(target=self.handle, args=(ch,), daemon=True, name="pet-dealer-hello").start()

    def _release(self, n: int = 1) -> None:
        with self.cond:
            self.connections -= n
            self.cond.notify_all()

    # hello threads: read and check the hello, pair, and serve the session once paired
    def handle(self, ch) -> None:
        try:
            party, session = _read_hello(ch, self.hello_timeout)
            with self.cond:
                if self.sessions and self.started >= self.sessions:
                    raise ProtocolError("this dealer serves no more sessions")
                pair = self.pairing.offer(session, party, ch)
                if pair is not None:
                    self.started += 1
                    number = self.started
                    self.last_progress = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - one hostile client must not stop the dealer
            reason = str(exc)[:200] if isinstance(exc, ProtocolError) else type(exc).__name__
            self.log(f"refused a client: {type(exc).__name__}: {str(exc)[:200]}")
            _refuse(ch, reason if isinstance(exc, ProtocolError) else "malformed dealer hello")
            self._release()
            return
        if pair is not None:
            self.run_session(number, pair)

    def run_session(self, number: int, pair) -> None:
        ok = False
        try:
            n = _run_session(pair, max_elements=self.max_elements)
            ok = True
            self.log(f"session {number} done ({n} requests)")
        except Exception as exc:  # noqa: BLE001 - one hostile client must not stop the dealer
            self.log(f"session {number} failed: {type(exc).__name__}: {str(exc)[:200]}")
        finally:
            for ch in pair:
                ch.close()
            with self.cond:
                if ok:
                    self.completed += 1
                else:
                    self.failed += 1
                self.last_progress = time.monotonic()
            self._release(2)

    def expire_waiting(self) -> None:
        with self.cond:
            old = self.pairing.expired(self.wait)
        for ch in old:
            self.log(f"refused a client: the other party of its session did not connect within {self.wait:g} s")
            _refuse(ch, f"the other party of this session did not reach the dealer within {self.wait:g} s")
            self._release()

    def done(self) -> bool:
        """Stop when ``sessions`` sessions have ended; ChannelTimeout when a bounded
        dealer has been idle (no session running or starting) for ``wait`` seconds."""
        with self.cond:
            if self.sessions and self.completed + self.failed >= self.sessions:
                return True
            idle = self.started == self.completed + self.failed
            if self.sessions and idle and time.monotonic() - self.last_progress > self.wait:
                raise ChannelTimeout(f"no two-party session reached the dealer within {self.wait:g} s "
                                     "(are both parties running and pointed at this address?)")
            return False


def serve_listener(listener, *, sessions: int = 0, wait: float = 300.0, hello_timeout: float = HELLO_TIMEOUT,
                   max_elements: int = DEFAULT_MAX_ELEMENTS, log=None, acceptors: int = 1,
                   max_connections: int = 64) -> tuple[int, int]:
    """Accept clients on ``listener`` (a :class:`~pet.transport.tcp.Listener`), pair
    them by session id, serve each session in its own thread; return ``(completed,
    failed)`` sessions.

    Each connection has ``hello_timeout`` seconds to send a valid hello; a hello waits
    at most ``wait`` seconds for the other party of its session. Anything malformed
    (hello, request, a request above ``max_elements`` ring elements) fails only its own
    connection or session, with one ``log`` line (default: stderr); the dealer keeps
    serving. ``sessions=0`` serves until interrupted; ``sessions=N`` returns after N
    paired sessions ended, and raises :class:`~pet.errors.ChannelTimeout` if no session
    is running or starting for ``wait`` seconds. At most ``max_connections`` client
    connections are open at once (more are refused); ``acceptors`` threads accept (one is
    enough: :class:`pet.transport.tcp.Listener` runs each TLS and transport handshake in a
    thread of its own, so a stranger that stalls its handshake does not hold the acceptor).
    Closing ``listener`` ends the service (the acceptors stop at once).
    """
    if isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 0:
        raise InputError(f"sessions must be an int >= 0, got {sessions!r}")
    server = _Server(listener, sessions=sessions, wait=float(wait), hello_timeout=float(hello_timeout),
                     max_elements=_check_max_elements(max_elements), log=log or _stderr_log,
                     max_connections=int(max_connections))
    threads = [threading.Thread(target=server.accept_loop, daemon=True, name=f"pet-dealer-accept{i}")
               for i in range(max(1, int(acceptors)))]
    for t in threads:
        t.start()
    try:
        while True:
            with server.cond:
                server.cond.wait(0.25)
            server.expire_waiting()
            if server.done() or getattr(listener, "closed", False):
                break
    finally:
        server.stop = True
        for t in threads:
            t.join(timeout=5)
        with server.cond:
            waiting = server.pairing.drain()
        for ch in waiting:
            _refuse(ch, "the dealer is shutting down")
    return server.completed, server.failed
