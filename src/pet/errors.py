"""The exception hierarchy of pet.

Every error pet raises on purpose subclasses :class:`PetError`, so callers can catch
everything from the library with one ``except`` clause, and a more specific class when
they care why::

    PetError
    ├── InputError (also ValueError)          bad argument or data from the caller
    │   └── PetTypeError (also TypeError)     an argument of the wrong type
    ├── TransportError (also ConnectionError) the channel between the parties failed
    │   ├── PeerDisconnected                  the other side closed or died
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
