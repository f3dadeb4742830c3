"""The OT engine: base OTs once per session, then IKNP extension in both directions.

Each party runs one OT-extension *sender* (direction ``d = party``) and one *receiver*
(direction ``1 - party``) over one channel. :meth:`OTEngine.extend` takes a list of
requests of mixed kinds and directions (:mod:`pet.mpc.ot.requests`) and serves all of
them together: per chunk of at most ``chunk`` OTs per direction, one message each way.

Protocol of one :meth:`~OTEngine.extend` call (IKNP, kappa = 128; ``K`` chunks):

* step ``k`` (one ``channel.exchange``): each party sends the receiver matrix of its chunk
  ``k`` -- ``u_j = G(k_j^0) ^ G(k_j^1) ^ r`` for the 128 base-OT seed pairs, 16 bytes per
  OT -- and the sender corrections of its chunk ``k - 1``; the first message also carries
  a digest of the request list, so two parties asking for different OTs stop with a
  :class:`~pet.errors.ProtocolError` instead of producing garbage;
* the sender of a chunk computes ``q_j = G(k_j^{s_j}) ^ s_j u_j``, transposes to one
  128-bit ``q_k = t_k ^ r_k s`` per OT, and hashes ``h0 = H(q_k)``, ``h1 = H(q_k ^ s)``;
  the receiver hashes ``ht = H(t_k)``;
* one last exchange carries the final corrections, unless every request is a random OT.

So a call costs ``K + 1`` messages each way (``K`` for random OTs only): for demand below
``chunk`` OTs per direction, two (one) messages each way. ``G`` is each base-OT seed's
own AES-CTR stream, opened once per session and continued across chunks and calls;
``H`` is the TCCR hash with the session id and a per-direction global OT counter as tweak
(:mod:`pet.mpc.ot.aes`). A new :class:`OTEngine` means new nonces, so a new session id,
new base OTs and new streams: nothing is reused across sessions.

What a party learns (semi-honest): as extension receiver it receives corrections, each
masked by a hash of a pad it does not know (the one of its non-chosen message); as sender
it receives ``u`` columns, each masked by the stream of the base-OT seed it did not get.
So every received byte is uniform given the party's own view.
"""

from __future__ import annotations

import hashlib

import numpy as np

from pet.errors import InputError, ProtocolError
from pet.mpc.ot import _kernels
from pet.mpc.ot.aes import SeedStreams, TCCRHash
from pet.mpc.ot.base import KAPPA, base_ots

__all__ = ["OTEngine", "DEFAULT_CHUNK"]

#: OTs per direction per message (a multiple of 64): 2^16 OTs = 1 MiB of ``u`` each way (cache-sized work).
DEFAULT_CHUNK = 1 << 16


def _pack_bits(bits) -> tuple:
    words = [0, 0]
    for j, b in enumerate(bits):
        if b:
            words[j // 64] |= 1 << (j % 64)
    return np.uint64(words[0]), np.uint64(words[1])


class _Layout:
    """The requests of one direction laid end to end in one OT index space."""

    def __init__(self, requests: list):
        self.requests = requests
        self.offsets = []
        total = 0
        for r in requests:
            self.offsets.append(total)
            total += r.count
        self.total = total

    def pieces(self, lo: int, hi: int):
        """``(request, local lo, local hi, slice start in the chunk)`` overlapping ``lo..hi``."""
        for r, o in zip(self.requests, self.offsets):
            a, b = max(lo, o), min(hi, o + r.count)
            if b > a:
                yield r, a - o, b - o, a - lo

    def corr_words(self, lo: int, hi: int) -> int:
        return sum(r.corr_words(a, b) for r, a, b, _ in self.pieces(lo, hi))


class OTEngine:
    """Both parties construct one with the same channel pair; the constructor runs the
    session handshake and base OTs (one message each way, a few tens of milliseconds).

    ``chunk`` (OTs per direction per message, a multiple of 64) bounds memory: about
    ``100 * chunk`` bytes of temporaries besides the requests' outputs.
    """

    def __init__(self, channel, party: int, *, chunk: int = DEFAULT_CHUNK):
        if party not in (0, 1):
            raise InputError(f"party must be 0 or 1, got {party!r}")
        if not isinstance(chunk, int) or chunk < 64 or chunk % 64:
            raise InputError(f"chunk must be a positive multiple of 64, got {chunk!r}")
        self.channel = channel
        self.party = int(party)
        self.chunk = chunk
        sid, choices, my_keys, pairs = base_ots(channel, self.party)
        self.session_id = sid
        self._s_bits = np.ascontiguousarray(choices, dtype=np.uint8)
        self._s = _pack_bits(choices)
        self._g_send = SeedStreams(my_keys)
        self._g_recv0 = SeedStreams([p[0] for p in pairs])
        self._g_recv1 = SeedStreams([p[1] for p in pairs])
        self._h_send = TCCRHash(sid, self.party)
        self._h_recv = TCCRHash(sid, 1 - self.party)
        self._ctr_send = 0
        self._ctr_recv = 0
        self.ots_sent = 0  # OTs this party was the sender of
        self.ots_received = 0
        self.messages = 0

    # -- extension --------------------------------------------------------------------------

    def extend(self, requests: list) -> list:
        """Serve ``requests`` (both parties pass the same kinds, senders and sizes in the
        same order) and return ``[request.result() for request in requests]``."""
        for r in requests:
            r.role = "sender" if r.sender == self.party else "receiver"
        send = _Layout([r for r in requests if r.sender == self.party])
        recv = _Layout([r for r in requests if r.sender != self.party])
        choice = (np.concatenate([r.choice_words() for r in recv.requests]) if recv.requests
                  else np.zeros(0, dtype=np.uint64))
        digest = hashlib.sha256(repr([r.describe() for r in requests]).encode()).digest()
        C = self.chunk
        n_send, n_recv = -(-send.total // C), -(-recv.total // C)
        steps = max(n_send, n_recv)
        if any(r.needs_correction for r in requests) and steps:
            steps += 1
        pending = None  # receiver chunk waiting for its corrections: (lo, hi, ht)
        corr_out = np.zeros(0, dtype=np.uint64)
        for k in range(steps):
            u = np.zeros((KAPPA, 0), dtype=np.uint64)
            this = None
            if k < n_recv:
                lo, hi = k * C, min(recv.total, (k + 1) * C)
                u, ht = self._receiver_chunk(choice[lo // 64:hi // 64], lo)
                this = (lo, hi, ht)
            msg = {"u": u, "d": corr_out}
            if k == 0:
                msg["h"] = digest
            peer = self.channel.exchange(msg)
            self.messages += 1
            self._check(peer, k, digest, send, recv, n_send)
            if pending is not None:
                self._receiver_finish(recv, pending, peer["d"])
                pending = None
            if this is not None:
                if any(r.needs_correction for r, *_ in recv.pieces(this[0], this[1])):
                    pending = this
                else:
                    self._receiver_finish(recv, this, np.zeros(0, dtype=np.uint64))
            corr_out = np.zeros(0, dtype=np.uint64)
            if k < n_send:
                lo, hi = k * C, min(send.total, (k + 1) * C)
                corr_out = self._sender_chunk(send, lo, hi, peer["u"])
        self._ctr_send += send.total
        self._ctr_recv += recv.total
        self.ots_sent += send.total
        self.ots_received += recv.total
        return [r.result() for r in requests]

    def _check(self, peer, k, digest, send, recv, n_send):
        if not isinstance(peer, dict) or not isinstance(peer.get("u"), np.ndarray) \
                or not isinstance(peer.get("d"), np.ndarray):
            raise ProtocolError("OT extension: the peer's message is not an extension message")
        if k == 0 and peer.get("h") != digest:
            raise ProtocolError("OT extension: the two parties requested different OTs")
        C = self.chunk
        words = (min(send.total, (k + 1) * C) - k * C) // 64 if k < n_send else 0
        u = peer["u"]
        if u.dtype != np.uint64 or u.shape != (KAPPA, words):
            raise ProtocolError(f"OT extension: the peer's u matrix has the wrong shape (expected {KAPPA} x {words})")
        if k >= 1 and (k - 1) * C < recv.total:
            lo, hi = (k - 1) * C, min(recv.total, k * C)
            expected = recv.corr_words(lo, hi)
        else:
            expected = 0
        d = peer["d"]
        if d.dtype != np.uint64 or d.shape != (expected,):
            raise ProtocolError(f"OT extension: the peer's corrections have the wrong size (expected {expected} words)")

    def _receiver_chunk(self, choice, lo):
        """``u`` rows to send and the hashed pads ``H(t_k)`` of one receiver chunk."""
        W = choice.shape[0]
        t0 = self._g_recv0.rows(W)
        t1 = self._g_recv1.rows(W)
        u = np.empty((KAPPA, W), dtype=np.uint64)
        _kernels.receiver_u(t0, t1, choice, u)
        t = np.empty((64 * W, 2), dtype=np.uint64)
        _kernels.transpose_rows_to_ots(t0, t)
        ht = self._h_recv.hash(t, self._ctr_recv + lo)
        return u, ht

    def _receiver_finish(self, recv, chunk, corr):
        lo, hi, ht = chunk
        pos = 0
        for r, a, b, start in recv.pieces(lo, hi):
            n = r.corr_words(a, b)
            r.on_receiver(a, b, ht[start:start + (b - a)], corr[pos:pos + n])
            pos += n

    def _sender_chunk(self, send, lo, hi, u):
        W = (hi - lo) // 64
        g = self._g_send.rows(W)
        _kernels.sender_q(g, u, self._s_bits)
        q = np.empty((64 * W, 2), dtype=np.uint64)
        _kernels.transpose_rows_to_ots(g, q)
        both = np.empty((2 * 64 * W, 2), dtype=np.uint64)
        _kernels.both_inputs(q, self._s[0], self._s[1], both)
        h = self._h_send.hash(both, self._ctr_send + lo, halves=2)
        m = 64 * W
        h0, h1 = h[:m], h[m:]
        out = []
        for r, a, b, start in send.pieces(lo, hi):
            c = r.on_sender(a, b, h0[start:start + (b - a)], h1[start:start + (b - a)])
            if c is not None:
                out.append(c)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)
