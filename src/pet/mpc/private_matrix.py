"""Reusable-mask products: party ``owner``'s fixed private matrix times many shared vectors.

For ``M`` (m x n) known to one party and a stream of shared ``V`` (n x t), a fresh matrix
triple per product would cost ``m*n`` ring elements each time. Instead (the form the
vertical XGBoost histograms need):

Setup (once; the owner sends ``m*n`` ring elements):
  the dealer's seed gives the owner a uniform mask ``A`` (m x n) that only the owner
  and the dealer know; the owner sends ``D = M - A`` to the other party (uniform to it).

Each product ``M @ V`` (1 message, the other party sends ``n*t`` ring elements, plus one
truncation round for fixed-point ``M`` and ``V``):
  the other party ``j`` gets a uniform ``B`` (n x t) and shares ``S_j`` of ``A @ B``
  (the dealer sends ``m*t`` correction elements to ``j``; the owner's ``S_k`` is
  PRG-derived); ``j`` sends ``E = V_j - B``; the owner computes
  ``M @ (V_k + E) + S_k`` and ``j`` computes ``D @ B + S_j``. Their sum is
  ``M V_k + M V_j - M B + M B - A B + A B = M V``.

What each party learns: the other party learns ``m``, ``n``, the scale and the uniform
``D``; the owner learns the uniform ``E``. The dealer learns the shapes.
"""

from __future__ import annotations

import numpy as np

from pet.errors import InputError, PetTypeError, ProtocolError
from pet.mpc import ring
from pet.mpc.correlated import ReuseMul, ReuseSetup
from pet.mpc.ring_matmul import matmul_u64
from pet.mpc.shared import Shared
from pet.mpc.truncation import trunc

__all__ = ["PrivateMatrix"]


class PrivateMatrix:
    """Party ``owner``'s private matrix prepared for repeated ``pm @ shared`` products.

    Create with :meth:`pet.mpc.Session.private_matrix` (both parties call it; the
    non-owner passes ``None``). ``pm @ v`` / :meth:`matmul` accepts a Shared of shape
    ``(n,)`` or ``(n, t)`` and returns a Shared of shape ``(m,)`` or ``(m, t)``.
    """

    def __init__(self, session, matrix, owner: int, *, frac_bits: int | None = None):
        if owner not in (0, 1) or isinstance(owner, bool):
            raise InputError(f"owner must be 0 or 1, got {owner!r}")
        self.session = session
        self.owner = int(owner)
        if session.party == owner:
            if matrix is None:
                raise InputError(f"party {owner} owns the matrix: pass it, not None")
            arr = np.asarray(matrix)
            if arr.ndim != 2 or arr.dtype.kind not in "biuf":
                raise InputError(f"the private matrix must be a 2-D numeric array, got shape {arr.shape} "
                                 f"dtype {arr.dtype}")
            if frac_bits is None:
                frac_bits = session.frac_bits if arr.dtype.kind == "f" else 0
            self.frac = ring.check_frac_bits(frac_bits)
            self._m = ring.encode(arr, self.frac)
            self.shape = arr.shape
            if session.exchange("pm-header", [int(arr.shape[0]), int(arr.shape[1]), self.frac]) is not None:
                raise ProtocolError(f"both parties called private_matrix(..., owner={owner}) as the owner")
        else:
            if matrix is not None:
                raise InputError(f"party {session.party} does not own this matrix: pass None")
            hdr = session.exchange("pm-header", None)
            if hdr is None:
                raise ProtocolError(f"neither party provided the matrix of private_matrix(..., owner={owner})")
            if not (isinstance(hdr, list) and len(hdr) == 3):
                raise ProtocolError("malformed private-matrix header")
            self.shape = (int(hdr[0]), int(hdr[1]))
            self.frac = ring.check_frac_bits(int(hdr[2]))
        self.handle = session._counter
        m, n = self.shape
        (mat,) = session.correlated([ReuseSetup(self.owner, m, n, self.handle)])
        if session.party == owner:
            session.send_to_peer(f"pm-mask{self.shape}", self._m - mat["A"])
        else:
            d = session.recv_from_peer(f"pm-mask{self.shape}")
            self._d = np.ascontiguousarray(np.asarray(d, dtype=np.uint64).reshape(m, n))

    def __repr__(self) -> str:
        return f"<PrivateMatrix owner={self.owner} shape={self.shape}>"

    def __matmul__(self, v):
        return self.matmul(v)

    def matmul(self, v: Shared) -> Shared:
        """``M @ v`` for shared ``v`` (see the module docstring for the protocol)."""
        if not isinstance(v, Shared) or v.session is not self.session:
            raise PetTypeError("PrivateMatrix @ expects a Shared value of the same session")
        session = self.session
        m, n = self.shape
        if v.shape[0] != n or v.ndim not in (1, 2):
            raise InputError(f"PrivateMatrix of shape {self.shape} cannot multiply shape {v.shape}")
        t = 1 if v.ndim == 1 else v.shape[1]
        V = v.share.reshape(n, t)
        (mat,) = session.correlated([ReuseMul(self.handle, self.owner, m, n, t)])
        op = f"pm-mul{(m, n, t)}"
        if session.party == self.owner:
            e = session.recv_from_peer(op)
            Z = matmul_u64(self._m, V + np.asarray(e, dtype=np.uint64).reshape(n, t)) + mat["s"]
        else:
            session.send_to_peer(op, V - mat["b"])
            Z = matmul_u64(self._d, mat["b"]) + mat["s"]
        shift = min(self.frac, v.frac)
        Z = trunc(session, Z, shift)
        out_shape = (m,) if v.ndim == 1 else (m, t)
        return Shared(session, Z.reshape(out_shape), max(self.frac, v.frac))
