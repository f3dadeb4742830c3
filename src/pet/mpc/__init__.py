"""Two-party additive secret sharing over Z_2^64 with fixed-point arithmetic.

Semi-honest security for two computing parties; correlated randomness (Beaver triples,
truncation pairs, AND triples, random bits) from a dealer trusted not to collude with
either party (:mod:`pet.mpc.dealer`, behind the :class:`~pet.mpc.correlated.CorrelatedSource`
interface so a dealer-free source can replace it).

Module map (module-level imports point only to modules above; one cycle is deliberate:
``Shared``'s operator methods import ``arithmetic`` / ``compare`` / ``nonlinear`` inside the
method, at call time, and those construct ``Shared`` -- so ``shared`` alone loads nothing
below it)::

    ring        encoding of reals/ints in Z_2^64, safe range   (pure functions)
    prg         AES-128-CTR pseudo-random generator            (pure)
    _kernels    numba kernels (Z_2^64 matmul, fused elementwise steps)
    ring_matmul exact Z_2^64 matrix products (AVX-512 IFMA kernel, float64-BLAS limbs or numba loop)
    correlated  recipes of correlated randomness, party-side source interface
    dealer      the dealer service (thread or ``pet dealer`` process)
    session     Session: peer channel, op-mismatch detection, share / reveal,
                reveal_split (each slice to its owner) / share_split (each party's own slices)
    shared      Shared: the numpy-like secret array; message-free constructors for
                applications (from_shares, known_to, scaled) and diag
    ring128     Shared128: values in Z_2^128 (two-limb kernels in _kernels128), lift
                from / conversion to the 64-bit ring, wide Beaver products and truncation
    truncation  exact 1-round truncation
    arithmetic  add / mul (Beaver) / matmul (matrix triples)
    private_matrix  reusable-mask product: a party's fixed private matrix x shared vectors
                (PrivateMatrix; PreparedProducts: column slices of one mask, both parties' matrices per round)
    boolean     AND on bit-packed words, A2B (Kogge-Stone adder), B2A, MSB
    compare     < <= > >= ==, where, maximum, minimum, relu
    tournament  argmax / argmin / max / min: arity 2-4, segments, value / index / one-hot
    nonlinear   reciprocal, divide, sqrt, exp, sigmoid
    local       run_local: both parties and the dealer as threads

Example::

    import numpy as np, pet.mpc as mpc

    def prog(s, x, y):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        return s.reveal(mpc.where(a < b, a * b, a + b))

    r0, r1 = mpc.run_local(prog, np.array([1.5, -2.0]), np.array([2.0, -3.0]))
"""

from pet.mpc.arithmetic import constant, matmul, mul, rescale
from pet.mpc.local import run_local
from pet.mpc.session import Session
from pet.mpc.shared import Shared, concatenate, diag, stack

__all__ = [
    "Session",
    "Shared",
    "run_local",
    "concatenate",
    "stack",
    "diag",
    "constant",
    "mul",
    "matmul",
    "rescale",
]

from pet.mpc.compare import (  # noqa: E402
    argmax,
    argmin,
    equal,
    greater,
    greater_equal,
    less,
    less_equal,
    max,
    maximum,
    min,
    minimum,
    relu,
    sign_bit,
    where,
)
from pet.mpc.nonlinear import divide, exp, reciprocal, sigmoid, sqrt  # noqa: E402
from pet.mpc.private_matrix import PreparedProducts, PrivateMatrix  # noqa: E402
from pet.mpc.ring128 import Shared128  # noqa: E402
from pet.mpc.tournament import Tournament, tournament  # noqa: E402

__all__ += ["where", "maximum", "minimum", "argmax", "argmin", "max", "min", "relu", "sign_bit", "less", "less_equal",
            "greater", "greater_equal", "equal", "tournament", "Tournament", "reciprocal", "divide", "sqrt", "exp",
            "sigmoid", "PrivateMatrix", "PreparedProducts", "Shared128"]
