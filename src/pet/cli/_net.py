"""Network options shared by every ``pet`` command that talks to a peer or the dealer:
TLS material with pinned roles, the ``--insecure`` escape hatch, and opening the peer and
dealer channels.

Two ways to give this party's TLS material (mutual TLS either way):

``--tls-dir DIR``
    the files of :func:`pet.transport.make_test_pki` (or the same layout from your own CA):
    ``DIR/ca.pem`` and ``DIR/<name>.pem`` / ``DIR/<name>.key``, where ``<name>`` is
    ``party0``, ``party1`` or ``dealer``;
``--tls-cert F --tls-key F --tls-ca F``
    explicit files, all three.

Roles are pinned: party ``p`` requires the name ``party{1-p}`` in the peer's certificate
(``--tls-peer-name`` to change it) and ``dealer`` in the dealer's (``--tls-dealer-name``);
``pet dealer`` requires ``party0`` or ``party1``. Without TLS, a command refuses any
non-loopback address unless ``--insecure`` is given.
"""

from __future__ import annotations

from pet.errors import InputError, TransportError

__all__ = ["add_tls_arguments", "tls_from_args", "dealer_tls", "refuse_plaintext", "open_peer", "open_dealer"]

_USE_TLS = "use mutual TLS (--tls-dir DIR, or --tls-cert/--tls-key/--tls-ca)"


def add_tls_arguments(parser, *, peer_name: bool = True, dealer_name: bool | None = None):
    """Add ``--tls-dir``, ``--tls-cert``, ``--tls-key``, ``--tls-ca``, ``--insecure`` and (for
    a party) ``--tls-peer-name`` and ``--tls-dealer-name``. ``dealer_name`` defaults to
    ``peer_name``."""
    group = parser.add_argument_group(
        "TLS (mutual, roles pinned): --tls-dir, or all of --tls-cert, --tls-key and --tls-ca; "
        "without them only loopback addresses are allowed (or --insecure)")
    group.add_argument("--tls-dir", metavar="DIR",
                       help="ca.pem and <name>.pem/.key for this party (party0, party1 or dealer)")
    group.add_argument("--tls-cert", metavar="FILE", help="this party's certificate (PEM)")
    group.add_argument("--tls-key", metavar="FILE", help="this party's private key (PEM, mode 0600)")
    group.add_argument("--tls-ca", metavar="FILE", help="CA certificate(s) that signed the peer's certificate (PEM)")
    if peer_name:
        group.add_argument("--tls-peer-name", metavar="NAME",
                           help="name the peer's certificate must carry (default party<1-P> for --party P)")
    if peer_name if dealer_name is None else dealer_name:
        group.add_argument("--tls-dealer-name", metavar="NAME",
                           help="name the dealer's certificate must carry (default dealer)")
    group.add_argument("--insecure", action="store_true",
                       help="allow plain TCP (no TLS) on a non-loopback address: only on a trusted network")
    if peer_name:
        parser.add_argument("--link", metavar="SPEC", default=None, type=parse_link,
                            help="for experiments: shape what this party sends to the peer and the dealer "
                                 "like a WAN link, e.g. rtt=20ms,bw=100mbit (pet.transport.Link)")
    return group


def parse_link(text):
    import argparse

    from pet.errors import PetError
    from pet.transport.link import Link

    try:
        return Link.parse(text)
    except PetError as exc:
        raise argparse.ArgumentTypeError(f"--link: {exc}") from None


def shaped(args, channel):
    """``channel`` wrapped by ``--link`` (what this side sends is shaped), or as is."""
    link = getattr(args, "link", None)
    return channel if link is None else link.wrap(channel)


def tls_from_args(args, own_name: str, *, peer_name=None):
    """The :class:`~pet.transport.tls.TLSConfig` the options describe, or None (plain TCP).

    The peer is pinned to ``peer_name`` if given, else ``--tls-peer-name``, else what the
    role ``own_name`` expects (``party0`` -> ``party1``, ``party1`` -> ``party0``, ``dealer``
    -> ``party0``/``party1``); for any other ``own_name``, to what this side's own
    certificate's role expects.
    """
    from pet.transport.tls import ROLE_PEERS, TLSConfig

    explicit = (getattr(args, "tls_cert", None), getattr(args, "tls_key", None), getattr(args, "tls_ca", None))
    directory = getattr(args, "tls_dir", None)
    if peer_name is None:
        peer_name = getattr(args, "tls_peer_name", None)
    names_given = [flag for flag, value in (("--tls-peer-name", getattr(args, "tls_peer_name", None)),
                                            ("--tls-dealer-name", getattr(args, "tls_dealer_name", None)))
                   if value]
    if any(explicit):
        if directory:
            raise InputError("give either --tls-dir or --tls-cert/--tls-key/--tls-ca, not both")
        if not all(explicit):
            raise InputError("TLS needs all three of --tls-cert, --tls-key and --tls-ca")
        if peer_name is None and own_name in ROLE_PEERS:
            peer_name = ROLE_PEERS[own_name]
        return TLSConfig(*explicit, peer_name=peer_name)
    if directory:
        if own_name in ROLE_PEERS:
            check_tls_dir(args, own_name)
        return TLSConfig.from_dir(directory, own_name, peer_name=peer_name)
    if names_given:
        raise InputError(f"{' and '.join(names_given)} needs --tls-dir or --tls-cert/--tls-key/--tls-ca")
    return None


def dealer_tls(args, tls):
    """The party's TLS config for its dealer link: the same material, pinned to
    ``--tls-dealer-name`` (default ``dealer``); None without TLS."""
    if tls is None:
        return None
    return tls.for_dealer(getattr(args, "tls_dealer_name", None) or "dealer")


def refuse_plaintext(args, tls, host: str, command: str, what: str, *, use_tls: str = _USE_TLS) -> None:
    """Raise :class:`~pet.errors.InputError` naming the TLS flags when ``host`` is not
    loopback, there is no TLS and ``--insecure`` was not given."""
    from pet.transport.tcp import is_loopback

    if tls is None and not getattr(args, "insecure", False) and not is_loopback(host):
        raise InputError(f"pet {command}: refusing plain TCP to {what} {host!r} (not a loopback address): "
                         f"{use_tls}, or pass --insecure if this network is trusted")


def open_peer(args, tls, command: str):
    """The channel to the other party: listen on ``args.listen`` (waiting ``args.wait``
    seconds for the peer) or connect to ``args.connect`` (retrying as long)."""
    import sys

    from pet.transport import tcp

    insecure = bool(getattr(args, "insecure", False))
    if args.listen:
        host, port = tcp.parse_address(args.listen)
        refuse_plaintext(args, tls, host, command, "listen on")
        print(f"pet {command}: party {args.party} waiting for the peer on {host}:{port} ...", file=sys.stderr)
        return shaped(args, tcp.listen(host, port, tls=tls, timeout=args.timeout, accept_timeout=args.wait,
                                       insecure=insecure))
    host, port = tcp.parse_address(args.connect)
    refuse_plaintext(args, tls, host, command, "connect to")
    print(f"pet {command}: party {args.party} connecting to the peer at {host}:{port} ...", file=sys.stderr)
    try:
        return shaped(args, tcp.connect(host, port, tls=tls, timeout=args.timeout, retry_for=args.wait,
                                        insecure=insecure))
    except TransportError as exc:
        raise explain_connect_failure(exc, tls, "the peer", args) from None


def open_dealer(args, tls, command: str = "dealer link"):
    """The channel to ``pet dealer`` at ``args.dealer``: ``tls`` is this party's config for
    the peer link; the dealer link uses the same material pinned to the dealer's name."""
    from pet.transport import tcp

    host, port = tcp.parse_address(args.dealer)
    refuse_plaintext(args, tls, host, command, "connect to the dealer at")
    try:
        channel = tcp.connect(host, port, tls=dealer_tls(args, tls), timeout=args.timeout, retry_for=args.wait,
                              insecure=bool(getattr(args, "insecure", False)))
    except TransportError as exc:
        raise explain_connect_failure(exc, tls, "the dealer", args) from None
    channel.peer_label = "the dealer"
    return shaped(args, channel)


def check_addresses(args, tls, command: str) -> None:
    """Refuse plaintext to non-loopback peer/dealer addresses before any work is done."""
    from pet.transport import tcp

    for attr, what in (("listen", "listen on"), ("connect", "connect to"), ("dealer", "connect to the dealer at")):
        value = getattr(args, attr, None)
        if value:
            refuse_plaintext(args, tls, tcp.parse_address(value)[0], command, what)


def explain_connect_failure(exc, tls, who: str, args):
    """``exc`` (a failed connect to ``who``: "the peer" or "the dealer") with a sentence
    saying what to check; the same class, so exit codes and handlers do not change."""
    text = str(exc)
    if text.startswith("could not connect to"):
        if who == "the dealer":
            hint = (f"could not reach the dealer at {args.dealer} within {args.wait:g} s: is `pet dealer --listen "
                    f"{args.dealer}` running? (start it first, or raise --wait){_detail(text)}")
        else:
            hint = (f"could not reach the peer at {args.connect} within {args.wait:g} s: is the other party "
                    f"running with --listen {args.connect}? It may have stopped: check its output "
                    f"(or raise --wait){_detail(text)}")
        return type(exc)(hint)
    if who == "the dealer":
        return type(exc)(f"dealer link ({args.dealer}): {text}")
    return exc


def _detail(text: str) -> str:
    start = text.find("[Errno")
    return f" [{text[start:text.find(']', start) + 1]}]" if start >= 0 else ""


def check_tls_dir(args, own_name: str) -> None:
    """``--tls-dir``: the directory and this role's three files exist (else an error naming
    the flag and the files expected)."""
    from pathlib import Path

    directory = getattr(args, "tls_dir", None)
    if not directory:
        return
    if not Path(directory).is_dir():
        raise InputError(f"--tls-dir {directory}: no such directory (it should hold ca.pem, {own_name}.pem and "
                         f"{own_name}.key; pet.transport.make_test_pki or docs/deployment.md make them)")
    missing = [f for f in ("ca.pem", f"{own_name}.pem", f"{own_name}.key") if not (Path(directory) / f).is_file()]
    if missing:
        raise InputError(f"--tls-dir {directory}: missing {', '.join(missing)} (this side is {own_name}: it needs "
                         f"ca.pem, {own_name}.pem and {own_name}.key)")
