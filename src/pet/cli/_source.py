"""``--dealer HOST:PORT`` or ``--no-dealer``: where a command's correlated randomness comes from."""

from __future__ import annotations

import contextlib

from pet.errors import InputError


def add_source_arguments(p) -> None:
    """``--dealer`` (address of ``pet dealer``) and ``--no-dealer`` (dealer-free: the two
    parties make the correlated randomness with oblivious transfer); exactly one."""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--dealer", metavar="HOST:PORT", help="address of `pet dealer`")
    g.add_argument("--no-dealer", action="store_true",
                   help="dealer-free: the two parties make the correlated randomness themselves by oblivious "
                        "transfer (no third party; both parties must pass it)")


@contextlib.contextmanager
def open_source(args, tls):
    """Yields the Session keyword arguments: ``{"dealer": channel}`` or
    ``{"correlations": "ot"}`` (``--no-dealer``); InputError unless exactly one is given."""
    if bool(args.dealer) == bool(args.no_dealer):
        raise InputError("pass exactly one of --dealer HOST:PORT and --no-dealer")
    if args.no_dealer:
        yield {"correlations": "ot"}
        return
    from pet.cli._net import open_dealer

    with open_dealer(args, tls) as dealer:
        yield {"dealer": dealer}
