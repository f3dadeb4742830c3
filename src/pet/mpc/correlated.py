"""Correlated randomness: the recipes, and the party-side interface to their source.

Every piece of correlated randomness is described by a *spec*, a tuple
``(kind, *params)`` of ints and tuples. For each spec the two parties and the dealer run
the same deterministic *recipe*:

1. each party draws its own fields from its dealer PRG (a seed shared with the dealer
   only), in a fixed order;
2. the dealer, replaying both seeds, draws the same fields for both parties, computes
   the correlated values (e.g. ``c = a * b``) and sends the receiving party only the
   *correction* fields that replace the ones it did not draw.

This is seed compression: per Beaver triple the dealer sends one ring element, to one
party. The receiving party is party 1 except for the reusable-mask product, where it is
the party that does not own the private matrix.

Kinds (``shape`` is an array shape, fields in drawing order; "both" = both parties draw
them, "p0" = party 0 draws it and party 1 receives it as correction):

=================  ===========================================  =============================
kind               fields                                       correlation
=================  ===========================================  =============================
``triple``         both: a, b; p0: c                            c = a * b          (mod 2^64)
``matmul``         both: A (m,k), B (k,n); p0: C (m,n)          C = A @ B
``trunc``          both: r; p0: rs, rm                          rs = r >> s, rm = msb(r)
``and``            both: a, b (nb, *shape); p0: c (nb, *shape)  c = a & b         (XOR shares)
``cmpmask``        both: r; p0: rb                             rb = r  (XOR shares of bits)
``b2a``            both: rho (XOR shares); p0: ra (..., nbits)  ra[..., j] = bit j of rho
``reuse_setup``    owner: A (m, n)  (owner knows A entirely)    -
``reuse_mul``      other: B (n, t); owner: S (m, t)             S_other = A @ B - S_owner
=================  ===========================================  =============================

Semantics of ``msb`` and ``>>`` are on the uint64 ring element. What the dealer learns:
the kinds and shapes of the operations (not any value). What a party learns from the
dealer: its own uniformly random shares; every correction is masked by the other party's
PRG fields, which it never sees.

The party-side interface is :class:`CorrelatedSource`; :class:`DealerClient` implements
it with a dealer reached over a channel. A dealer-free source (OT-based) can implement the
same interface later.
"""

from __future__ import annotations

import numpy as np

from pet.errors import ProtocolError
from pet.mpc import _kernels
from pet.mpc.prg import PRG
from pet.mpc.ring_matmul import matmul_u64

__all__ = ["CorrelatedSource", "DealerClient", "draw", "corrections", "receiver", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 1

_ONE = np.uint64(1)


def _shape(t) -> tuple:
    return tuple(int(s) for s in t)


def receiver(spec) -> int | None:
    """The party that receives explicit correction values for ``spec`` (``None``: none)."""
    kind = spec[0]
    if kind == "reuse_setup":
        return None
    if kind == "reuse_mul":
        return 1 - int(spec[2])
    return 1


def draw(spec, prg: PRG, party: int) -> dict:
    """The fields ``party`` draws from its dealer PRG for ``spec`` (see the table)."""
    kind = spec[0]
    out = {}
    if kind == "triple":
        shape = _shape(spec[1])
        out["a"] = prg.words(shape)
        out["b"] = prg.words(shape)
        if party == 0:
            out["c"] = prg.words(shape)
    elif kind == "matmul":
        m, k, n = (int(v) for v in spec[1:4])
        out["a"] = prg.words((m, k))
        out["b"] = prg.words((k, n))
        if party == 0:
            out["c"] = prg.words((m, n))
    elif kind == "trunc":
        shape = _shape(spec[1])
        out["r"] = prg.words(shape)
        if party == 0:
            out["rs"] = prg.words(shape)
            out["rm"] = prg.words(shape)
    elif kind == "and":
        shape, nb = _shape(spec[1]), int(spec[2])
        out["a"] = prg.words(shape)
        out["b"] = prg.words((nb,) + shape)
        if party == 0:
            out["c"] = prg.words((nb,) + shape)
    elif kind == "cmpmask":
        shape = _shape(spec[1])
        out["r"] = prg.words(shape)
        if party == 0:
            out["rb"] = prg.words(shape)
    elif kind == "b2a":
        shape, nbits = _shape(spec[1]), len(spec[2])
        out["rho"] = prg.words(shape)
        if party == 0:
            out["ra"] = prg.words(shape + (nbits,))
    elif kind == "reuse_setup":
        owner, m, n = (int(v) for v in spec[1:4])
        if party == owner:
            out["A"] = prg.words((m, n))
    elif kind == "reuse_mul":
        _, owner, m, n, t = (int(v) for v in spec[1:6])
        if party == owner:
            out["s"] = prg.words((m, t))
        else:
            out["b"] = prg.words((n, t))
    else:
        raise ProtocolError(f"unknown correlated-randomness kind {kind!r}")
    return out


def corrections(spec, m0: dict, m1: dict, state: dict) -> dict:
    """Dealer side: the correction fields for :func:`receiver` of ``spec``, given both
    parties' drawn fields. ``state`` keeps reusable masks between specs."""
    kind = spec[0]
    if kind == "triple":
        c = np.empty_like(m0["c"])
        _kernels.triple_corr(m0["a"].reshape(-1), m1["a"].reshape(-1), m0["b"].reshape(-1), m1["b"].reshape(-1),
                             m0["c"].reshape(-1), c.reshape(-1))
        return {"c": c}
    if kind == "matmul":
        a = m0["a"] + m1["a"]
        b = m0["b"] + m1["b"]
        c = matmul_u64(a, b)
        c -= m0["c"]
        return {"c": c}
    if kind == "trunc":
        rs, rm = np.empty_like(m0["rs"]), np.empty_like(m0["rm"])
        _kernels.trunc_corr(m0["r"].reshape(-1), m1["r"].reshape(-1), m0["rs"].reshape(-1), m0["rm"].reshape(-1),
                            int(spec[2]), rs.reshape(-1), rm.reshape(-1))
        return {"rs": rs, "rm": rm}
    if kind == "and":
        nb = m0["c"].shape[0]
        c = np.empty_like(m0["c"])
        _kernels.and_corr(m0["a"].reshape(-1), m1["a"].reshape(-1), m0["b"].reshape(nb, -1), m1["b"].reshape(nb, -1),
                          m0["c"].reshape(nb, -1), c.reshape(nb, -1))
        return {"c": c}
    if kind == "cmpmask":
        return {"rb": (m0["r"] + m1["r"]) ^ m0["rb"]}
    if kind == "b2a":
        nb = len(spec[2])
        out = np.empty_like(m0["ra"])
        _kernels.b2a_corr(m0["rho"].reshape(-1), m1["rho"].reshape(-1), np.array(spec[2], dtype=np.int64),
                          m0["ra"].reshape(-1, nb), out.reshape(-1, nb))
        return {"ra": out}
    if kind == "reuse_setup":
        owner = int(spec[1])
        state[("reuse", int(spec[4]))] = (m0 if owner == 0 else m1)["A"]
        return {}
    if kind == "reuse_mul":
        handle, owner = int(spec[1]), int(spec[2])
        A = state.get(("reuse", handle))
        if A is None:
            raise ProtocolError(f"reuse_mul refers to unknown private matrix {handle}")
        mo, mx = (m0, m1) if owner == 0 else (m1, m0)
        return {"s": matmul_u64(A, mx["b"]) - mo["s"]}
    raise ProtocolError(f"unknown correlated-randomness kind {kind!r}")


class CorrelatedSource:
    """Party-side interface: ``get(specs) -> list[dict]``, one dict of fields per spec.

    Both parties call ``get`` with the same specs in the same order. ``close()`` ends
    the session with the source.
    """

    def get(self, specs: list) -> list:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        pass


def _wire(spec):
    """A spec as plain lists/ints, the form that crosses the wire."""
    return [list(v) if isinstance(v, (tuple, list)) else v for v in spec]


class _Material(dict):
    """Fields of one spec; the corrected ones arrive from the dealer on first access, so
    a party can start its protocol (openings use only PRG fields) while the dealer is
    still computing."""

    __slots__ = ("_client",)

    def __getitem__(self, key):
        if key not in self.keys() and self._client is not None:
            self._client._drain()
        return dict.__getitem__(self, key)


class DealerClient(CorrelatedSource):
    """Correlated randomness from a dealer (``pet.mpc.dealer``) over ``channel``.

    Handshake: send ``{"hello": "pet.mpc.dealer", "version", "party"}``, receive
    ``{"seed": 16 bytes}``. Then for each ``get(specs)``: send ``["get", specs]``; if this
    party receives corrections for some spec, one list with a dict per spec arrives; it is
    read lazily (on first access to a corrected field, or at the next request), in order.
    Party 0 normally sends and never waits (its material is all PRG-derived).
    :meth:`prefetch` moves the dealer work of known future operations offline.
    """

    def __init__(self, channel, party: int):
        self.channel = channel
        self.party = int(party)
        channel.send({"hello": "pet.mpc.dealer", "version": PROTOCOL_VERSION, "party": self.party})
        reply = channel.recv()
        if not isinstance(reply, dict) or "seed" not in reply:
            raise ProtocolError(f"unexpected dealer handshake reply: {reply!r:.200}")
        if "error" in reply:
            raise ProtocolError(f"dealer refused the session: {reply['error']}")
        self._prg = PRG(bytes(reply["seed"]))
        self._pending: list = []
        self._ready: list = []
        self._closed = False

    def prefetch(self, specs: list) -> None:
        """Request material for ``specs`` now (offline phase); a later :meth:`get` with the
        same specs returns it without contacting the dealer. Both parties must prefetch
        the same specs in the same order. :meth:`wait` blocks until it has arrived."""
        specs = [tuple(s) for s in specs]
        self._ready.append((specs, self._request(specs)))

    def wait(self) -> None:
        """Block until every requested correction has arrived."""
        self._drain()

    def get(self, specs: list) -> list:
        specs = [tuple(s) for s in specs]
        if self._ready and self._ready[0][0] == specs:
            return self._ready.pop(0)[1]
        return self._request(specs)

    def _request(self, specs: list) -> list:
        self.channel.send(["get", [_wire(s) for s in specs]])
        mats = []
        for s in specs:
            m = _Material(draw(s, self._prg, self.party))
            m._client = None
            mats.append(m)
        if any(receiver(s) == self.party for s in specs):
            for m in mats:
                m._client = self
            self._pending.append(mats)
        return mats

    def _drain(self) -> None:
        """Receive every outstanding correction message, in request order."""
        while self._pending:
            mats = self._pending.pop(0)
            corr = self.channel.recv()
            if isinstance(corr, dict) and "error" in corr:
                raise ProtocolError(f"dealer: {corr['error']}")
            if not isinstance(corr, list) or len(corr) != len(mats):
                raise ProtocolError("dealer sent a malformed correction message")
            for m, c in zip(mats, corr):
                if not isinstance(c, dict):
                    raise ProtocolError("dealer sent a malformed correction message")
                m.update(c)
                m._client = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._drain()
                self.channel.send(["close"])
            except Exception:  # the dealer may already be gone; closing must not fail
                pass
