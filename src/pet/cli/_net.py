"""Network options shared by every ``pet`` command that talks to a peer or the dealer:
TLS material, and opening the peer and dealer channels.

Two ways to give this party's TLS material (mutual TLS either way):

``--tls-dir DIR``
    the files of :func:`pet.transport.make_test_pki` (or the same layout from your own CA):
    ``DIR/ca.pem`` and ``DIR/<name>.pem`` / ``DIR/<name>.key``, where ``<name>`` is
    ``party0``, ``party1`` or ``dealer``;
``--tls-cert F --tls-key F --tls-ca F``
    explicit files, all three.
"""

from __future__ import annotations

from pet.errors import InputError

__all__ = ["add_tls_arguments", "tls_from_args", "open_peer", "open_dealer"]


def add_tls_arguments(parser, *, peer_name: bool = True):
    """Add ``--tls-dir``, ``--tls-cert``, ``--tls-key``, ``--tls-ca`` (and ``--tls-peer-name``)."""
    group = parser.add_argument_group(
        "TLS (mutual): --tls-dir, or all of --tls-cert, --tls-key and --tls-ca; none for plain TCP")
    group.add_argument("--tls-dir", metavar="DIR",
                       help="ca.pem and <name>.pem/.key for this party (party0, party1 or dealer)")
    group.add_argument("--tls-cert", metavar="FILE", help="this party's certificate (PEM)")
    group.add_argument("--tls-key", metavar="FILE", help="this party's private key (PEM)")
    group.add_argument("--tls-ca", metavar="FILE", help="CA certificate(s) that signed the peer's certificate (PEM)")
    if peer_name:
        group.add_argument("--tls-peer-name", metavar="NAME", help="name the peer's certificate must carry")
    return group


def tls_from_args(args, own_name: str, *, peer_name: str | None = None):
    """The :class:`~pet.transport.tls.TLSConfig` the options describe, or None (plain TCP)."""
    from pet.transport.tls import TLSConfig

    explicit = (getattr(args, "tls_cert", None), getattr(args, "tls_key", None), getattr(args, "tls_ca", None))
    directory = getattr(args, "tls_dir", None)
    if peer_name is None:
        peer_name = getattr(args, "tls_peer_name", None)
    if any(explicit):
        if directory:
            raise InputError("give either --tls-dir or --tls-cert/--tls-key/--tls-ca, not both")
        if not all(explicit):
            raise InputError("TLS needs all three of --tls-cert, --tls-key and --tls-ca")
        return TLSConfig(*explicit, peer_name=peer_name)
    if directory:
        return TLSConfig.from_dir(directory, own_name, peer_name=peer_name)
    if peer_name:
        raise InputError("--tls-peer-name needs --tls-dir or --tls-cert/--tls-key/--tls-ca")
    return None


def open_peer(args, tls, command: str):
    """The channel to the other party: listen on ``args.listen`` (waiting ``args.wait``
    seconds for the peer) or connect to ``args.connect`` (retrying as long)."""
    import sys

    from pet.transport import tcp

    if args.listen:
        host, port = tcp.parse_address(args.listen)
        print(f"pet {command}: party {args.party} waiting for the peer on {host}:{port} ...", file=sys.stderr)
        return tcp.listen(host, port, tls=tls, timeout=args.timeout, accept_timeout=args.wait)
    host, port = tcp.parse_address(args.connect)
    return tcp.connect(host, port, tls=tls, timeout=args.timeout, retry_for=args.wait)


def open_dealer(args, tls):
    """The channel to ``pet dealer`` at ``args.dealer`` (same TLS material as for the peer)."""
    from pet.transport import tcp

    host, port = tcp.parse_address(args.dealer)
    return tcp.connect(host, port, tls=tls, timeout=args.timeout, retry_for=args.wait)
