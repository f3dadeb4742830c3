"""Exact matrix products in Z_2^64 (uint64 with wrap-around), for parties and the dealer.

numpy's uint64 ``@`` is far slower than float64's. :func:`matmul_u64` and
:func:`matmul2_u64` pick, by shape and CPU:

- ``"ifma"``: an AVX-512 IFMA kernel (three 52-bit multiply-add instructions per eight
  ring multiply-adds, see ``_kernels.matmul2_u64_ifma``) -- on CPUs that have it, for all
  but tiny or very thin products; about 2.5x faster than the limb path at 512x512 on one
  core, and it leaves BLAS's thread pool alone;
- ``"limb"``: an exact float64-BLAS limb decomposition (six dgemms per slab of at most
  512 inner terms) for large products elsewhere;
- ``"loop"``: a plain numba integer loop for small products.

All three give bit-identical results (exact modulo 2^64).
"""

from __future__ import annotations

import functools

import numpy as np

from pet.errors import InputError
from pet.mpc import _kernels

__all__ = ["ifma_available", "matmul2_u64", "matmul_u64"]


#: Products with at least this many multiply-adds go through float64 BLAS in limbs
#: (when the IFMA kernel is not used).
_LIMB_MIN_WORK = 1 << 22
#: The IFMA kernel is used for products with at least this many multiply-adds, and at
#: least ``_IFMA_MIN_M`` rows and ``_IFMA_MIN_N`` columns (it computes whole 4x16 tiles and
#: packs all of ``b``, which does not pay off for thin products).
_IFMA_MIN_WORK = 1 << 15
_IFMA_MIN_M = 16
_IFMA_MIN_N = 8

_METHODS = ("auto", "ifma", "limb", "loop")
_NO_C = np.zeros((0, 0), dtype=np.uint64)


@functools.cache
def ifma_available() -> bool:
    """Whether numba compiles for a CPU with AVX-512 IFMA (``vpmadd52luq``) and 512-bit
    vectors: the host's features, or ``NUMBA_CPU_FEATURES`` if set (``NUMBA_ENABLE_AVX=0``
    turns it off, as it does every AVX feature; so does ``NUMBA_DISABLE_JIT=1``)."""
    try:
        from numba.core import codegen, config

        feats = config.CPU_FEATURES if config.CPU_FEATURES is not None else codegen.get_host_cpu_features()
    except (ImportError, AttributeError):  # pragma: no cover - numba internals moved: stay on the portable paths
        return False
    if config.DISABLE_JIT:  # the kernel is made of LLVM intrinsics: it cannot run as Python
        return False
    flags = set(str(feats).split(","))
    return {"+avx512f", "+avx512ifma"} <= flags and "-evex512" not in flags


def _method(method: str, m: int, k: int, n: int) -> str:
    if method not in _METHODS:
        raise InputError(f"method must be one of {_METHODS}, got {method!r}")
    if method == "ifma" and not ifma_available():
        raise InputError("method='ifma' needs a CPU with AVX-512 IFMA")
    if method != "auto":
        return method
    work = m * k * n
    if ifma_available() and work >= _IFMA_MIN_WORK and m >= _IFMA_MIN_M and n >= _IFMA_MIN_N:
        return "ifma"
    if work >= _LIMB_MIN_WORK and min(m, n) >= 16:
        return "limb"
    return "loop"


def _u64_2d(x, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.uint64)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D array, got shape {arr.shape}")
    return arr


def _limb_into(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out += a @ b`` modulo 2^64 through float64 BLAS: 22/21/21-bit limbs, six dgemms
    per slab of at most 512 inner terms, each exact below 2^53 (``_kernels.split_limbs``)."""
    m, k = a.shape
    n = b.shape[1]
    for k0 in range(0, k, _kernels.LIMB_K):
        k1 = min(k, k0 + _kernels.LIMB_K)
        la = [np.empty((m, k1 - k0)) for _ in range(3)]
        lb = [np.empty((k1 - k0, n)) for _ in range(3)]
        _kernels.split_limbs(np.ascontiguousarray(a[:, k0:k1]), *la)
        _kernels.split_limbs(np.ascontiguousarray(b[k0:k1]), *lb)
        _kernels.combine_limbs(la[0] @ lb[0], la[0] @ lb[1], la[1] @ lb[0], la[0] @ lb[2], la[2] @ lb[0],
                               la[1] @ lb[1], out)


def matmul_u64(a: np.ndarray, b: np.ndarray, *, method: str = "auto") -> np.ndarray:
    """``a @ b`` modulo 2^64 for 2-D uint64 arrays, exactly (a new C-contiguous array).

    ``method`` forces a kernel (``"ifma"``, ``"limb"``, ``"loop"``; for tests and
    benchmarks); ``"auto"`` picks by shape and CPU (see the module docstring).
    """
    return matmul2_u64(a, b, None, None, method=method)


def matmul2_u64(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray | None, b2: np.ndarray | None,
                c: np.ndarray | None = None, *, method: str = "auto") -> np.ndarray:
    """``a1 @ b1 + a2 @ b2 (+ c)`` modulo 2^64, exactly (a new C-contiguous array).

    The two products share their output shape (``a1``: (m, k1), ``a2``: (m, k2)); the
    IFMA kernel computes them as one product ``[a1 | a2] @ [b1; b2]`` without
    concatenating. ``a2``/``b2`` may both be ``None`` (then only ``a1 @ b1``), ``c`` is an
    (m, n) addend or ``None``.
    """
    a1 = _u64_2d(a1, "a1")
    b1 = _u64_2d(b1, "b1")
    m, k1 = a1.shape
    n = b1.shape[1]
    if b1.shape[0] != k1:
        raise InputError(f"matmul: shapes {a1.shape} and {b1.shape} are not aligned")
    if (a2 is None) != (b2 is None):
        raise InputError("a2 and b2 must both be given or both be None")
    if a2 is None:
        a2 = np.zeros((m, 0), dtype=np.uint64)
        b2 = np.zeros((0, n), dtype=np.uint64)
    a2 = _u64_2d(a2, "a2")
    b2 = _u64_2d(b2, "b2")
    if a2.shape[0] != m or b2.shape[1] != n or a2.shape[1] != b2.shape[0]:
        raise InputError(f"matmul2: second product {a2.shape} @ {b2.shape} does not give shape {(m, n)}")
    if c is not None:
        c = _u64_2d(c, "c")
        if c.shape != (m, n):
            raise InputError(f"matmul2: c must have shape {(m, n)}, got {c.shape}")
    k = k1 + a2.shape[1]
    how = _method(method, m, k, n)
    out = np.empty((m, n), dtype=np.uint64)
    if how == "ifma":
        _kernels.matmul2_u64_ifma(a1, b1, a2, b2, _NO_C if c is None else c, out)
        return out
    if how == "limb":
        if c is None:
            out[:] = 0
        else:
            out[:] = c
        _limb_into(a1, b1, out)
        if a2.shape[1]:
            _limb_into(a2, b2, out)
        return out
    _kernels.matmul_u64(a1, b1, out)
    if a2.shape[1]:
        out += _kernels.matmul_u64(a2, b2, np.empty((m, n), dtype=np.uint64))
    if c is not None:
        out += c
    return out
