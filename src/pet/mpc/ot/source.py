"""``OTSource``: dealer-free correlated randomness for a :class:`~pet.mpc.Session`.

:class:`OTSource` implements :class:`~pet.mpc.correlated.CorrelatedSource` with the OT
engine (:class:`~pet.mpc.ot.engine.OTEngine`) over the PEER channel, so no third party is
involved. Both parties call :meth:`OTSource.get` with the same specs in the same order,
exactly as with the dealer; every call (or :meth:`OTSource.prefetch`) is served by one
:meth:`~pet.mpc.ot.engine.OTEngine.extend` for all its specs.

Messages. The source's traffic shares the peer channel with the session's own messages
(``[tag, payload]``, see :mod:`pet.mpc.session`), in a distinct, checked form:
``["pet.ot", seq, payload]`` with a per-source sequence number. A party that receives a
session message while it expects an OT message (or the reverse) raises
:class:`~pet.errors.ProtocolError`, never mixes the two up. The engine (base OTs) is
created on the first request, so a session that only shares, adds and reveals costs
nothing extra.

Kinds (fields named and shaped as the dealer's, :mod:`pet.mpc.correlated`):

* ``triple``, ``and``, ``b2a``, ``cmpmask``: :mod:`pet.mpc.ot.correlations`;
* ``cmpleaf`` (OT source only): random 1-out-of-16 OTs for the comparison leaves
  (:mod:`pet.mpc.ot.millionaire`), what :func:`pet.mpc.boolean.msb` uses dealer-free;
* ``trunc`` (shape, s): served in the *wrap-bit* form, not the dealer's fields: ``r = 0``,
  a random bit ``wbit`` per element at each party and shares ``wprod`` of
  ``2^(64-s) wbit_0 wbit_1`` (one correlated OT of ``s`` bits per element);
  :func:`pet.mpc.truncation.trunc_masked` recognises it and runs the wrap-bit protocol
  (one round, one bit per element each way);
* ``triple128`` (shape): a Beaver triple mod 2^128, the two cross products by
  :class:`~pet.mpc.ot.gilboa128.Gilboa128` (128 OTs with 128-bit messages per product);
* ``wrapbit`` (shape): a random bit per element and shares of the two parties' bits'
  product (one correlated OT of 64 bits per element), for :mod:`pet.mpc.ring128`;
* ``b2amul`` (shape, bits, per_bit): ``b2a`` plus the bits times a random shared
  multiplier, by one correlated OT per bit and direction (:meth:`OTSource._b2amul`);
* ``matmul`` (m, k, n): random ``A_p`` (m, k), ``B_p`` (k, n) at each party;
  ``C_p = A_p B_p`` + this party's shares of the two cross products ``A_0 B_1`` and
  ``A_1 B_0``. With homomorphic encryption (both parties have the ``pet[he]`` extra,
  agreed by one message on the first matrix request): each cross product is a
  :class:`~pet.mpc.he.HEProduct` (the holder of ``B`` encrypts it, the holder of ``A``
  multiplies and returns masked results; party 1 encrypts for ``A_0 B_1``, party 0 for
  ``A_1 B_0``; two messages per request for all products). Without it: each a
  :class:`~pet.mpc.ot.requests.MatrixProduct` (one correlated OT per bit of one operand
  with a vector message: ``64 k n`` OTs of ``m`` words, or the transposed form ``64 m k``
  OTs of ``n`` words if smaller). ``O(m k n)`` bytes: correct, slow for large shapes;
* ``reuse_setup`` (owner, m, n, handle): the owner draws its private mask ``A`` (m, n)
  from the OS CSPRNG and keeps it under ``handle``; no message at all;
* ``reuse_mul`` (handle, owner, m, n, t): the other party draws ``b`` (n, t); shares
  ``s`` of ``A @ b`` by one :class:`~pet.mpc.he.HEProduct` (the other party encrypts
  ``b``, the owner multiplies by ``A``) or, without HE, one
  :class:`~pet.mpc.ot.requests.MatrixProduct` (owner = sender with ``A``, the other =
  receiver with the bits of ``b``).

What a party learns: only its own uniformly random fields and OT messages masked by pads
it cannot compute (see :mod:`pet.mpc.ot.engine`); it learns nothing about the other
party's fields beyond the correlation. Semi-honest security only.
"""

from __future__ import annotations

import warnings

import numpy as np

from pet.errors import InputError, ProtocolError
from pet.mpc import he
from pet.mpc.correlated import CorrelatedSource, check_session_id, typed_specs
from pet.mpc.ot import correlations, millionaire
from pet.mpc.ot.aes import TCCRHash
from pet.mpc.ot.engine import DEFAULT_CHUNK, OTEngine
from pet.mpc.ot.requests import BitProduct, ChosenBitProduct, MatrixProduct, random_words
from pet.mpc.ring_matmul import matmul_u64

__all__ = ["OTSource", "OT_MESSAGE"]

#: First element of every message of the source on the peer channel.
OT_MESSAGE = "pet.ot"


class _OTChannel:
    """The peer channel as the engine sees it: ``exchange(msg)`` sends
    ``["pet.ot", seq, msg]`` and checks the peer's message has the same form and ``seq``."""

    def __init__(self, channel):
        self.channel = channel
        self.seq = 0

    def exchange(self, msg):
        self.seq += 1
        got = self.channel.exchange([OT_MESSAGE, self.seq, msg])
        if not (isinstance(got, list) and len(got) == 3 and got[0] == OT_MESSAGE):
            raise ProtocolError("the peer sent a session message while this party expected an OT-extension "
                                "message (both parties must request the same correlated randomness at the "
                                "same point of the program)")
        if got[1] != self.seq:
            raise ProtocolError(f"OT-extension message out of order: expected number {self.seq}, "
                                f"the peer sent {str(got[1])[:20]}")
        return got[2]


class OTSource(CorrelatedSource):
    """Dealer-free :class:`~pet.mpc.correlated.CorrelatedSource` (see the module doc).

    Parameters: ``channel`` -- the channel to the other party (the session's own);
    ``party`` -- 0 or 1; ``chunk`` -- OTs per direction per extension message;
    ``he_products`` -- offer the HE path for matrix kinds (used iff both parties offer it
    and have the ``pet[he]`` extra; :attr:`matrix_backend` says which path was agreed).
    Statistics: :attr:`messages` (OT messages sent), :attr:`engine` (``ots_sent``...).
    """

    kind = "ot"

    def __init__(self, channel, party: int, *, chunk: int = DEFAULT_CHUNK, he_products: bool = True):
        if party not in (0, 1) or isinstance(party, bool):
            raise InputError(f"party must be 0 or 1, got {party!r}")
        if channel is None or not hasattr(channel, "exchange"):
            raise InputError("OTSource needs the channel to the other party (a pet.transport.Channel)")
        self.party = int(party)
        self._chan = _OTChannel(channel)
        self._chunk = chunk
        self.engine: OTEngine | None = None
        self.session_id: bytes | None = None
        self._reuse: dict = {}  # handle -> (owner, m, n, this party's A or None)
        self._expanders = None
        self._tweaks = [0, 0]
        self._ready: list = []
        #: how matrix kinds are served: None (not yet agreed), "he" or "ot"
        self.matrix_backend: str | None = None
        self._he: he.HEBackend | None = None
        self._offer_he = bool(he_products) and he.HE_AVAILABLE

    @property
    def messages(self) -> int:
        """OT messages this party has sent (each one ``exchange`` with the peer)."""
        return self._chan.seq

    def bind_session(self, session_id: bytes) -> None:
        self.session_id = check_session_id(session_id)

    def _engine(self) -> OTEngine:
        if self.engine is None:
            self.engine = OTEngine(self._chan, self.party, chunk=self._chunk)
            sid = self.engine.session_id
            # vector-message expansion: own keys (directions 2, 3), disjoint from the engine's hashes
            self._expanders = [TCCRHash(sid, 2 + d) for d in (0, 1)]
        return self.engine

    # -- the CorrelatedSource interface ------------------------------------------------

    def get(self, specs: list) -> list:
        specs = typed_specs(specs)
        if self._ready and self._ready[0][0] == specs:
            return self._ready.pop(0)[1]
        return self._generate([specs])[0]

    def prefetch(self, specs: list) -> None:
        """Generate the material of ``specs`` now (offline phase); the next :meth:`get`
        with exactly these specs returns it without any message. Both parties must
        prefetch the same specs in the same order. Several requests at once:
        :meth:`prefetch_many` (one extension for all)."""
        self.prefetch_many([specs])

    def prefetch_many(self, requests: list) -> None:
        """:meth:`prefetch` for a list of requests (each a list of specs, in the order the
        operations will ask for them), all served by ONE extension."""
        requests = [typed_specs(r) for r in requests]
        for specs, mats in zip(requests, self._generate(requests)):
            self._ready.append((specs, mats))

    def wait(self) -> None:
        """Nothing to wait for: prefetched material is complete when prefetch returns."""

    def close(self) -> None:
        self._ready.clear()
        self._reuse.clear()

    # -- generation ----------------------------------------------------------------------

    def _agree_matrix_backend(self) -> None:
        """Once, at the first matrix request (both parties reach it at the same point):
        one message ``{"he": bool}`` each way; HE iff both have the ``pet[he]`` extra."""
        got = self._chan.exchange({"he": self._offer_he})
        if not (isinstance(got, dict) and isinstance(got.get("he"), bool)):
            raise ProtocolError("the peer sent a malformed matrix-backend message")
        if self._offer_he and got["he"]:
            self.matrix_backend = "he"
            self._he = he.HEBackend(self._chan.exchange, self.party)
            return
        self.matrix_backend = "ot"
        warnings.warn("dealer-free matrix products use the OT path (O(m k n) OTs, slow for large shapes): "
                      + ("install the optional extra pet[he] (seal-python) at both parties for the HE path"
                         if not he.HE_AVAILABLE else "HE products not offered by both parties (pet[he] extra, "
                         "he_products=True)"),
                      RuntimeWarning, stacklevel=4)

    def _generate(self, requests: list) -> list:
        flat = [s for specs in requests for s in specs]
        if self.matrix_backend is None and any(s.kind in ("matmul", "reuse_mul") for s in flat):
            self._check_handles(flat)  # refuse a bad request before any message
            self._agree_matrix_backend()
        plans = [self._plan(s) for s in flat]
        reqs = [r for p in plans for r in p[0]]
        ot_reqs = [r for r in reqs if not isinstance(r, he.HEProduct)]
        he_reqs = [r for r in reqs if isinstance(r, he.HEProduct)]
        ot_res = iter(self._engine().extend(ot_reqs) if ot_reqs else [])
        he_res = iter(self._he.run(he_reqs) if he_reqs else [])
        res = [next(he_res) if isinstance(r, he.HEProduct) else next(ot_res) for r in reqs]
        fields, pos = [], 0
        for p_reqs, finish in plans:
            fields.append(finish(res[pos:pos + len(p_reqs)]))
            pos += len(p_reqs)
        out, pos = [], 0
        for specs in requests:
            out.append(fields[pos:pos + len(specs)])
            pos += len(specs)
        return out

    def _plan(self, spec):
        kind = spec.kind
        if kind == "trunc":
            return self._trunc_wrap(spec.shape, spec.shift)
        if kind in ("triple", "and", "b2a", "cmpmask"):
            return correlations.plan(spec.to_wire(), self.party)
        if kind == "cmpleaf":
            return millionaire.plan(spec, self.party)
        if kind == "matmul":
            return self._matmul(spec.m, spec.k, spec.n)
        if kind == "reuse_setup":
            return self._reuse_setup(spec)
        if kind == "reuse_mul":
            return self._reuse_mul(spec)
        if kind == "triple128":
            return self._triple128(spec.shape)
        if kind == "wrapbit":
            return self._wrapbit(spec.shape)
        if kind == "b2amul":
            return self._b2amul(spec)
        raise InputError(f"the OT source does not produce {kind!r} correlations")

    def _trunc_wrap(self, shape, shift):
        """A ``trunc`` spec in the wrap-bit form (:func:`pet.mpc.truncation._trunc_wrap`):
        ``r = 0``, a random bit ``wbit`` per element, and shares ``wprod`` of
        ``2^(64-s) a b`` (``a``, ``b`` the two parties' bits): one correlated OT of ``s``
        bits per element (:class:`~pet.mpc.ot.requests.BitProduct`), the elements split
        between the two directions."""
        n = int(np.prod(shape, dtype=np.int64))
        bit = random_words(n) & np.uint64(1)
        coeff = (1 << (64 - shift)) % (1 << 64)
        half = n // 2
        reqs = [BitProduct(half, 0, [0], [[coeff]], bit[:half]), BitProduct(n - half, 1, [0], [[coeff]], bit[half:])]

        def finish(res):
            prod = np.concatenate([res[0]["out"][0], res[1]["out"][0]])
            return {"r": np.zeros(shape, dtype=np.uint64), "wbit": bit.reshape(shape), "wprod": prod.reshape(shape)}

        return reqs, finish

    def _triple128(self, shape):
        """A Beaver triple mod 2^128 (:mod:`pet.mpc.ring128`): random ``a_p, b_p`` (128-bit)
        at each party; ``c_p = a_p b_p`` + this party's shares of ``a_0 b_1`` and
        ``a_1 b_0``, each a :class:`~pet.mpc.ot.gilboa128.Gilboa128` (one direction each)."""
        from pet.mpc import _kernels128
        from pet.mpc.ot.gilboa128 import Gilboa128

        n = int(np.prod(shape, dtype=np.int64))
        a, b = random_words(2 * n).reshape(n, 2), random_words(2 * n).reshape(n, 2)
        p = self.party
        reqs = [Gilboa128(n, 0, a if p == 0 else b), Gilboa128(n, 1, b if p == 0 else a)]

        def finish(res):
            c = np.empty_like(a)
            _kernels128.mul(a, b, c)
            for r in res:
                _kernels128.add(c, r["share"], c)
            s2 = tuple(shape) + (2,)
            return {"a": a.reshape(s2), "b": b.reshape(s2), "c": c.reshape(s2)}

        return reqs, finish

    def _wrapbit(self, shape):
        """A ``wrapbit`` spec (:mod:`pet.mpc.ring128`): a random bit per element and shares
        of the product of both parties' bits (mod 2^64): one correlated OT of a 64-bit
        message per element, split between the two directions."""
        n = int(np.prod(shape, dtype=np.int64))
        bit = random_words(n) & np.uint64(1)
        half = n // 2
        reqs = [BitProduct(half, 0, [0], [[1]], bit[:half]), BitProduct(n - half, 1, [0], [[1]], bit[half:])]

        def finish(res):
            prod = np.concatenate([res[0]["out"][0], res[1]["out"][0]])
            return {"wbit": bit.reshape(shape), "wprod": prod.reshape(shape)}

        return reqs, finish

    def _b2amul(self, spec):
        """A ``b2amul`` spec (:mod:`pet.mpc.bit_products`): ``rho`` and ``ra`` by the ``b2a``
        recipe (one correlated OT per bit, :mod:`pet.mpc.ot.correlations`), a random share
        ``b`` of the multiplier, and ``rb`` from one correlated OT per bit and direction
        (:class:`~pet.mpc.ot.requests.ChosenBitProduct`): with ``x_p`` this party's bit of
        ``rho`` and ``b_p`` its share of the bit's multiplier, ``(x_0 xor x_1)(b_0 + b_1) =
        sum_p [x_p b_p + x_q (1 - 2 x_p) b_p]`` (``q`` the other party: its bit is the
        choice, ``(1 - 2 x_p) b_p`` the sender's correlation). 2 OTs and 48 bytes per bit
        (two Gilboa products, 64 OTs each, spent 2568)."""
        from pet.mpc.ot import _kernels as ot_kernels

        shape, bits, per_bit = tuple(spec.shape), [int(b) for b in spec.bits], bool(spec.per_bit)
        n, nb = int(np.prod(shape, dtype=np.int64)), len(bits)
        p = self.party
        pos = np.array(bits, dtype=np.int64)
        rho = random_words(n)
        half = n // 2
        cross = [[(-2 if i == j else 0) % (1 << 64) for j in range(nb)] for i in range(nb)]
        x = (rho[:, None] >> pos.astype(np.uint64)[None, :]) & np.uint64(1)  # (n, nb) own bits
        b = random_words(nb if per_bit else n)
        own = np.broadcast_to(b[None, :] if per_bit else b[:, None], (n, nb))
        sent = ((np.uint64(1) - (x << np.uint64(1))) * own).reshape(-1)
        reqs = [BitProduct(half, 0, pos, cross, rho[:half]), BitProduct(n - half, 1, pos, cross, rho[half:]),
                ChosenBitProduct(n * nb, 0, sent if p == 0 else x.reshape(-1)),
                ChosenBitProduct(n * nb, 1, sent if p == 1 else x.reshape(-1))]

        def finish(res):
            ra = np.empty((nb, n), dtype=np.uint64)
            ot_kernels.bitprod_local(rho, pos, np.eye(nb, dtype=np.uint64), ra)
            ra[:, :half] += res[0]["out"]
            ra[:, half:] += res[1]["out"]
            rb = x * own + res[2]["share"].reshape(n, nb) + res[3]["share"].reshape(n, nb)
            return {"rho": rho.reshape(shape), "b": b.reshape((nb,) if per_bit else shape),
                    "ra": np.ascontiguousarray(ra.T).reshape(shape + (nb,)), "rb": rb.reshape(shape + (nb,))}

        return reqs, finish

    def _product(self, m, k, n, sender, value):
        """A :class:`MatrixProduct` request for ``X (m,k) @ Y (k,n)`` with ``sender``
        holding ``X``; ``value`` is this party's operand (``X`` or ``Y``)."""
        self._engine()
        tweak = self._tweaks[sender]
        self._tweaks[sender] += 64 * k * n * max(1, -(-m // 2))
        return MatrixProduct(m, k, n, sender, self._expanders[sender], tweak, value)

    def _cross(self, m, k, n, sender, x_or_y):
        """Shares of ``X @ Y`` (sender has ``X`` (m, k), the other ``Y`` (k, n)); the
        transposed form ``(Y^T X^T)^T`` when it needs fewer OTs (bits of ``X``)."""
        if m * k < k * n:  # choose the bits of X: Y^T (n, k) @ X^T (k, m) with Y's holder as sender
            val = np.ascontiguousarray(x_or_y.T)
            req = self._product(n, k, m, 1 - sender, val)
            return req, lambda r: np.ascontiguousarray(r["share"].T)
        req = self._product(m, k, n, sender, x_or_y)
        return req, lambda r: r["share"]

    def _matmul(self, m, k, n):
        a = random_words(m * k).reshape(m, k)
        b = random_words(k * n).reshape(k, n)
        p = self.party
        if self.matrix_backend == "he":
            # A_0 @ B_1: party 1 encrypts B_1; A_1 @ B_0: party 0 encrypts B_0
            reqs = [he.HEProduct(m, k, n, 1, b if p == 1 else a), he.HEProduct(m, k, n, 0, b if p == 0 else a)]

            def finish_he(res):
                c = matmul_u64(a, b) if a.size and b.size else np.zeros((m, n), dtype=np.uint64)
                return {"a": a, "b": b, "c": c + res[0] + res[1]}

            return reqs, finish_he
        # cross 0: A_0 @ B_1 (party 0 holds X = A_0); cross 1: A_1 @ B_0 (party 1 holds X = A_1)
        r0, f0 = self._cross(m, k, n, 0, a if p == 0 else b)
        r1, f1 = self._cross(m, k, n, 1, a if p == 1 else b)

        def finish(res):
            c = matmul_u64(a, b) if a.size and b.size else np.zeros((m, n), dtype=np.uint64)
            c = c + f0(res[0]) + f1(res[1])
            return {"a": a, "b": b, "c": c}

        return [r0, r1], finish

    def _reuse_setup(self, spec):
        if spec.handle in self._reuse:
            raise InputError(f"private matrix handle {spec.handle} is already set up in this session")
        A = random_words(spec.m * spec.n).reshape(spec.m, spec.n) if self.party == spec.owner else None
        self._reuse[spec.handle] = (spec.owner, spec.m, spec.n, A)
        fields = {"A": A} if A is not None else {}
        return [], lambda res: fields

    def _check_handles(self, flat) -> None:
        known = set(self._reuse)
        for spec in flat:
            if spec.kind == "reuse_setup":
                known.add(spec.handle)
            elif spec.kind == "reuse_mul" and spec.handle not in known:
                raise InputError(f"reuse_mul refers to unknown private matrix {spec.handle}")

    def _reuse_mul(self, spec):
        entry = self._reuse.get(spec.handle)
        if entry is None:
            raise InputError(f"reuse_mul refers to unknown private matrix {spec.handle}")
        owner, m, n, A = entry
        if owner != spec.owner or (m, n) != (spec.m, spec.n):
            raise InputError(f"reuse_mul does not match the setup of private matrix {spec.handle}")
        t = spec.t
        if self.matrix_backend == "he":  # A (m, n) @ b (n, t): the other party encrypts b
            if self.party == owner:
                return [he.HEProduct(m, n, t, 1 - owner, A)], lambda res: {"s": res[0]}
            b = random_words(n * t).reshape(n, t)
            return [he.HEProduct(m, n, t, 1 - owner, b)], lambda res: {"b": b, "s": res[0]}
        if self.party == owner:
            req, fin = self._cross(m, n, t, owner, A)
            return [req], lambda res: {"s": fin(res[0])}
        b = random_words(n * t).reshape(n, t)
        req, fin = self._cross(m, n, t, owner, b)
        return [req], lambda res: {"b": b, "s": fin(res[0])}
