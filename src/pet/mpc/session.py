"""A party's MPC session: the peer channel, the correlated-randomness source, sharing.

Both parties create a :class:`Session` and then call the same operations in the same
order. Every message between the parties is ``[tag, payload]`` where ``tag`` names the
operation, its shapes and a per-session counter; the receiver compares the tag with its
own and raises :class:`~pet.errors.ProtocolError` on a mismatch (different operation,
shape or order), so a mismatch is an error, never a garbage result.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from pet._validate import NOT_GIVEN, check_party, check_receiver
from pet.errors import InputError, PetTypeError, ProtocolError
from pet.mpc import ring
from pet.mpc.correlated import (
    SESSION_ID_BYTES,
    CorrelatedSource,
    DealerClient,
    typed_specs,
)
from pet.mpc.prg import PRG

__all__ = ["Session"]

_HELLO = "pet.mpc.session"
_SESSION_ID_LABEL = b"pet.mpc.session-id/v1"


def derive_session_id(nonce0: bytes, nonce1: bytes) -> bytes:
    """The session id both parties compute from the two hello nonces (party 0's first):
    the first 16 bytes of SHA-256 over a label and both nonces. Each party contributes a
    fresh random nonce, so the id is fresh if either party is honest; only the two
    parties (and whoever reads their channel, so use TLS) know it."""
    return hashlib.sha256(_SESSION_ID_LABEL + bytes(nonce0) + bytes(nonce1)).digest()[:SESSION_ID_BYTES]


#: Largest work array (elements) a session keeps for reuse (:meth:`Session.scratch`): 32 MiB
#: per name (a product of up to 2^21 elements reuses its openings; larger ones allocate).
SCRATCH_MAX_ELEMENTS = 1 << 22

#: Values of ``Session(correlations=...)``.
CORRELATIONS = ("dealer", "ot")


def _source_kind(dealer, correlations) -> str:
    """The kind of correlated-randomness source both parties announce in the hello:
    ``"ot"`` (dealer-free), ``"dealer"`` or ``"none"`` (linear operations only)."""
    if correlations is not None and correlations not in CORRELATIONS:
        raise InputError(f"correlations must be one of {', '.join(map(repr, CORRELATIONS))} or None, "
                         f"got {str(correlations)[:40]!r}")
    if correlations == "ot":
        if dealer is not None:
            raise InputError("pass either dealer= or correlations='ot' (dealer-free), not both")
        return "ot"
    if dealer is None:
        if correlations == "dealer":
            raise InputError("correlations='dealer' needs dealer= (a Channel to the dealer or a CorrelatedSource)")
        return "none"
    return getattr(dealer, "kind", "dealer") if isinstance(dealer, CorrelatedSource) else "dealer"


class Session:
    """One party's end of a two-party MPC session.

    Parameters
    ----------
    party : 0 or 1.
    channel : :class:`~pet.transport.Channel` to the other party.
    dealer : a :class:`~pet.transport.Channel` to the dealer (``pet dealer`` or the thread
        of :func:`~pet.mpc.run_local`), or a :class:`~pet.mpc.correlated.CorrelatedSource`.
    correlations : ``"ot"`` -- dealer-free: the two parties make the correlated randomness
        themselves with oblivious transfer over ``channel``
        (:class:`~pet.mpc.ot.source.OTSource`; no third party anywhere); ``"dealer"`` (the
        default when ``dealer`` is given) or ``None``. Passing ``dealer`` together with
        ``correlations="ot"`` is an :class:`~pet.errors.InputError`. Without either, only
        linear operations, sharing and revealing work.
    frac_bits : fractional bits of the fixed-point encoding of float inputs (default 16;
        0 makes every value an integer).

    On creation the parties exchange one hello message and check that they are parties 0
    and 1 with the same ``frac_bits`` and the same kind of source (``"ot"``, ``"dealer"``
    or none; else :class:`~pet.errors.ProtocolError`). Each hello
    carries a fresh 16-byte nonce from ``os.urandom``; both parties derive
    :attr:`session_id` from the two nonces (:func:`derive_session_id`) and present it to
    the dealer, which pairs the two parties' dealer connections by it.
    """

    def __init__(self, party, channel, *, dealer=None, correlations=None, frac_bits: int = 16):
        party = check_party(party)
        if channel is None or not hasattr(channel, "exchange"):
            raise PetTypeError("channel must be a pet.transport.Channel")
        kind = _source_kind(dealer, correlations)
        self.party = int(party)
        self.channel = channel
        self.frac_bits = ring.check_frac_bits(frac_bits)
        self._prg = PRG()  # private randomness (share masks), never shared with anyone
        self._counter = 0
        self.rounds = 0
        self._scratch: dict = {}  # name -> reusable work array (see scratch())
        nonce = os.urandom(SESSION_ID_BYTES)
        peer = channel.exchange([_HELLO, self.party, self.frac_bits, nonce, kind])
        if not (isinstance(peer, list) and len(peer) == 5 and peer[0] == _HELLO):
            raise ProtocolError("the peer did not open a pet.mpc session (or speaks another version of it)")
        if peer[1] != 1 - self.party:
            raise ProtocolError(f"both sides claim to be party {self.party}")
        if peer[2] != self.frac_bits:
            raise ProtocolError(f"frac_bits differ: this party {self.frac_bits}, peer {str(peer[2])[:20]}")
        if not isinstance(peer[3], bytes) or len(peer[3]) != SESSION_ID_BYTES:
            raise ProtocolError("the peer's session hello carries a malformed nonce")
        if peer[4] != kind:
            raise ProtocolError(f"the parties use different sources of correlated randomness: this party "
                                f"{kind!r}, the peer {str(peer[4])[:20]!r} (pass the same correlations=/dealer= "
                                "at both parties)")
        nonces = (nonce, peer[3]) if self.party == 0 else (peer[3], nonce)
        self.session_id = derive_session_id(*nonces)
        if kind == "ot" and dealer is None:
            from pet.mpc.ot.source import OTSource

            self.source = OTSource(channel, self.party)
            self.source.bind_session(self.session_id)
        elif dealer is None:
            self.source = None
        elif isinstance(dealer, CorrelatedSource):
            self.source = dealer
        elif hasattr(dealer, "send") and hasattr(dealer, "recv"):
            self.source = DealerClient(dealer, self.party, self.session_id)
        else:
            raise PetTypeError("dealer must be a Channel to the dealer or a CorrelatedSource")
        if isinstance(dealer, CorrelatedSource):
            self.source.bind_session(self.session_id)

    # -- context manager ---------------------------------------------------------------

    def close(self) -> None:
        """End the session with the dealer (the peer channel is left to its owner)."""
        if self.source is not None:
            self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __repr__(self) -> str:
        return f"<pet.mpc.Session party={self.party} frac_bits={self.frac_bits} ops={self._counter}>"

    # -- messaging (used by the protocols) ---------------------------------------------

    def _tag(self, op: str) -> str:
        self._counter += 1
        return f"{self._counter}:{op}"

    def _check(self, tag, got):
        if not (isinstance(got, list) and len(got) == 2):
            if isinstance(got, list) and len(got) == 3 and got[0] == "pet.ot":
                raise ProtocolError(f"party {self.party} is at {tag!r} but the peer sent an OT-extension message "
                                    "(it is generating correlated randomness: both parties must call the same "
                                    "operations in the same order)")
            raise ProtocolError("malformed message from the peer")
        if got[0] != tag:
            raise ProtocolError(
                f"operation mismatch: party {self.party} is at {tag!r}, the peer sent {str(got[0])[:120]!r} "
                "(both parties must call the same operations, with the same shapes, in the same order)"
            )
        return got[1]

    def exchange(self, op: str, payload):
        """Send ``payload`` and receive the peer's, both labelled ``op``: one round."""
        tag = self._tag(op)
        self.rounds += 1
        return self._check(tag, self.channel.exchange([tag, payload]))

    def send_to_peer(self, op: str, payload) -> None:
        """One-way message ``payload`` to the peer (the peer calls :meth:`recv_from_peer`)."""
        self.channel.send([self._tag(op), payload])

    def recv_from_peer(self, op: str):
        """Receive the peer's :meth:`send_to_peer` message for ``op``."""
        tag = self._tag(op)
        self.rounds += 1
        return self._check(tag, self.channel.recv())

    def correlated(self, specs: list) -> list:
        """Correlated randomness for ``specs`` from the source (see :mod:`.correlated`):
        a list of typed specs (:class:`~pet.mpc.correlated.Spec`); the legacy positional
        tuples ``(kind, *params)`` are still accepted and converted."""
        if self.source is None:
            raise InputError("this operation needs correlated randomness: create the Session with dealer=... "
                             "or correlations='ot'")
        return self.source.get(typed_specs(specs))

    def prepare(self, requests: list) -> None:
        """Offline phase: make the correlated randomness of future operations now, before
        the inputs exist, so the operations themselves cost only their online rounds.

        ``requests`` is a list of specs (one operation's request) or a list of such lists
        (a declared workload: one list per future operation, in the order they will run),
        e.g. ``[arithmetic.mul_specs(n, 16), boolean.msb_specs(n, correlations)]`` for a
        fixed-point product and a comparison of ``n`` elements (``correlations`` the
        session's source, ``"dealer"`` or ``"ot"``: the two sources compare with different
        material, and material of the wrong source is never used). Each later operation whose request is
        exactly the next prepared one uses it. Both parties must prepare the same requests
        in the same order. Works with either source: the dealer's material is requested
        (:meth:`~pet.mpc.correlated.DealerClient.prefetch`), the OT source generates it
        all in one extension (:meth:`~pet.mpc.ot.source.OTSource.prefetch_many`).
        """
        if self.source is None:
            raise InputError("prepare needs a source of correlated randomness: dealer=... or correlations='ot'")
        if not isinstance(requests, (list, tuple)):
            raise InputError("prepare expects a list of specs or a list of lists of specs")
        if requests and all(isinstance(r, list) for r in requests):
            batches = [typed_specs(r) for r in requests]
        else:
            batches = [typed_specs(requests)]
        many = getattr(self.source, "prefetch_many", None)
        if many is not None:
            many(batches)
        else:
            for specs in batches:
                self.source.prefetch(specs)

    def scratch(self, name: str, n: int) -> np.ndarray:
        """A reusable uint64 work array of ``n`` elements (contents undefined) for a protocol
        step that is done with it when it returns -- e.g. the openings a product sends:
        channels copy or write out what they send before ``send``/``exchange`` return.
        One buffer per ``name``, grown to the largest ``n`` asked (at most
        :data:`SCRATCH_MAX_ELEMENTS`; larger requests get a fresh array), so repeated large
        operations reuse their pages instead of faulting in fresh ones."""
        if n > SCRATCH_MAX_ELEMENTS:
            return np.empty(n, dtype=np.uint64)
        buf = self._scratch.get(name)
        if buf is None or buf.size < n:
            buf = self._scratch[name] = np.empty(n, dtype=np.uint64)
        return buf[:n]

    def private_words(self, shape) -> np.ndarray:
        """Fresh uniform uint64 words from this party's private PRG."""
        return self._prg.words(shape)

    # -- sharing ------------------------------------------------------------------------

    def share(self, x, owner: int, *, frac_bits: int | None = None):
        """Secret-share ``x`` held by party ``owner``; the other party passes ``None``.

        Float arrays are encoded with ``frac_bits`` (default the session's), bool and int
        arrays as integers (``frac_bits=0``) unless ``frac_bits`` is given.

        Protocol (1 round; 8 bytes per element from the owner, an empty acknowledgement
        back, which also catches both or neither party acting as the owner): the owner
        draws a uniform mask ``m`` from its private PRG, keeps ``m`` as its share and sends
        ``encode(x) - m`` with the shape and scale. The other party learns the shape and
        the encoding scale (public) and a uniformly random array.
        """
        from pet.mpc.shared import Shared

        owner = check_party(owner, "owner")
        if self.party == owner:
            if x is None:
                raise InputError(f"party {owner} owns the input: pass the array, not None")
            arr = np.asarray(x)
            if arr.dtype.kind not in "biuf":
                raise PetTypeError(f"x must be a numeric array, got dtype {arr.dtype}")
            if frac_bits is None:
                f = self.frac_bits if arr.dtype.kind == "f" else 0
            else:
                f = ring.check_frac_bits(frac_bits)
            enc = ring.encode(arr, f)
            mask = self.private_words(enc.shape)
            got = self.exchange(f"share<-{owner}", [int(f), enc - mask])
            if got is not None:
                raise ProtocolError(f"both parties called share(..., owner={owner}) as the owner")
            return Shared(self, mask, f)
        if x is not None:
            raise InputError(f"party {self.party} does not own this input: pass None (owner={owner})")
        msg = self.exchange(f"share<-{owner}", None)
        if msg is None:
            raise ProtocolError(f"neither party provided the input of share(..., owner={owner})")
        if not (isinstance(msg, list) and len(msg) == 2 and isinstance(msg[1], np.ndarray)):
            raise ProtocolError("malformed share message")
        f = ring.check_frac_bits(int(msg[0]))
        return Shared(self, np.ascontiguousarray(msg[1], dtype=np.uint64), f)

    def private_matrix(self, matrix, owner: int, *, frac_bits: int | None = None):
        """Prepare party ``owner``'s fixed private ``matrix`` (the other party passes
        ``None``) for many products ``pm @ shared_vectors`` with one reusable mask; see
        :class:`~pet.mpc.private_matrix.PrivateMatrix`. Returns the ``PrivateMatrix``."""
        from pet.mpc.private_matrix import PrivateMatrix

        return PrivateMatrix(self, matrix, owner, frac_bits=frac_bits)

    def reveal(self, s, to: int | None = NOT_GIVEN, *, reveal_to: int | None = NOT_GIVEN):
        """Open shared ``s`` to both parties (``to=None``) or only to party ``to``.
        ``reveal_to=`` is the same argument under the receiver spelling shared by every
        package (``pet.psi``, ``pet.sql``); pass one of the two.

        Returns the decoded numpy array (int64 for integer values, float64 for fixed
        point); the party that does not receive gets ``None``. One round: both send 8
        bytes per element (``to=None``), or only the non-receiving party does and the
        receiver answers with an empty acknowledgement (so a disagreement about ``to`` is a
        ProtocolError, not a hang). The receiver learns the value; the other party
        learns nothing.
        """
        from pet.mpc.shared import Shared

        wide = getattr(s, "ring_bits", 64) == 128  # pet.mpc.ring128.Shared128: 16 bytes per element
        if not (isinstance(s, Shared) or wide) or s.session is not self:
            raise PetTypeError("reveal expects a Shared value of this session")
        if to is not NOT_GIVEN and reveal_to is not NOT_GIVEN:
            raise InputError("pass to= or reveal_to=, not both")
        to = check_receiver(reveal_to, "reveal_to") if reveal_to is not NOT_GIVEN else \
            check_receiver(None if to is NOT_GIVEN else to, "to")
        if wide:
            from pet.mpc import ring128
            return ring128.reveal(self, s, to)
        op = f"reveal{s.shape}->{to}"
        if to is None:
            other = self.exchange(op, s.share)
        elif to == self.party:
            other = self.exchange(op, None)  # an empty acknowledgement: no data leaves
            if other is None:
                raise ProtocolError(f"both parties expect to receive reveal(to={to})")
        else:
            if self.exchange(op, s.share) is not None:
                raise ProtocolError(f"both parties sent their share for reveal(to={to})")
            return None
        if not isinstance(other, np.ndarray):
            raise ProtocolError("malformed reveal message")
        total = s.share + np.asarray(other, dtype=np.uint64).reshape(s.shape)
        return ring.decode(total, s.frac)

    # -- per-slice sharing and opening (each slice to or from its own party) -------------

    @staticmethod
    def _slice_owners(owners, length: int | None, name: str, *, both: bool) -> np.ndarray:
        arr = np.asarray(owners)
        if arr.ndim != 1 or arr.dtype.kind not in "iu" or (length is not None and arr.shape[0] != length):
            raise InputError(f"{name} must be a 1-D integer array with one entry per slice"
                             + (f" ({length})" if length is not None else ""))
        allowed = (-1, 0, 1) if both else (0, 1)
        if arr.size and not np.all(np.isin(arr, allowed)):
            raise InputError(f"{name} entries must be {'-1 (both), ' if both else ''}0 or 1")
        return arr.astype(np.int64)

    @staticmethod
    def _digest(shape, axis: int, owners: np.ndarray) -> str:
        """8 hex digits naming (shape, axis, owners) in an operation tag, so two parties
        that disagree on any of them get a ProtocolError (short: tags travel every round)."""
        import hashlib

        h = hashlib.blake2b(f"{tuple(shape)}/{axis}/".encode(), digest_size=4)
        h.update(np.ascontiguousarray(owners, dtype=np.int64).tobytes())
        return h.hexdigest()

    def reveal_split(self, s, to, *, axis: int = 0):
        """Open each slice of shared ``s`` along ``axis`` to the party named by the public
        array ``to`` (one entry per slice: 0 or 1 opens it to that party only, -1 to both).

        Returns the decoded slices this party receives (``to == party`` or ``-1``), in
        index order, stacked along ``axis`` (int64 for integer values, float64 for fixed
        point). One round: each party sends, in one message, its shares of the slices the
        peer receives (8 bytes per element). A party learns the slices it receives and
        nothing about the others. Both parties must pass the same ``to``: the operation
        tag carries a digest of it, so a disagreement is a ProtocolError, not a garbage
        result.
        """
        from pet.mpc.shared import Shared

        if not isinstance(s, Shared) or s.session is not self:
            raise PetTypeError("reveal_split expects a Shared value of this session")
        if s.ndim == 0:
            raise InputError("reveal_split needs an array with at least one axis")
        axis = int(axis) % s.ndim
        to = self._slice_owners(to, s.shape[axis], "to", both=True)
        mine = np.flatnonzero((to == self.party) | (to == -1))
        theirs = np.flatnonzero((to == 1 - self.party) | (to == -1))
        got = self.exchange(f"rsplit:{self._digest(s.shape, axis, to)}",
                            np.ascontiguousarray(np.take(s.share, theirs, axis=axis)))
        own = np.take(s.share, mine, axis=axis)
        if not isinstance(got, np.ndarray) or got.shape != own.shape:
            raise ProtocolError("malformed reveal_split message")
        return ring.decode(own + np.asarray(got, dtype=np.uint64), s.frac)

    def share_split(self, x, owners, *, axis: int = 0, frac_bits: int = 0):
        """Secret-share an array whose slices along ``axis`` belong to different parties:
        ``owners`` (public, one entry per slice, 0 or 1) names each slice's owner, and each
        party passes ``x``, the stack of its own slices in index order (possibly empty along
        ``axis``). ``frac_bits`` (default 0: integers) is public and the same for all slices.

        Returns the Shared array of all slices. Protocol as :meth:`share`, for both owners
        at once (1 round): each party keeps a uniform mask from its private PRG as its
        share of its own slices and sends ``encode(x) - mask`` (8 bytes per element); it
        receives uniform words for the peer's slices. Each party learns the shape and
        nothing else. The operation tag carries a digest of ``owners``.
        """
        from pet.mpc.shared import Shared

        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise PetTypeError(f"x must be a numeric array, got dtype {arr.dtype}")
        if arr.ndim == 0:
            raise InputError("share_split needs an array with at least one axis")
        axis = int(axis) % arr.ndim
        f = ring.check_frac_bits(frac_bits)
        owners = self._slice_owners(owners, None, "owners", both=False)
        mine = np.flatnonzero(owners == self.party)
        theirs = np.flatnonzero(owners != self.party)
        if arr.shape[axis] != mine.size:
            raise InputError(f"x has {arr.shape[axis]} slices along axis {axis}; this party owns {mine.size}")
        enc = ring.encode(arr, f)
        mask = self.private_words(enc.shape)
        shape = list(arr.shape)
        shape[axis] = owners.size
        got = self.exchange(f"ssplit:{self._digest(shape, axis, owners)}", enc - mask)
        shape[axis] = theirs.size
        if not isinstance(got, np.ndarray) or got.shape != tuple(shape):
            raise ProtocolError("malformed share_split message")
        shape[axis] = owners.size
        out = np.empty(tuple(shape), dtype=np.uint64)
        idx = [slice(None)] * arr.ndim
        idx[axis] = mine
        out[tuple(idx)] = mask
        idx[axis] = theirs
        out[tuple(idx)] = np.asarray(got, dtype=np.uint64)
        return Shared(self, out, f)
