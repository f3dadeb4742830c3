"""The dealer: a third party that produces correlated randomness for two parties.

Trust model: semi-honest, and trusted not to collude with either party (as CrypTen's
TTP and SPU's beaver server). It never sees inputs, shares or outputs; it learns only
the kinds and shapes of the operations. It is never one of the computing parties.

Protocol with each party (see :class:`~pet.mpc.correlated.DealerClient`):

1. handshake: the party sends hello (party id, version); the dealer answers with a fresh
   16-byte seed from ``os.urandom``;
2. per request: both parties send ``["get", specs]``; the dealer checks the two lists
   are identical (else both sessions fail with :class:`~pet.errors.ProtocolError`),
   replays both parties' PRGs and sends the receiving party its corrections;
3. ``["close"]`` from both ends the session.

Traffic: one ring element per triple (to one party) plus the small requests.
"""

from __future__ import annotations

from pet.errors import PeerDisconnected, ProtocolError
from pet.mpc.correlated import PROTOCOL_VERSION, corrections, draw, receiver
from pet.mpc.prg import PRG, new_seed

__all__ = ["serve"]


def _handshake(channels):
    seeds = []
    for p, ch in enumerate(channels):
        hello = ch.recv()
        if not isinstance(hello, dict) or hello.get("hello") != "pet.mpc.dealer":
            raise ProtocolError(f"party {p} did not send a dealer hello")
        if hello.get("version") != PROTOCOL_VERSION:
            ch.send({"seed": b"", "error": f"version {hello.get('version')} != {PROTOCOL_VERSION}"})
            raise ProtocolError(f"party {p} speaks dealer protocol {hello.get('version')}")
        seeds.append((int(hello.get("party", -1)), ch))
    by_party = dict(seeds)
    if sorted(by_party) != [0, 1]:
        raise ProtocolError(f"dealer needs parties 0 and 1, got {sorted(by_party)}")
    chans = [by_party[0], by_party[1]]
    prgs = []
    for ch in chans:
        seed = new_seed()
        ch.send({"seed": seed})
        prgs.append(PRG(seed))
    return chans, prgs


def serve(channel_a, channel_b) -> int:
    """Serve one two-party session over ``channel_a`` and ``channel_b`` (either order:
    the hello says which party is which). Returns the number of requests served.

    Raises :class:`~pet.errors.ProtocolError` if the parties ask for different material,
    and :class:`~pet.errors.PeerDisconnected` if a party goes away without closing the
    session (both channels are closed first, so the other party fails promptly).
    """
    chans, prgs = _handshake([channel_a, channel_b])
    state: dict = {}
    served = 0
    try:
        while True:
            reqs = [ch.recv() for ch in chans]
            if reqs[0] == ["close"] and reqs[1] == ["close"]:
                return served
            if reqs[0] != reqs[1] or not isinstance(reqs[0], list) or len(reqs[0]) != 2 or reqs[0][0] != "get":
                raise ProtocolError(
                    f"the parties asked the dealer for different things: {str(reqs[0])[:200]} vs {str(reqs[1])[:200]}"
                )
            specs = [tuple(tuple(v) if isinstance(v, list) else v for v in s) for s in reqs[0][1]]
            out: list[list] = [[], []]
            for spec in specs:
                m0 = draw(spec, prgs[0], 0)
                m1 = draw(spec, prgs[1], 1)
                corr = corrections(spec, m0, m1, state)
                rec = receiver(spec)
                for p in (0, 1):
                    out[p].append(corr if rec == p else {})
            for p in (0, 1):
                if any(receiver(s) == p for s in specs):
                    chans[p].send(out[p])
            served += 1
    except PeerDisconnected as exc:
        # a party vanished without closing the session: end it for the other party too
        for ch in chans:
            ch.close()
        raise PeerDisconnected(f"dealer: a party disconnected in the middle of the session ({exc})") from None
    except BaseException:
        for ch in chans:
            ch.close()
        raise
