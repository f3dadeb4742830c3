"""Correlated randomness: one typed *spec* per kind, and the party-side source interface.

Every piece of correlated randomness is described by a small frozen dataclass (a *spec*:
:class:`Triple`, :class:`MatmulTriple`, :class:`TruncPair`, :class:`AndTriple`,
:class:`CmpMask`, :class:`B2A`, :class:`ReuseSetup`, :class:`ReuseMul`). Each spec knows

* its parameters, validated on construction (:class:`~pet.errors.InputError`) and on
  :meth:`Spec.from_wire` (:class:`~pet.errors.ProtocolError`);
* :meth:`Spec.fields`: the fields a party draws, in drawing order, with their shapes;
* :meth:`Spec.receiver`: the party that receives explicit corrections (or ``None``);
* :meth:`Spec.corrections`: how the dealer computes them from both parties' fields;
* :meth:`Spec.to_wire` / :meth:`Spec.from_wire`: its form on the wire;
* :meth:`Spec.elements`: the ring elements it makes the dealer hold (for bounding).

For each spec the two parties and the dealer run the same deterministic recipe:

1. each party draws its own fields from its dealer PRG (a seed shared with the dealer
   only), in the fixed order of :meth:`Spec.fields`;
2. the dealer, replaying both seeds, draws the same fields for both parties, computes
   the correlated values (e.g. ``c = a * b``) and sends the receiving party only the
   *correction* fields that replace the ones it did not draw (the fields the other party
   draws and it does not).

This is seed compression: per Beaver triple the dealer sends one ring element, to one
party. The receiving party is party 1 except for the reusable-mask product, where it is
the party that does not own the private matrix, and ``b2amul``, where it is party 0.

Kinds (``shape`` is an array shape, fields in drawing order; "both" = both parties draw
them, "p0" = party 0 draws it and party 1 receives it as correction):

=================  ===========================================  =============================
kind (class)       fields                                       correlation
=================  ===========================================  =============================
``triple``         both: a, b; p0: c                            c = a * b          (mod 2^64)
``matmul``         both: A (m,k), B (k,n); p0: C (m,n)          C = A @ B
``trunc``          both: r; p0: rs, rm                          rs = r >> s, rm = msb(r)
``and``            both: a, b (nb, *shape); p0: c (nb, *shape)  c = a & b         (XOR shares)
``cmpmask``        both: r; p0: rb                              rb = r  (XOR shares of bits)
``b2a``            both: rho (XOR shares); p0: ra (..., nbits)  ra[..., j] = bit j of rho
``reuse_setup``    owner: A (m, n)  (owner knows A entirely)    -
``reuse_mul``      other: B (n, t); owner: S (m, t)             S_other = A @ B - S_owner
``triple128``      both: a, b (*shape, 2); p0: c (*shape, 2)    c = a * b         (mod 2^128)
``wrapbit``        both: wbit (own random bit); p0: wprod       wprod = wbit_0 wbit_1
``b2amul``         both: rho, b (shape or (nbits,)); p1: ra,    ra[..., j] = bit j of rho,
                   rb (..., nbits) (party 0 receives them)      rb[..., j] = ra[..., j] * b
=================  ===========================================  =============================

Semantics of ``msb`` and ``>>`` are on the uint64 ring element. What the dealer learns:
the kinds and shapes of the operations (not any value). What a party learns from the
dealer: its own uniformly random shares; every correction is masked by the other party's
PRG fields, which it never sees.

Wire form (dealer protocol version :data:`PROTOCOL_VERSION`): a spec is the list
``[kind, *params]`` with shapes and bit lists as lists of ints, exactly the positional
form of protocol version 1, so the requests cost the same bytes:
``["triple", shape]``, ``["matmul", m, k, n]``, ``["trunc", shape, shift]``,
``["and", shape, nb]``, ``["cmpmask", shape]``, ``["b2a", shape, bits]``,
``["reuse_setup", owner, m, n, handle]``, ``["reuse_mul", handle, owner, m, n, t]``,
and for the wide ring (new kinds; the 64-bit kinds' bytes are unchanged)
``["triple128", shape]``, ``["wrapbit", shape]``, ``["b2amul", shape, bits, per_bit]``.
Version 2 changed the hello (it carries the session id, see :class:`DealerClient`), not
the spec form. The legacy tuple form ``(kind, *params)`` is accepted by :func:`as_spec`.

The party-side interface is :class:`CorrelatedSource` (``get(list of specs) -> list of
field dicts``); :class:`DealerClient` implements it with a dealer reached over a channel.
A dealer-free source (OT-based) implements the same interface, per spec class.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from pet.errors import InputError, ProtocolError
from pet.mpc import _kernels
from pet.mpc.prg import CHUNK_WORDS, PRG, Keystream
from pet.mpc.ring_matmul import matmul_u64

__all__ = [
    "B2A",
    "B2AMul",
    "PROTOCOL_VERSION",
    "SESSION_ID_BYTES",
    "SPEC_KINDS",
    "AndTriple",
    "CmpMask",
    "CorrelatedSource",
    "DealerClient",
    "MatmulTriple",
    "ReuseMul",
    "ReuseSetup",
    "Spec",
    "Triple",
    "Triple128",
    "TruncPair",
    "WrapBit",
    "as_spec",
    "check_session_id",
    "corrections",
    "draw",
    "field_pieces",
    "material_source",
    "receiver",
    "spec_from_wire",
    "typed_specs",
]

#: Version of the dealer protocol: 2 = hello with the session id (spec wire form as in 1).
PROTOCOL_VERSION = 2
#: Length of the session id both parties present to the dealer.
SESSION_ID_BYTES = 16

#: Largest number of dimensions of a spec shape, and largest single dimension.
_MAX_NDIM = 8
_MAX_DIM = 1 << 40
#: Largest reusable-matrix handle.
_MAX_HANDLE = (1 << 63) - 1


# -- parameter checks (InputError; from_wire turns them into ProtocolError) -------------

def _int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{what} must be an int, got {type(value).__name__}")
    value = int(value)
    if not lo <= value <= hi:
        raise InputError(f"{what} must be in {lo}..{hi}")
    return value


def _shape(value, what: str) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise InputError(f"{what} must be a tuple of ints, got {type(value).__name__}")
    if len(value) > _MAX_NDIM:
        raise InputError(f"{what} has more than {_MAX_NDIM} dimensions")
    return tuple(_int(v, f"{what} dimension", 0, _MAX_DIM) for v in value)


def _size(shape) -> int:
    return math.prod(shape)


#: Elementwise specs (:class:`Triple`, :class:`TruncPair`) of at least this many elements
#: are streamed (:meth:`Spec.streamed`): their fields are read in pieces of
#: :data:`~pet.mpc.prg.CHUNK_WORDS` words into reused buffers instead of being drawn as
#: whole arrays (fewer fresh pages and cache misses; below it the per-piece set-up costs
#: more than it saves). Not part of the protocol: the words are the same either way.
STREAM_MIN_ELEMENTS = 1 << 16


def _fresh(n: int) -> np.ndarray:
    return np.empty(n, dtype=np.uint64)


def field_pieces(sources: list, n: int, chunk: int = CHUNK_WORDS):
    """Walk ``n`` elements of several fields in pieces: yields ``(start, count, arrays)``
    with one array of ``count`` words per source, for elements ``start .. start+count``.
    A source is a :class:`~pet.mpc.prg.Keystream` (read into a buffer reused for every
    piece: use each piece before asking for the next) or a flat uint64 array (sliced)."""
    bufs = [np.empty(min(chunk, n) + 2, dtype=np.uint64) if isinstance(src, Keystream) else None
            for src in sources]
    for i0 in range(0, n, chunk):
        m = min(chunk, n - i0)
        yield i0, m, [src.words_into(buf, m) if buf is not None else src[i0:i0 + m]
                      for src, buf in zip(sources, bufs)]


def material_source(mat, name: str):
    """Field ``name`` of one spec's material as a :func:`field_pieces` source: its keystream
    reader when the field is streamed (not drawn yet), else the field as a flat array (for a
    dealer correction this waits for the dealer)."""
    stream = mat.stream(name) if isinstance(mat, _Material) else None
    return stream if stream is not None else np.ascontiguousarray(mat[name]).reshape(-1)


class Spec:
    """One piece of correlated randomness (abstract base of the frozen spec classes).

    Subclasses set :attr:`kind`, list their parameters as dataclass fields in wire order,
    and implement :meth:`fields`, :meth:`corrections` and (if not party 1)
    :meth:`receiver`."""

    kind: ClassVar[str] = ""

    # -- the recipe ---------------------------------------------------------------------

    def fields(self, party: int) -> tuple:
        """``((name, shape), ...)``: the fields ``party`` draws from its dealer PRG, in
        drawing order."""
        raise NotImplementedError

    def receiver(self) -> int | None:
        """The party that receives explicit correction fields (``None``: none)."""
        return 1

    def correction_fields(self) -> tuple:
        """``((name, shape), ...)`` the dealer sends :meth:`receiver`: the fields the other
        party draws and the receiver does not."""
        rec = self.receiver()
        if rec is None:
            return ()
        own = {name for name, _ in self.fields(rec)}
        return tuple((name, shape) for name, shape in self.fields(1 - rec) if name not in own)

    def draw(self, prg: PRG, party: int) -> dict:
        """The fields ``party`` draws from its dealer PRG, in order."""
        return {name: prg.words(shape) for name, shape in self.fields(party)}

    def corrections(self, m0: dict, m1: dict, state: dict) -> dict:
        """Dealer side: the correction fields for :meth:`receiver`, given both parties'
        drawn fields. ``state`` keeps reusable masks between specs of one session."""
        raise NotImplementedError

    def streamed(self) -> bool:
        """Whether the dealer and the parties stream this spec's PRG fields (pass over them
        with :meth:`PRG.skip <pet.mpc.prg.PRG.skip>` and read them in pieces when used,
        see :meth:`stream_corrections`) instead of drawing whole arrays. The keystream
        words are the same either way; only large elementwise specs stream."""
        return False

    def stream_corrections(self, streams0: dict, streams1: dict, alloc=None) -> dict:
        """Dealer side, for :meth:`streamed` specs: the corrections computed piece by piece
        from both parties' fields given as :class:`~pet.mpc.prg.Keystream` readers (name ->
        reader at the field's offset). ``alloc(n)`` gives each output's uint64 array of
        ``n`` elements (default: a fresh one; the dealer reuses its buffers of the last
        request)."""
        raise NotImplementedError

    def elements(self) -> int:
        """Ring elements the dealer holds for this spec: both parties' fields and the
        corrections (what a request is bounded by)."""
        total = 0
        for party in (0, 1):
            total += sum(_size(shape) for _, shape in self.fields(party))
        return total + sum(_size(shape) for _, shape in self.correction_fields())

    # -- wire form ----------------------------------------------------------------------

    def to_wire(self) -> list:
        """``[kind, *params]`` with tuples as lists (see the module docstring)."""
        out = [self.kind]
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out.append(list(v) if isinstance(v, tuple) else v)
        return out

    @classmethod
    def from_wire(cls, params) -> Spec:
        """The spec of this class from its wire parameters (the list after the kind);
        :class:`~pet.errors.ProtocolError` for a wrong count, type or range."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(params, (list, tuple)) or len(params) != len(names):
            raise ProtocolError(f"correlated kind {cls.kind!r} takes {len(names)} parameters ({', '.join(names)})")
        try:
            return cls(*params)
        except InputError as exc:
            raise ProtocolError(f"correlated kind {cls.kind!r}: {exc}") from None

    def check_correction(self, corr) -> dict:
        """Party side: ``corr`` must hold exactly the correction fields, uint64 arrays of
        their shapes (else :class:`~pet.errors.ProtocolError`)."""
        expected = dict(self.correction_fields())
        if not isinstance(corr, dict) or set(corr) != set(expected):
            raise ProtocolError(f"dealer sent a malformed correction for {self.kind!r}")
        for name, shape in expected.items():
            v = corr[name]
            if not isinstance(v, np.ndarray) or v.dtype != np.uint64 or v.shape != shape:
                raise ProtocolError(f"dealer sent a malformed correction for {self.kind!r} (field {name!r})")
        return corr


def _frozen(cls):
    return dataclasses.dataclass(frozen=True)(cls)


@_frozen
class Triple(Spec):
    """Beaver triple ``c = a * b`` (mod 2^64), elementwise over ``shape``."""

    shape: tuple
    kind: ClassVar[str] = "triple"

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape, "triple shape"))

    def fields(self, party):
        s = self.shape
        return (("a", s), ("b", s)) + ((("c", s),) if party == 0 else ())

    def corrections(self, m0, m1, state):
        c = np.empty_like(m0["c"])
        _kernels.triple_corr(m0["a"].reshape(-1), m1["a"].reshape(-1), m0["b"].reshape(-1), m1["b"].reshape(-1),
                             m0["c"].reshape(-1), c.reshape(-1))
        return {"c": c}

    def streamed(self):
        return _size(self.shape) >= STREAM_MIN_ELEMENTS

    def stream_corrections(self, streams0, streams1, alloc=None):
        n = _size(self.shape)
        c = (alloc or _fresh)(n)
        sources = [streams0["a"], streams1["a"], streams0["b"], streams1["b"], streams0["c"]]
        for i0, m, (a0, a1, b0, b1, c0) in field_pieces(sources, n):
            _kernels.triple_corr(a0, a1, b0, b1, c0, c[i0:i0 + m])
        return {"c": c.reshape(self.shape)}


@_frozen
class MatmulTriple(Spec):
    """Matrix triple ``C = A @ B`` with ``A`` (m, k), ``B`` (k, n)."""

    m: int
    k: int
    n: int
    kind: ClassVar[str] = "matmul"

    def __post_init__(self):
        for name in ("m", "k", "n"):
            object.__setattr__(self, name, _int(getattr(self, name), f"matmul {name}", 0, _MAX_DIM))

    def fields(self, party):
        out = (("a", (self.m, self.k)), ("b", (self.k, self.n)))
        return out + ((("c", (self.m, self.n)),) if party == 0 else ())

    def corrections(self, m0, m1, state):
        c = matmul_u64(m0["a"] + m1["a"], m0["b"] + m1["b"])
        c -= m0["c"]
        return {"c": c}


@_frozen
class TruncPair(Spec):
    """Truncation pair: ``r``, ``rs = r >> shift``, ``rm = msb(r)`` over ``shape``."""

    shape: tuple
    shift: int
    kind: ClassVar[str] = "trunc"

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape, "trunc shape"))
        object.__setattr__(self, "shift", _int(self.shift, "trunc shift", 0, 63))

    def fields(self, party):
        s = self.shape
        return (("r", s),) + ((("rs", s), ("rm", s)) if party == 0 else ())

    def corrections(self, m0, m1, state):
        rs, rm = np.empty_like(m0["rs"]), np.empty_like(m0["rm"])
        _kernels.trunc_corr(m0["r"].reshape(-1), m1["r"].reshape(-1), m0["rs"].reshape(-1), m0["rm"].reshape(-1),
                            self.shift, rs.reshape(-1), rm.reshape(-1))
        return {"rs": rs, "rm": rm}

    def streamed(self):
        return _size(self.shape) >= STREAM_MIN_ELEMENTS

    def stream_corrections(self, streams0, streams1, alloc=None):
        n = _size(self.shape)
        rs, rm = (alloc or _fresh)(n), (alloc or _fresh)(n)
        sources = [streams0["r"], streams1["r"], streams0["rs"], streams0["rm"]]
        for i0, m, (r0, r1, rs0, rm0) in field_pieces(sources, n):
            _kernels.trunc_corr(r0, r1, rs0, rm0, self.shift, rs[i0:i0 + m], rm[i0:i0 + m])
        return {"rs": rs.reshape(self.shape), "rm": rm.reshape(self.shape)}


@_frozen
class AndTriple(Spec):
    """A family of ``nb`` AND triples sharing ``a``: ``c_j = a & b_j`` (XOR shares)."""

    shape: tuple
    nb: int
    kind: ClassVar[str] = "and"

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape, "and shape"))
        object.__setattr__(self, "nb", _int(self.nb, "and nb", 1, 1 << 16))

    def fields(self, party):
        s, w = self.shape, (self.nb,) + self.shape
        return (("a", s), ("b", w)) + ((("c", w),) if party == 0 else ())

    def corrections(self, m0, m1, state):
        nb = self.nb
        c = np.empty_like(m0["c"])
        _kernels.and_corr(m0["a"].reshape(-1), m1["a"].reshape(-1), m0["b"].reshape(nb, -1), m1["b"].reshape(nb, -1),
                          m0["c"].reshape(nb, -1), c.reshape(nb, -1))
        return {"c": c}


@_frozen
class CmpMask(Spec):
    """Comparison mask: arithmetic shares ``r`` and XOR shares ``rb`` of the same words."""

    shape: tuple
    kind: ClassVar[str] = "cmpmask"

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape, "cmpmask shape"))

    def fields(self, party):
        return (("r", self.shape),) + ((("rb", self.shape),) if party == 0 else ())

    def corrections(self, m0, m1, state):
        return {"rb": (m0["r"] + m1["r"]) ^ m0["rb"]}


@_frozen
class B2A(Spec):
    """XOR-shared words ``rho`` and arithmetic shares ``ra[..., j]`` of bit ``bits[j]``."""

    shape: tuple
    bits: tuple
    kind: ClassVar[str] = "b2a"

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape, "b2a shape"))
        if not isinstance(self.bits, (tuple, list)) or not 1 <= len(self.bits) <= 64:
            raise InputError("b2a bits must be a tuple of 1..64 bit positions")
        object.__setattr__(self, "bits", tuple(_int(b, "b2a bit", 0, 63) for b in self.bits))

    def fields(self, party):
        return (("rho", self.shape),) + ((("ra", self.shape + (len(self.bits),)),) if party == 0 else ())

    def corrections(self, m0, m1, state):
        nb = len(self.bits)
        out = np.empty_like(m0["ra"])
        _kernels.b2a_corr(m0["rho"].reshape(-1), m1["rho"].reshape(-1), np.array(self.bits, dtype=np.int64),
                          m0["ra"].reshape(-1, nb), out.reshape(-1, nb))
        return {"ra": out}


@_frozen
class ReuseSetup(Spec):
    """Reusable mask ``A`` (m, n) known to ``owner`` and the dealer (kept under ``handle``
    for later :class:`ReuseMul` specs of the same session)."""

    owner: int
    m: int
    n: int
    handle: int
    kind: ClassVar[str] = "reuse_setup"

    def __post_init__(self):
        object.__setattr__(self, "owner", _int(self.owner, "reuse_setup owner", 0, 1))
        for name in ("m", "n"):
            object.__setattr__(self, name, _int(getattr(self, name), f"reuse_setup {name}", 0, _MAX_DIM))
        object.__setattr__(self, "handle", _int(self.handle, "reuse_setup handle", 0, _MAX_HANDLE))

    def receiver(self):
        return None

    def fields(self, party):
        return (("A", (self.m, self.n)),) if party == self.owner else ()

    def corrections(self, m0, m1, state):
        state[("reuse", self.handle)] = (self.owner, (m0 if self.owner == 0 else m1)["A"])
        return {}


@_frozen
class ReuseMul(Spec):
    """For the mask ``A`` of ``handle``: the other party's uniform ``b`` (n, t) and shares
    ``s`` of ``A @ b`` (m, t) (the owner's drawn, the other's corrected)."""

    handle: int
    owner: int
    m: int
    n: int
    t: int
    kind: ClassVar[str] = "reuse_mul"

    def __post_init__(self):
        object.__setattr__(self, "handle", _int(self.handle, "reuse_mul handle", 0, _MAX_HANDLE))
        object.__setattr__(self, "owner", _int(self.owner, "reuse_mul owner", 0, 1))
        for name in ("m", "n", "t"):
            object.__setattr__(self, name, _int(getattr(self, name), f"reuse_mul {name}", 0, _MAX_DIM))

    def receiver(self):
        return 1 - self.owner

    def fields(self, party):
        if party == self.owner:
            return (("s", (self.m, self.t)),)
        return (("b", (self.n, self.t)),)

    def corrections(self, m0, m1, state):
        entry = state.get(("reuse", self.handle))
        if entry is None:
            raise ProtocolError(f"reuse_mul refers to unknown private matrix {self.handle}")
        owner, A = entry
        if owner != self.owner or A.shape != (self.m, self.n):
            raise ProtocolError(f"reuse_mul does not match the setup of private matrix {self.handle}")
        mo, mx = (m0, m1) if self.owner == 0 else (m1, m0)
        return {"s": matmul_u64(A, mx["b"]) - mo["s"]}


@_frozen
class Triple128(Spec):
    """Beaver triple ``c = a * b`` (mod 2^128) over ``shape``: each field has shape
    ``shape + (2,)`` (low and high uint64 limbs, :mod:`pet.mpc.ring128`)."""

    shape: tuple
    kind: ClassVar[str] = "triple128"

    def __post_init__(self):
        shape = _shape(self.shape, "triple128 shape")
        if len(shape) >= _MAX_NDIM:
            raise InputError(f"triple128 shape has more than {_MAX_NDIM - 1} dimensions")
        object.__setattr__(self, "shape", shape)

    def fields(self, party):
        s = self.shape + (2,)
        return (("a", s), ("b", s)) + ((("c", s),) if party == 0 else ())

    def corrections(self, m0, m1, state):
        from pet.mpc import _kernels128

        c = np.empty_like(m0["c"])
        _kernels128.triple_corr(m0["a"].reshape(-1, 2), m1["a"].reshape(-1, 2), m0["b"].reshape(-1, 2),
                                m1["b"].reshape(-1, 2), m0["c"].reshape(-1, 2), c.reshape(-1, 2))
        return {"c": c}


@_frozen
class WrapBit(Spec):
    """A random bit ``wbit`` per element at each party (its own) and additive shares
    ``wprod`` (mod 2^64) of the product of the two parties' bits: the material of one
    wrap-bit step of :mod:`pet.mpc.ring128` (lifting Z_2^64 to Z_2^128, truncation in
    Z_2^128)."""

    shape: tuple
    kind: ClassVar[str] = "wrapbit"

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape, "wrapbit shape"))

    def fields(self, party):
        return (("wbit", self.shape),) + ((("wprod", self.shape),) if party == 0 else ())

    def draw(self, prg, party):
        out = super().draw(prg, party)
        out["wbit"] &= np.uint64(1)
        return out

    def corrections(self, m0, m1, state):
        return {"wprod": m0["wbit"] * m1["wbit"] - m0["wprod"]}


@_frozen
class B2AMul(Spec):
    """:class:`B2A` material times a uniform multiplier (for :mod:`pet.mpc.bit_products`):
    XOR-shared words ``rho`` (``shape``), arithmetic shares ``b`` of a uniform multiplier --
    one per element (``per_bit=0``: shape ``shape``) or one per listed bit (``per_bit=1``:
    shape ``(len(bits),)``) --, and arithmetic shares ``ra[..., j]`` of bit ``bits[j]`` of
    ``rho`` and ``rb[..., j]`` of that bit times its multiplier (the element's, or bit
    ``j``'s)."""

    shape: tuple
    bits: tuple
    per_bit: int
    kind: ClassVar[str] = "b2amul"

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape, "b2amul shape"))
        if not isinstance(self.bits, (tuple, list)) or not 1 <= len(self.bits) <= 64:
            raise InputError("b2amul bits must be a tuple of 1..64 bit positions")
        object.__setattr__(self, "bits", tuple(_int(b, "b2amul bit", 0, 63) for b in self.bits))
        object.__setattr__(self, "per_bit", _int(self.per_bit, "b2amul per_bit", 0, 1))

    def receiver(self):
        return 0  # party 0: party 1 receives most other kinds' corrections, this balances the dealer's links

    def fields(self, party):
        wide = self.shape + (len(self.bits),)
        mult = (len(self.bits),) if self.per_bit else self.shape
        return (("rho", self.shape), ("b", mult)) + ((("ra", wide), ("rb", wide)) if party == 1 else ())

    def corrections(self, m0, m1, state):
        pos = np.array(self.bits, dtype=np.uint64)
        bit = ((m0["rho"] ^ m1["rho"])[..., None] >> pos) & np.uint64(1)
        mult = m0["b"] + m1["b"]
        rb = bit * (mult if self.per_bit else mult[..., None])
        return {"ra": bit - m1["ra"], "rb": rb - m1["rb"]}


#: kind -> spec class.
SPEC_KINDS = {cls.kind: cls for cls in (Triple, MatmulTriple, TruncPair, AndTriple, CmpMask, B2A, ReuseSetup,
                                        ReuseMul, Triple128, WrapBit, B2AMul)}


def spec_from_wire(obj) -> Spec:
    """A spec from its wire form ``[kind, *params]``; :class:`~pet.errors.ProtocolError`
    for an unknown kind or bad parameters."""
    if not isinstance(obj, (list, tuple)) or not obj or not isinstance(obj[0], str):
        raise ProtocolError("a correlated-randomness spec must be a list [kind, *params]")
    cls = SPEC_KINDS.get(obj[0])
    if cls is None:
        raise ProtocolError(f"unknown correlated-randomness kind {obj[0][:40]!r}")
    return cls.from_wire(list(obj[1:]))


def as_spec(obj) -> Spec:
    """``obj`` as a typed spec: a :class:`Spec` unchanged, or the legacy positional tuple
    ``(kind, *params)`` (same form as the wire) converted; :class:`~pet.errors.InputError`
    if it is neither."""
    if isinstance(obj, Spec):
        return obj
    try:
        return spec_from_wire(obj)
    except ProtocolError as exc:
        raise InputError(f"not a correlated-randomness spec: {exc}") from None


# -- module-level helpers (the recipe of any spec, typed or legacy) ---------------------

def receiver(spec) -> int | None:
    """The party that receives explicit correction values for ``spec`` (``None``: none)."""
    return as_spec(spec).receiver()


def draw(spec, prg: PRG, party: int) -> dict:
    """The fields ``party`` draws from its dealer PRG for ``spec``."""
    return as_spec(spec).draw(prg, party)


def corrections(spec, m0: dict, m1: dict, state: dict) -> dict:
    """Dealer side: the correction fields of ``spec`` given both parties' fields."""
    return as_spec(spec).corrections(m0, m1, state)


class CorrelatedSource:
    """Party-side interface: ``get(specs) -> list[dict]``, one dict of fields per spec.

    ``specs`` is a list of :class:`Spec` objects (legacy tuples are converted by
    :meth:`pet.mpc.Session.correlated`). Both parties call ``get`` with the same specs in
    the same order. :meth:`bind_session` gives the source the session id both parties
    derived (a :class:`~pet.mpc.Session` calls it once, right after its hello);
    ``close()`` ends the session with the source. ``prefetch(specs)`` (both
    implementations) makes the material of a future ``get(specs)`` ahead of time (offline
    phase; :meth:`pet.mpc.Session.prepare`).
    """

    #: What the :class:`~pet.mpc.Session` hello announces (both parties must agree):
    #: ``"dealer"`` for a third party's material, ``"ot"`` for the dealer-free source.
    kind: str = "dealer"

    def bind_session(self, session_id: bytes) -> None:  # pragma: no cover - interface
        """The session id both parties share (:data:`SESSION_ID_BYTES` bytes)."""

    def get(self, specs: list) -> list:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        pass


def typed_specs(specs) -> list:
    """``specs`` as a list of typed specs (legacy ``(kind, *params)`` tuples converted by
    :func:`as_spec`)."""
    if not isinstance(specs, (list, tuple)):
        raise InputError("specs must be a list of correlated-randomness specs")
    return [as_spec(s) for s in specs]


class _Material(dict):
    """Fields of one spec; the corrected ones arrive from the dealer on first access, so
    a party can start its protocol (openings use only PRG fields) while the dealer is
    still computing. The PRG fields of a :meth:`Spec.streamed` spec are not drawn up
    front: :meth:`stream` reads one in pieces, and the first ``mat[name]`` draws it whole
    (the same words either way)."""

    __slots__ = ("_client", "_lazy", "_prg")

    def __init__(self, *args):
        super().__init__(*args)
        self._client = None
        self._lazy = None  # name -> (keystream offset, shape) of fields not drawn yet
        self._prg = None

    def __getitem__(self, key):
        lazy = self._lazy
        if lazy and key in lazy:
            offset, shape = lazy.pop(key)
            dict.__setitem__(self, key, self._prg.words_at(offset, shape))
        elif not dict.__contains__(self, key) and self._client is not None:
            self._client._drain(upto=self)
        return dict.__getitem__(self, key)

    def __contains__(self, key):
        return dict.__contains__(self, key) or bool(self._lazy and key in self._lazy)

    def get(self, key, default=None):
        return self[key] if key in self else default

    # whole-dict views draw the fields not drawn yet first, so ``dict(mat)``, ``{**mat}``,
    # iteration and copies see every field (dict() takes the keys() path because
    # __iter__ is overridden)
    def _draw_all(self) -> None:
        if self._lazy:
            for key in list(self._lazy):
                self[key]

    def keys(self):
        self._draw_all()
        return dict.keys(self)

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        self._draw_all()
        return dict.items(self)

    def values(self):
        self._draw_all()
        return dict.values(self)

    def copy(self):
        self._draw_all()
        return dict(dict.items(self))

    def __len__(self):
        return dict.__len__(self) + (len(self._lazy) if self._lazy else 0)

    def stream(self, name: str):
        """A :class:`~pet.mpc.prg.Keystream` reader of PRG field ``name`` if it is streamed
        and not drawn yet (each call starts at the field's first word), else ``None``."""
        lazy = self._lazy
        if lazy and name in lazy:
            return self._prg.stream(lazy[name][0])
        return None


def check_session_id(session_id) -> bytes:
    """``session_id`` as bytes of length :data:`SESSION_ID_BYTES` (else InputError)."""
    if not isinstance(session_id, (bytes, bytearray)) or len(session_id) != SESSION_ID_BYTES:
        raise InputError(f"session_id must be {SESSION_ID_BYTES} bytes")
    return bytes(session_id)


class DealerClient(CorrelatedSource):
    """Correlated randomness from a dealer (``pet.mpc.dealer``) over ``channel``.

    Handshake (once the session id is known: ``session_id=`` here, or
    :meth:`bind_session` from the :class:`~pet.mpc.Session`): send ``{"hello":
    "pet.mpc.dealer", "version": 2, "party", "session": 16 bytes}``, receive ``{"seed": 16
    bytes}`` (or ``{"seed": b"", "error": text}``). The dealer pairs the two hellos that
    carry the same session id, so it never mixes up two sessions. Then for each
    ``get(specs)``: send ``["get", [spec.to_wire() ...]]``; if this party receives
    corrections for some spec, one list with a dict per spec arrives; it is read lazily
    (on first access to a corrected field, or at the next request), in order, and checked
    against the spec (field names, dtype, shapes). Party 0 normally sends and never waits
    (its material is all PRG-derived). :meth:`prefetch` moves the dealer work of known
    future operations offline.
    """

    def __init__(self, channel, party: int, session_id: bytes | None = None):
        if party not in (0, 1) or isinstance(party, bool):
            raise InputError(f"party must be 0 or 1, got {party!r}")
        self.channel = channel
        self.party = int(party)
        self.session_id: bytes | None = None
        self._prg: PRG | None = None
        self._pending: list = []
        self._ready: list = []
        self._closed = False
        if session_id is not None:
            self.bind_session(session_id)

    def bind_session(self, session_id: bytes) -> None:
        """Open the dealer session for ``session_id`` (the handshake); a second call with
        the same id does nothing."""
        session_id = check_session_id(session_id)
        if self.session_id is not None:
            if session_id != self.session_id:
                raise InputError("this DealerClient is already bound to another session")
            return
        self.channel.send({"hello": "pet.mpc.dealer", "version": PROTOCOL_VERSION, "party": self.party,
                           "session": session_id})
        reply = self.channel.recv()
        if not isinstance(reply, dict) or "seed" not in reply:
            raise ProtocolError("unexpected dealer handshake reply")
        if "error" in reply:
            raise ProtocolError(f"dealer refused the session: {str(reply['error'])[:300]}")
        seed = reply["seed"]
        if not isinstance(seed, bytes) or len(seed) != 16:
            raise ProtocolError("dealer sent a malformed seed")
        self._prg = PRG(seed)
        self.session_id = session_id

    def _check_bound(self) -> None:
        if self._prg is None:
            raise InputError("DealerClient has no session id yet: pass session_id=, or pass the client to "
                             "pet.mpc.Session(..., dealer=client), which binds it")

    def prefetch(self, specs: list) -> None:
        """Request material for ``specs`` now (offline phase); a later :meth:`get` with the
        same specs returns it without contacting the dealer. Both parties must prefetch
        the same specs in the same order. :meth:`wait` blocks until it has arrived."""
        specs = typed_specs(specs)
        mats = self._request(specs)
        for m in mats:  # streamed fields are drawn now too: this is the offline phase
            m._draw_all()
        self._ready.append((specs, mats))

    def wait(self) -> None:
        """Block until every requested correction has arrived."""
        self._drain()

    def get(self, specs: list) -> list:
        specs = typed_specs(specs)
        if self._ready and self._ready[0][0] == specs:
            return self._ready.pop(0)[1]
        return self._request(specs)

    def _request(self, specs: list) -> list:
        self._check_bound()
        self.channel.send(["get", [s.to_wire() for s in specs]])
        mats = []
        for s in specs:
            if s.streamed():  # pass over the fields now, read them when used
                m = _Material()
                m._lazy = {name: (self._prg.skip(8 * _size(shape)), shape) for name, shape in s.fields(self.party)}
                m._prg = self._prg
            else:
                m = _Material(s.draw(self._prg, self.party))
            mats.append(m)
        if any(s.receiver() == self.party for s in specs):
            for m in mats:
                m._client = self
            self._pending.append((specs, mats))
        return mats

    def _drain(self, upto=None) -> None:
        """Receive the outstanding correction messages in request order: all of them, or
        (``upto``: a material) up to the one that carries ``upto``, so that a prefetched
        block's later corrections keep streaming in while the first ones are used."""
        while self._pending:
            specs, mats = self._pending.pop(0)
            last = upto is not None and any(m is upto for m in mats)
            corr = self.channel.recv()
            if isinstance(corr, dict) and "error" in corr:
                raise ProtocolError(f"dealer: {str(corr['error'])[:300]}")
            if not isinstance(corr, list) or len(corr) != len(mats):
                raise ProtocolError("dealer sent a malformed correction message")
            for s, m, c in zip(specs, mats, corr):
                if s.receiver() == self.party:
                    m.update(s.check_correction(c))
                elif not (isinstance(c, dict) and not c):
                    raise ProtocolError("dealer sent a malformed correction message")
                m._client = None
            if last:
                return

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._prg is None:
                return
            try:
                self._drain()
                self.channel.send(["close"])
            except Exception:  # noqa: BLE001, S110 - the dealer may already be gone; closing must not fail
                pass
