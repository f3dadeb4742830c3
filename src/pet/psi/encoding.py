"""The canonical byte encoding of PSI items (what gets hashed to the curve).

Two items match in PSI exactly when their encodings are equal. The encoding is
type-tagged, so values of different types never match:

=========================  ===============================================================
item                       encoding
=========================  ===============================================================
``str``                    ``0x01`` + UTF-8 bytes (no Unicode normalisation: NFC and NFD
                           spellings of "é" are different items)
``bytes`` / ``bytearray``  ``0x02`` + the bytes
``int`` (any size), numpy  ``0x03`` + ASCII decimal, ``-`` for negatives, no leading zeros
integer scalars            (so ``numpy.int64(5)`` matches ``5``)
composite key (tuple;      ``0x04`` + count (2 bytes, big-endian) + per component: length
a tuple item, or one row   (4 bytes, big-endian) + that component's encoding
of several align columns)
=========================  ===============================================================

Consequences: ``123`` and ``"123"`` do **not** match (convert one side explicitly, e.g.
``df["id"].astype(str)``); ``"0123"`` and ``"123"`` do not match either.

Rejected, with :class:`~pet.errors.InputError` naming the argument and the row position:
``None``, NaN / ``pandas.NA`` / ``NaT``, ``bool`` (ambiguous with 0/1), ``float``
(convert to int or str first), and any other type.

The encoding is reversible (:func:`decode`): a party that streamed its items into an
:class:`~pet.psi.store.EncodedItems` store gets the intersecting items back from their
encodings, without having kept the input values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

from pet.errors import InputError, PetTypeError

__all__ = ["decode", "encode_chunk", "encode_columns", "encode_items", "find_duplicates", "to_list"]

_STR, _BYTES, _INT, _TUPLE = b"\x01", b"\x02", b"\x03", b"\x04"


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return True
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if isinstance(value, np.floating) and np.isnan(value):
        return True
    return isinstance(value, (np.datetime64, np.timedelta64)) and bool(np.isnat(value))


def _encode_one(value, name: str, row: int) -> bytes:
    if isinstance(value, str):
        return _STR + value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray)):
        return _BYTES + bytes(value)
    if isinstance(value, tuple):
        return _tuple([_encode_one(v, name, row) for v in value])
    if isinstance(value, (bool, np.bool_)):
        raise PetTypeError(f"{name}: row {row} is a bool ({value!r}); use int or str keys")
    if isinstance(value, (int, np.integer)):
        return _INT + str(int(value)).encode("ascii")
    if _is_missing(value):
        raise InputError(f"{name}: row {row} is missing ({value!r}); PSI keys must not be None/NaN")
    if isinstance(value, (float, np.floating, numbers.Real)):
        raise PetTypeError(
            f"{name}: row {row} is a float ({value!r}); convert keys to int or str first"
        )
    raise PetTypeError(
        f"{name}: row {row} has unsupported type {type(value).__name__}; use str, bytes or int"
    )


def _tuple(parts: list[bytes]) -> bytes:
    return _TUPLE + len(parts).to_bytes(2, "big") + b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def to_list(items, name: str = "items") -> list:
    """Materialise ``items`` (list, tuple, numpy array, pandas Series/Index, iterable) as a
    list of Python objects, rejecting a bare string or mapping."""
    if isinstance(items, (str, bytes, bytearray, dict)):
        raise PetTypeError(f"{name} must be a sequence of items, not a single {type(items).__name__}")
    if hasattr(items, "to_numpy") and hasattr(items, "dtype"):  # pandas Series / Index
        return items.to_numpy(dtype=object, na_value=None).tolist() if _has_na(items) else items.tolist()
    if isinstance(items, np.ndarray):
        if items.ndim != 1:
            raise InputError(f"{name} must be one-dimensional, got shape {items.shape}")
        return items.tolist()
    if not isinstance(items, Iterable):
        raise PetTypeError(f"{name} must be an iterable of items, got {type(items).__name__}")
    return list(items)


def _has_na(series) -> bool:
    try:
        return bool(series.isna().any())
    except (TypeError, ValueError):  # pragma: no cover - exotic extension arrays
        return False


def encode_items(items, name: str = "items") -> tuple[list, list[bytes]]:
    """``(values, encodings)``: the items as a list and their canonical encodings."""
    values = to_list(items, name)
    return values, _encode_list(values, name)


def _encode_list(values: list, name: str, start: int = 0) -> list[bytes]:
    try:
        return [_encode_one(v, name, i) for i, v in enumerate(values, start)]
    except PetTypeError:
        # a float column with a missing value: report the missing row, not the float
        for i, v in enumerate(values, start):
            if _is_missing(v):
                raise InputError(f"{name}: row {i} is missing ({v!r}); PSI keys must not be None/NaN") from None
        raise


def encode_chunk(values: list, name: str = "items", start: int = 0) -> list[bytes]:
    """The encodings of ``values``, rows ``start, start + 1, ...`` of a longer input (the
    row numbers that errors report)."""
    return _encode_list(values, name, start)


def encode_columns(columns: list, names: list[str], start: int = 0) -> list[bytes]:
    """Composite keys: ``columns`` is a list of equally long value lists; row ``i``'s key is
    the tuple of the ``i``-th values. One column gives the plain item encoding, so aligning
    on one column matches :func:`~pet.psi.ecdh_psi` on the same values. ``start`` is the
    row number of the first value (for error messages)."""
    encoded = [_encode_list(col, name, start) for col, name in zip(columns, names)]
    if len(encoded) == 1:
        return encoded[0]
    return [_tuple(list(row)) for row in zip(*encoded)]


def decode(encoding: bytes):
    """The item whose canonical encoding is ``encoding`` (inverse of the encoding; a
    composite key comes back as a tuple)."""
    value, end = _decode(bytes(encoding), 0, len(encoding))
    if end != len(encoding):
        raise InputError(f"not a canonical PSI item encoding: {len(encoding) - end} trailing byte(s)")
    return value


def _decode(buf: bytes, start: int, end: int):
    tag, body = buf[start:start + 1], buf[start + 1:end]
    if tag == _STR:
        return body.decode("utf-8", "surrogatepass"), end
    if tag == _BYTES:
        return body, end
    if tag == _INT:
        return int(body.decode("ascii")), end
    if tag == _TUPLE and end - start >= 3:
        count, pos, parts = int.from_bytes(buf[start + 1:start + 3], "big"), start + 3, []
        for _ in range(count):
            size = int.from_bytes(buf[pos:pos + 4], "big")
            parts.append(_decode(buf, pos + 4, pos + 4 + size)[0])
            pos += 4 + size
        return tuple(parts), pos
    raise InputError(f"not a canonical PSI item encoding (tag {tag!r})")


def find_duplicates(encoded: list[bytes]) -> tuple[list[int], int]:
    """``(first_positions, n_duplicates)``: the positions of first occurrences (in order)
    and how many rows repeat an earlier item."""
    seen: dict[bytes, int] = {}
    first = []
    for i, e in enumerate(encoded):
        if e not in seen:
            seen[e] = i
            first.append(i)
    return first, len(encoded) - len(first)
