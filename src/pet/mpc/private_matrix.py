"""Reusable-mask products: party ``owner``'s fixed private matrix times many shared vectors.

For ``M`` (m x n) known to one party and a stream of shared ``V`` (n x t), a fresh matrix
triple per product would cost ``m*n`` ring elements each time. Instead (the form the
vertical XGBoost histograms need):

Setup (once; the owner sends ``m*n`` ring elements):
  the dealer's seed gives the owner a uniform mask ``A`` (m x n) that only the owner
  and the dealer know; the owner sends ``D = M - A`` to the other party (uniform to it).
  (:func:`setup_together`: the matrices of both owners in one exchange, both directions
  of the link at once.)

Each product ``M @ V`` (1 message, the other party sends ``n*t`` ring elements, plus one
truncation round for fixed-point ``M`` and ``V``):
  the other party ``j`` gets a uniform ``B`` (n x t) and shares ``S_j`` of ``A @ B``
  (the dealer sends ``m*t`` correction elements to ``j``; the owner's ``S_k`` is
  PRG-derived); ``j`` sends ``E = V_j - B``; the owner computes
  ``M @ (V_k + E) + S_k`` and ``j`` computes ``D @ B + S_j``. Their sum is
  ``M V_k + M V_j - M B + M B - A B + A B = M V``.

The owner may compute ``M @ Y`` its own way (``local_product``, e.g. from per-bin sums of a
0/1 indicator, ``O(n t)`` instead of ``O(m n t)``). :class:`PreparedProducts` serves many
products with one dealer request per matrix: one ``B`` with all the columns a batch of
products will use (each product takes fresh, disjoint columns, so every mask column is used
once, exactly as separate products), ``D @ B + S_j`` computed once in a background thread
(it needs no data), and the products of several matrices with the same ``V`` (party 0's
and party 1's) in one exchange round.

What each party learns: the other party learns ``m``, ``n``, the scale and the uniform
``D``; the owner learns the uniform ``E``. The dealer learns the shapes.

Correlated randomness: ``("reuse_setup", owner, m, n, handle)`` once per matrix,
``("reuse_mul", handle, owner, m, n, t)`` per product (or per :class:`PreparedProducts`),
``handle`` = the session's message counter when the matrix was created (unique in the
session, the same at both parties).
"""

from __future__ import annotations

import threading

import numpy as np

from pet._validate import check_party
from pet.errors import InputError, PetTypeError, ProtocolError
from pet.mpc import ring
from pet.mpc.correlated import ReuseMul, ReuseSetup
from pet.mpc.ring_matmul import matmul2_u64, matmul_u64
from pet.mpc.shared import Shared
from pet.mpc.truncation import trunc

__all__ = ["PrivateMatrix", "PreparedProducts", "setup_together"]


class PrivateMatrix:
    """Party ``owner``'s private matrix prepared for repeated ``pm @ shared`` products.

    Create with :meth:`pet.mpc.Session.private_matrix` (both parties call it; the
    non-owner passes ``None``). ``pm @ v`` / :meth:`matmul` accepts a Shared of shape
    ``(n,)`` or ``(n, t)`` and returns a Shared of shape ``(m,)`` or ``(m, t)``.

    ``shape`` (public, both parties pass the same) and ``frac_bits`` skip the header round
    in which the owner announces them. ``local_product`` (owner only): a function
    ``Y -> M @ Y`` modulo 2^64 on uint64 ``(n, t)`` arrays, used instead of a dense product
    with the encoded matrix (the owner then keeps no dense copy after the setup).
    ``defer_setup=True`` (with ``shape=``): no message yet; :func:`setup_together` then sends
    the masks of several matrices of both owners in one exchange (both directions at once).
    """

    def __init__(self, session, matrix, owner: int, *, frac_bits: int | None = None, shape=None,
                 local_product=None, defer_setup: bool = False):
        owner = check_party(owner, "owner")
        if defer_setup and shape is None:
            raise InputError("private_matrix: defer_setup needs the public shape= (and frac_bits=)")
        self.session = session
        self.owner = owner
        mine = session.party == owner
        if local_product is not None and not (mine and callable(local_product)):
            raise InputError("local_product must be a callable, passed by the owner of the matrix only")
        self._local = local_product
        if mine:
            if matrix is None:
                raise InputError(f"party {owner} owns the matrix: pass it, not None")
            arr = np.asarray(matrix)
            if arr.ndim != 2 or arr.dtype.kind not in "biuf":
                raise InputError(f"the private matrix must be a 2-D numeric array, got shape {arr.shape} "
                                 f"dtype {arr.dtype}")
            if frac_bits is None:
                if shape is not None:
                    raise InputError("private_matrix: with shape= pass frac_bits= too (the other party needs it)")
                frac_bits = session.frac_bits if arr.dtype.kind == "f" else 0
            self.frac = ring.check_frac_bits(frac_bits)
            if self.frac == 0 and arr.dtype.kind in "bu" and arr.dtype.itemsize <= 4:
                encoded = arr.astype(np.uint64)  # small unsigned integers: exact, in range (fast path)
            else:
                encoded = ring.encode(arr, self.frac)
            self.shape = arr.shape
        elif matrix is not None:
            raise InputError(f"party {session.party} does not own this matrix: pass None")
        if shape is not None:
            self.shape, self.frac = self._public_header(shape, frac_bits, arr.shape if mine else None)
        else:
            self._exchange_header(mine)
        if defer_setup:
            session._tag("pm-deferred")  # no message: reserves a unique handle (both parties alike)
        self.handle = session._counter
        m, n = self.shape
        (mat,) = session.correlated([ReuseSetup(self.owner, m, n, self.handle)])
        if mine:
            self._m = None if local_product is not None else encoded
        if mine and local_product is not None:  # no dense copy kept: mask in place
            self._outgoing = np.subtract(encoded, mat["A"], out=encoded)
        else:
            self._outgoing = encoded - mat["A"] if mine else None
        if defer_setup:
            return  # the mask travels in setup_together's exchange
        if mine:
            session.send_to_peer(f"pm-mask{self.shape}", self._outgoing)
            self._outgoing = None
        else:
            self._accept(session.recv_from_peer(f"pm-mask{self.shape}"))

    def _accept(self, d) -> None:
        """The non-owner's copy of the masked matrix ``D = M - A`` (checked shape)."""
        m, n = self.shape
        if not isinstance(d, np.ndarray) or d.size != m * n:
            raise ProtocolError(f"malformed private-matrix setup message (expected {m * n} elements)")
        self._d = np.ascontiguousarray(np.asarray(d, dtype=np.uint64).reshape(m, n))

    def _public_header(self, shape, frac_bits, own_shape):
        if frac_bits is None:
            raise InputError("private_matrix: with shape= pass frac_bits= too (the other party needs it)")
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2 and all(int(v) >= 0 for v in shape)):
            raise InputError(f"shape must be a pair (m, n) of sizes, got {shape!r}")
        shape = (int(shape[0]), int(shape[1]))
        if own_shape is not None and tuple(own_shape) != shape:
            raise InputError(f"the private matrix has shape {tuple(own_shape)}, shape= says {shape}")
        return shape, ring.check_frac_bits(frac_bits)

    def _exchange_header(self, mine: bool) -> None:
        session, owner = self.session, self.owner
        if mine:
            if session.exchange("pm-header", [int(self.shape[0]), int(self.shape[1]), self.frac]) is not None:
                raise ProtocolError(f"both parties called private_matrix(..., owner={owner}) as the owner")
            return
        hdr = session.exchange("pm-header", None)
        if hdr is None:
            raise ProtocolError(f"neither party provided the matrix of private_matrix(..., owner={owner})")
        if not (isinstance(hdr, list) and len(hdr) == 3):
            raise ProtocolError("malformed private-matrix header")
        self.shape = (int(hdr[0]), int(hdr[1]))
        self.frac = ring.check_frac_bits(int(hdr[2]))

    def __repr__(self) -> str:
        return f"<PrivateMatrix owner={self.owner} shape={self.shape}>"

    def __matmul__(self, v):
        return self.matmul(v)

    def _owner_product(self, Y: np.ndarray) -> np.ndarray:
        """``M @ Y`` modulo 2^64 at the owner (its hook, else the encoded matrix)."""
        if self._local is None:
            return matmul_u64(self._m, Y)
        out = np.asarray(self._local(Y), dtype=np.uint64)
        if out.shape != (self.shape[0], Y.shape[1]):
            raise InputError(f"local_product returned shape {out.shape}, expected {(self.shape[0], Y.shape[1])}")
        return out

    def _check_operand(self, v) -> int:
        if not isinstance(v, Shared) or v.session is not self.session:
            raise PetTypeError("PrivateMatrix @ expects a Shared value of the same session")
        if v.ndim not in (1, 2) or v.shape[0] != self.shape[1]:
            raise InputError(f"PrivateMatrix of shape {self.shape} cannot multiply shape {v.shape}")
        return 1 if v.ndim == 1 else v.shape[1]

    def _finish(self, Z: np.ndarray, v: Shared) -> Shared:
        shift = min(self.frac, v.frac)
        Z = trunc(self.session, Z, shift)
        out_shape = (self.shape[0],) if v.ndim == 1 else (self.shape[0], Z.shape[1])
        return Shared(self.session, Z.reshape(out_shape), max(self.frac, v.frac))

    def matmul(self, v: Shared) -> Shared:
        """``M @ v`` for shared ``v`` (see the module docstring for the protocol)."""
        t = self._check_operand(v)
        session = self.session
        m, n = self.shape
        V = v.share.reshape(n, t)
        (mat,) = session.correlated([ReuseMul(self.handle, self.owner, m, n, t)])
        op = f"pm-mul{(m, n, t)}"
        if session.party == self.owner:
            e = session.recv_from_peer(op)
            if not isinstance(e, np.ndarray) or e.size != n * t:
                raise ProtocolError("malformed private-matrix product message")
            Z = self._owner_product(V + np.asarray(e, dtype=np.uint64).reshape(n, t)) + mat["s"]
        else:
            session.send_to_peer(op, V - mat["b"])
            Z = matmul_u64(self._d, mat["b"]) + mat["s"]
        return self._finish(Z, v)


def setup_together(pms) -> None:
    """Finish the setup of private matrices created with ``defer_setup=True`` (any owners;
    both parties pass the same list in the same order) in ONE exchange: each party sends the
    masked matrices ``D = M - A`` it owns and receives the other party's, so both directions
    of the link carry them at the same time (one round; the bytes of separate setups, but
    over a link of bandwidth ``b`` per direction the time of the larger party's matrices, not
    of their sum). What each party learns: as with separate setups."""
    pms = list(pms)
    if not pms or any(not isinstance(pm, PrivateMatrix) for pm in pms):
        raise PetTypeError("setup_together needs a non-empty list of PrivateMatrix")
    session = pms[0].session
    if any(pm.session is not session for pm in pms):
        raise InputError("setup_together: the matrices must belong to one session")
    me = session.party
    if any((pm._outgoing is None) if pm.owner == me else hasattr(pm, "_d") for pm in pms):
        raise InputError("setup_together: every matrix must be created with defer_setup=True and not set up yet")
    theirs = [pm for pm in pms if pm.owner != me]
    got = session.exchange("pm-masks" + str([(pm.owner,) + tuple(pm.shape) for pm in pms]),
                           [pm._outgoing for pm in pms if pm.owner == me])
    if not isinstance(got, list) or len(got) != len(theirs):
        raise ProtocolError("malformed private-matrix setup message")
    for pm, d in zip(theirs, got):
        pm._accept(d)
    for pm in pms:
        pm._outgoing = None


class PreparedProducts:
    """Products ``[M_1 @ V; M_2 @ V; ...]`` of several private matrices (any owners, one
    ``n``) with a stream of shared ``V`` that together use at most ``columns`` columns.

    Both parties create it with the same matrices in the same order. One ``reuse_mul``
    request per matrix for all ``columns`` at once; each :meth:`matmul` takes the next
    ``t`` unused columns of every ``B`` (fresh masks, as separate products would). The
    non-owner's ``D @ B + S`` runs once, in a background thread (numba and BLAS release the
    GIL), beside whatever the caller computes before its first product. Per product: one
    round in which each party sends ``V_self - B[:, cols]`` for every matrix it does not own
    (``n * t`` ring elements each; a one-way message when one party owns them all); the
    owners add their local products. Output rows follow the order of the matrices.
    """

    def __init__(self, pms, columns: int):
        pms = list(pms)
        if not pms or any(not isinstance(pm, PrivateMatrix) for pm in pms):
            raise PetTypeError("PreparedProducts needs a non-empty list of PrivateMatrix")
        session = pms[0].session
        if any(pm.session is not session for pm in pms) or len({pm.shape[1] for pm in pms}) != 1:
            raise InputError("PreparedProducts: the matrices must belong to one session and have the same n")
        if len({pm.frac for pm in pms}) != 1:
            raise InputError("PreparedProducts: the matrices must have the same frac_bits")
        if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
            raise InputError(f"columns must be a positive integer, got {columns!r}")
        self.pms, self.session, self.columns, self.used = pms, session, int(columns), 0
        self.frac = pms[0].frac
        me = session.party
        mats = session.correlated([ReuseMul(pm.handle, pm.owner, pm.shape[0], pm.shape[1], self.columns)
                                   for pm in pms])
        self._s_own = [mat["s"] if pm.owner == me else None for pm, mat in zip(pms, mats)]
        self._b = [np.ascontiguousarray(mat["b"]) if pm.owner != me else None for pm, mat in zip(pms, mats)]
        self._dense = [None] * len(pms)
        self._error = None
        jobs = [(i, pm._d, self._b[i], mats[i]["s"]) for i, pm in enumerate(pms) if pm.owner != me]

        def work():
            try:
                for i, d, b, s in jobs:
                    self._dense[i] = matmul2_u64(d, b, None, None, s)  # D @ B + S_other
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread by _wait
                self._error = exc

        self._worker = None
        if jobs:
            self._worker = threading.Thread(target=work, name="pet.mpc.prepared-products", daemon=True)
            self._worker.start()

    def _wait(self):
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        if self._error is not None:
            raise self._error

    def matmul(self, v: Shared) -> Shared:
        """``[M_1 @ v; M_2 @ v; ...]`` (rows stacked in the order of the matrices) for shared
        ``v`` of shape ``(n, t)`` (or ``(n,)``)."""
        pms, session = self.pms, self.session
        t = pms[0]._check_operand(v)
        n = pms[0].shape[1]
        lo, hi = self.used, self.used + t
        if hi > self.columns:
            raise InputError(f"PreparedProducts: {hi} columns needed, {self.columns} prepared")
        self.used = hi
        me = session.party
        V = v.share.reshape(n, t)
        send = [V - b[:, lo:hi] for b in self._b if b is not None]
        n_recv = sum(pm.owner == me for pm in pms)
        op = f"pm-mul{tuple(pm.shape[0] for pm in pms) + (n, t)}"
        payload = None if not send else send[0] if len(send) == 1 else np.stack(send)
        if send and n_recv:
            got = session.exchange(op, payload)
        elif send:
            session.send_to_peer(op, payload)
            got = None
        else:
            got = session.recv_from_peer(op)
        if n_recv == 1 and isinstance(got, np.ndarray) and got.shape == (n, t):
            got = got[None]  # one block travels as a plain (n, t) array
        if n_recv and (not isinstance(got, np.ndarray) or got.shape != (n_recv, n, t)):
            raise ProtocolError("malformed private-matrix product message")
        self._wait()
        parts, k = [], 0
        for i, pm in enumerate(pms):
            if pm.owner == me:
                E = np.asarray(got[k], dtype=np.uint64)
                k += 1
                parts.append(pm._owner_product(V + E) + self._s_own[i][:, lo:hi])
            else:
                parts.append(self._dense[i][:, lo:hi])
        Z = trunc(session, np.concatenate(parts, axis=0), min(self.frac, v.frac))
        return Shared(session, Z if v.ndim == 2 else Z.reshape(-1), max(self.frac, v.frac))
