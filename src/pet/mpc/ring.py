"""The ring Z_2^64 and the signed fixed-point encoding (pure functions, no parties).

Shares are ``numpy.uint64`` arrays; numpy's uint64 arithmetic wraps modulo 2^64, which
is exactly ring arithmetic. A real value ``v`` with ``f`` fractional bits is encoded as
``round(v * 2^f) mod 2^64`` and decoded by reading the ring element as a signed int64
and dividing by ``2^f``. ``f = 0`` is the integer mode (values are int64).

Safe range
----------
Every encoded value must satisfy ``|v * 2^f| < 2^62`` (:data:`SAFE_BITS`): that is what
the exact truncation protocol needs (it shifts by ``2^62`` into ``[0, 2^63)``). With the
default ``f = 16`` inputs may be up to ``2^46 ~ 7.0e13`` in magnitude, and a product of
two fixed-point values must stay below ``2^(62 - 2f) = 2^30 ~ 1.07e9`` *before*
truncation. :func:`encode` raises :class:`~pet.errors.PrecisionError` for values outside
the range (and for NaN / inf) instead of wrapping silently.
"""

from __future__ import annotations

import numpy as np

from pet.errors import InputError, PetTypeError, PrecisionError

__all__ = ["SAFE_BITS", "MAX_FRAC_BITS", "encode", "decode", "check_frac_bits", "to_ring", "signed"]

#: Encoded magnitudes must be below ``2^SAFE_BITS``.
SAFE_BITS = 62
#: Largest supported number of fractional bits.
MAX_FRAC_BITS = 52


def check_frac_bits(frac_bits) -> int:
    """Validate a fractional-bit count (an int in ``[0, MAX_FRAC_BITS]``)."""
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, (int, np.integer)):
        raise PetTypeError(f"frac_bits must be an int, got {type(frac_bits).__name__}")
    if not 0 <= int(frac_bits) <= MAX_FRAC_BITS:
        raise InputError(f"frac_bits must be in [0, {MAX_FRAC_BITS}], got {frac_bits}")
    return int(frac_bits)


def _as_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise PetTypeError(f"{name} must be a real numeric array (bool, int or float), got dtype {arr.dtype}")
    return arr


def encode(x, frac_bits: int) -> np.ndarray:
    """Encode real or integer values ``x`` as uint64 ring elements with ``frac_bits``.

    Floats are rounded to the nearest multiple of ``2^-frac_bits``; integers are scaled
    exactly. Raises :class:`~pet.errors.PrecisionError` if any ``|x * 2^f| >= 2^62`` or
    is not finite.
    """
    f = check_frac_bits(frac_bits)
    arr = _as_array(x, "x")
    limit = 2.0 ** SAFE_BITS
    if arr.dtype.kind == "f":
        scaled = np.rint(arr.astype(np.float64) * (2.0 ** f))
        if not np.all(np.isfinite(scaled)):
            raise PrecisionError("cannot encode NaN or infinite values")
        if scaled.size and np.max(np.abs(scaled)) >= limit:
            bad = float(np.max(np.abs(arr)))
            raise PrecisionError(
                f"value {bad:g} is outside the fixed-point safe range |x| < 2^{SAFE_BITS - f} "
                f"(= {2.0 ** (SAFE_BITS - f):g}) for frac_bits={f}"
            )
        return scaled.astype(np.int64).view(np.uint64)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and int(arr.max()) >= 2 ** 63:
        raise PrecisionError(f"integer value {int(arr.max())} is outside the safe range |x| < 2^{SAFE_BITS - f}")
    ints = arr.astype(np.int64)
    if ints.size:
        bound = 2 ** (SAFE_BITS - f)
        if int(ints.max()) >= bound or int(ints.min()) <= -bound:
            raise PrecisionError(
                f"integer value outside the safe range |x| < 2^{SAFE_BITS - f} for frac_bits={f}"
            )
    return (ints << np.int64(f)).view(np.uint64)


def signed(u: np.ndarray) -> np.ndarray:
    """View ring elements as signed int64 (two's complement)."""
    return np.asarray(u, dtype=np.uint64).view(np.int64)


def decode(u, frac_bits: int) -> np.ndarray:
    """Decode ring elements: int64 for ``frac_bits == 0``, else float64 ``signed(u) / 2^f``."""
    f = check_frac_bits(frac_bits)
    s = signed(np.asarray(u, dtype=np.uint64))
    if f == 0:
        return s.copy()
    return s.astype(np.float64) / (2.0 ** f)


def to_ring(x) -> np.ndarray:
    """Integers (any sign) as uint64 ring elements, reduced modulo 2^64."""
    arr = np.asarray(x)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(np.int64).view(np.uint64) if arr.dtype != np.uint64 else arr
    raise PetTypeError(f"expected an integer array, got dtype {arr.dtype}")
