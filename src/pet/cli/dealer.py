"""``pet dealer``: serve correlated randomness (Beaver triples etc.) to two MPC parties.

    pet dealer --listen 127.0.0.1:9100 [--sessions 1] [--max-elements N] [--tls-dir DIR]
               [--link rtt=20ms,bw=100mbit]

Both party processes connect to this address (``pet.transport.tcp.connect``) and pass
the channel as ``Session(party, peer_channel, dealer=channel)``. The dealer is a third
party trusted not to collude with either of them; it learns only the kinds and shapes of
the operations, never inputs or results. Each session gets fresh seeds from
``os.urandom``. The two connections of a session are paired by the session id both
parties derive and present (never by arrival order), sessions run concurrently, and a
malformed or oversized request fails only its own connection or session (one log line on
stderr). With ``--sessions 0`` it serves until killed.
With TLS, each connecting party must present a certificate naming ``party0`` or ``party1``
(the channel's ``peer_name``); without TLS only a loopback ``--listen`` address is allowed,
unless ``--insecure``. ``--link`` (for experiments) shapes what the dealer sends to each
party like a WAN link (:class:`pet.transport.Link`); the parties shape their own sends with
their ``--link``.
"""

from __future__ import annotations

import argparse
import sys

from pet.cli._net import add_tls_arguments, parse_link, refuse_plaintext, tls_from_args

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dealer",
        help="correlated-randomness dealer for pet.mpc sessions (a third, non-colluding party)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen", metavar="HOST:PORT", required=True, help="address the two parties connect to")
    p.add_argument("--sessions", type=int, default=1, metavar="N",
                   help="number of two-party sessions to serve, 0 = until killed (default 1)")
    p.add_argument("--wait", type=float, default=300.0, metavar="SECONDS",
                   help="how long a party waits for the other party of its session, and how long a "
                        "bounded dealer (--sessions N) waits for a session (default 300)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="receive timeout once connected (default 600)")
    p.add_argument("--max-elements", type=int, default=None, metavar="N",
                   help="largest number of ring elements one request may make the dealer hold "
                        "(default 2^27 = 134217728, 1 GiB)")
    add_tls_arguments(p, peer_name=False)
    p.add_argument("--link", metavar="SPEC", default=None, type=parse_link,
                   help="for experiments: shape what the dealer sends to each party like a WAN link, "
                        "e.g. rtt=20ms,bw=100mbit (pet.transport.Link)")
    p.set_defaults(func=run)


class ShapedListener:
    """A listener whose accepted channels send through ``link`` (:meth:`pet.transport.Link.wrap`);
    everything else is the wrapped listener's."""

    def __init__(self, listener, link):
        self._listener, self._link = listener, link

    def accept(self, *args, **kwargs):
        return self._link.wrap(self._listener.accept(*args, **kwargs))

    def __getattr__(self, name):
        return getattr(self._listener, name)


def run(args) -> int:
    from pet.errors import InputError
    from pet.mpc import dealer
    from pet.transport import tcp

    if args.sessions < 0:
        raise InputError("--sessions must be >= 0")
    max_elements = dealer.DEFAULT_MAX_ELEMENTS if args.max_elements is None else args.max_elements
    if max_elements < 1:
        raise InputError("--max-elements must be >= 1")
    host, port = tcp.parse_address(args.listen)
    tls = tls_from_args(args, "dealer", peer_name=("party0", "party1"))
    refuse_plaintext(args, tls, host, "dealer", "listen on")
    with tcp.Listener(host, port, tls=tls, timeout=args.timeout, insecure=args.insecure) as listener:
        print(f"pet dealer listening on {host}:{listener.port}", file=sys.stderr, flush=True)
        # accepts, pairs by session id, serves sessions in threads; a hostile client only
        # fails its own connection (one stderr line each)
        served = listener if args.link is None else ShapedListener(listener, args.link)
        _, failed = dealer.serve_listener(served, sessions=args.sessions, wait=args.wait,
                                          hello_timeout=min(dealer.HELLO_TIMEOUT, args.wait),
                                          max_elements=max_elements)
    return 1 if failed else 0
