"""The exception hierarchy of pet.

Every error pet raises on purpose subclasses :class:`PetError`, so callers can catch
everything from the library with one ``except`` clause, and a more specific class when
they care why::

    PetError
    ├── InputError (also ValueError)          bad argument or data from the caller
    │   └── PetTypeError (also TypeError)     an argument of the wrong type
    ├── TransportError (also ConnectionError) the channel between the parties failed
    │   ├── PeerDisconnected                  the other side closed or died
    │   │   └── PeerFailed                    ... after saying why (a goodbye frame)
    │   ├── ChannelClosed                     this side's channel was already closed
    │   ├── ChannelTimeout (also TimeoutError) a blocking receive waited too long
    │   ├── FrameTooLarge                     a frame longer than the configured limit
    │   └── TLSError                          TLS handshake or certificate failure
    ├── ProtocolError                         the peer did something the protocol forbids:
    │   │                                     a malformed frame, a mismatched operation,
    │   │                                     different parameters on the two sides
    │   └── (FrameTooLarge is also a ProtocolError)
    ├── PartyFailed                           a party run by ``run_parties`` raised
    │   └── PartyTimeout (also TimeoutError)  a party run by ``run_parties`` hung
    ├── PrecisionError (also ValueError)      a value outside the fixed-point safe range
    └── BudgetError                           differential-privacy budget problems
        └── BudgetExceeded                    a request would over-spend a budget
"""

from __future__ import annotations

__all__ = [
    "PetError",
    "InputError",
    "PetTypeError",
    "TransportError",
    "PeerDisconnected",
    "PeerFailed",
    "PEER_FAILURE_REASONS",
    "failure_reason",
    "describe_peer_failure",
    "ChannelClosed",
    "ChannelTimeout",
    "FrameTooLarge",
    "TLSError",
    "ProtocolError",
    "PartyFailed",
    "PartyTimeout",
    "PrecisionError",
    "BudgetError",
    "BudgetExceeded",
]


class PetError(Exception):
    """Base class of every error raised on purpose by pet."""


class InputError(PetError, ValueError):
    """An argument or input data set the caller passed is invalid.

    The message names the argument and says what was expected.
    """


class PetTypeError(InputError, TypeError):
    """An argument has a type pet does not accept."""


class TransportError(PetError, ConnectionError):
    """The channel between the parties failed."""


class PeerDisconnected(TransportError):
    """The other party closed the channel or died (possibly in the middle of a message)."""


class PeerFailed(PeerDisconnected):
    """The other party failed (or was interrupted) and said so before closing: it sent a
    goodbye frame carrying one reason from :data:`PEER_FAILURE_REASONS` (never its error
    text or data). ``reason`` is that key, or None if the peer sent one this side does not
    know."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


#: The reasons a party may give its peer when it stops early (the goodbye frame of
#: :meth:`pet.transport.Channel.fail`): key -> what the peer's error message says. A fixed
#: vocabulary, so nothing about the failing party's data crosses the wire.
PEER_FAILURE_REASONS = {
    "interrupted": "the peer was interrupted (Ctrl-C or a signal)",
    "duplicate-keys": "the peer failed: duplicate keys in its input",
    "input": "the peer failed: invalid input or options on its side",
    "missing-column": "the peer failed: a column it needs is missing from its input",
    "model-key": "the peer failed: its model is encrypted and it has no key to decrypt it",
    "output": "the peer failed: it could not write its output",
    "task": "the peer failed: a task of its job failed",
    "dealer": "the peer failed: it lost its connection to the dealer",
    "transport": "the peer failed: a network error on its side",
    "timeout": "the peer failed: it timed out waiting for a message",
    "protocol": "the peer failed: a protocol error on its side",
    "precision": "the peer failed: a value outside the fixed-point range on its side",
    "budget": "the peer failed: its privacy budget does not allow the request",
    "internal": "the peer failed: an unexpected error on its side",
}


def describe_peer_failure(reason) -> str:
    """The sentence this side shows for a peer's goodbye ``reason`` (anything outside the
    vocabulary becomes a fixed 'unrecognised reason' sentence, never the peer's text)."""
    if reason == "interrupted":
        return PEER_FAILURE_REASONS[reason]
    if isinstance(reason, str) and reason in PEER_FAILURE_REASONS:
        return PEER_FAILURE_REASONS[reason] + " (the details are in the peer's own output)"
    return "the peer failed and closed the connection (it gave a reason this version does not know)"


def failure_reason(exc: BaseException) -> str:
    """The :data:`PEER_FAILURE_REASONS` key describing ``exc``, this party's own failure:
    an explicit ``exc.peer_reason`` if it is in the vocabulary, else by the exception's
    class. Never the exception's text."""
    explicit = getattr(exc, "peer_reason", None)
    if explicit in PEER_FAILURE_REASONS:
        return explicit
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return "interrupted"
    for cls, reason in ((PrecisionError, "precision"), (BudgetError, "budget"), (ChannelTimeout, "timeout"),
                        (TransportError, "transport"), (ProtocolError, "protocol"), (InputError, "input"),
                        (FileNotFoundError, "input"), (PermissionError, "output")):
        if isinstance(exc, cls):
            return reason
    return "internal"


class ChannelClosed(TransportError):
    """An operation was attempted on a channel that this side already closed."""


class ChannelTimeout(TransportError, TimeoutError):
    """A blocking receive (or send) waited longer than the channel's timeout."""


class ProtocolError(PetError):
    """The peer sent something the protocol does not allow.

    Raised for malformed frames (bad magic or version, truncated, unknown type tag,
    forbidden dtype, nesting too deep), and when the two parties disagree on what they
    are doing (different operations, shapes or parameters).
    """


class FrameTooLarge(ProtocolError, TransportError):
    """A frame announced (or would have) a size above the channel's maximum frame size."""


class TLSError(TransportError):
    """TLS handshake failure: untrusted certificate, missing client certificate, or a
    plaintext peer talking to a TLS endpoint."""


class PartyFailed(PetError):
    """Raised by ``run_parties`` when a party fails without an exception of its own
    (for example, its thread died)."""


class PartyTimeout(PartyFailed, TimeoutError):
    """A party run by ``run_parties`` did not finish before the timeout."""


class PrecisionError(PetError, ValueError):
    """A value does not fit the fixed-point encoding's safe range."""


class BudgetError(PetError):
    """A differential-privacy budget operation is invalid."""


class BudgetExceeded(BudgetError):
    """A request would spend more privacy budget than is available."""
