"""A compact store of PSI item encodings, built chunk by chunk.

:class:`EncodedItems` keeps the canonical encodings (:mod:`pet.psi.encoding`) of all of a
party's items in one contiguous buffer instead of one Python ``bytes`` object per item
(about 50 bytes of object header each, plus an 8-byte list pointer):

- the buffer: the encodings back to back (``1 + len(utf-8)`` bytes for a str item);
- offsets: none when every encoding has the same length (fixed width, e.g. ids of one
  format), else one ``uint32`` per item (``uint64`` past 4 GiB of encodings);
- after de-duplication with ``dedupe=True``: one ``int64`` row number per kept item.

Duplicates are found without holding the encodings as objects: each chunk's encodings are
hashed to 64 bits while they are added (8 bytes per item, freed when the store is
finished), the hashes are sorted with numpy, and only rows whose hashes collide are
compared byte for byte, so the count is exact.

The PSI reads the store by shuffled position, a chunk at a time (:meth:`EncodedItems.take`),
so the only per-item ``bytes`` objects alive are those of the chunks in flight.
This module is local computation: nothing here is sent to the peer.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pet.errors import InputError, PetTypeError
from pet.psi.encoding import decode, encode_chunk, encode_columns, to_list

__all__ = ["DEFAULT_BATCH", "EncodedItems", "StoreBuilder", "encode_chunks"]

#: Items encoded at a time when a store is built from one sequence.
DEFAULT_BATCH = 1 << 16


class StoreBuilder:
    """Accumulates encodings chunk by chunk; :meth:`finish` returns the store."""

    def __init__(self, name: str = "items"):
        self.name = name
        self.rows = 0
        self._buf = bytearray()
        self._lengths: list[np.ndarray] = []
        self._hashes: list[np.ndarray] = []

    def add_encodings(self, encodings: list[bytes]) -> None:
        """Append encodings (rows ``self.rows, self.rows + 1, ...``)."""
        k = len(encodings)
        self._buf += b"".join(encodings)
        self._lengths.append(np.fromiter(map(len, encodings), dtype=np.uint32, count=k))
        self._hashes.append(np.fromiter(map(hash, encodings), dtype=np.int64, count=k))
        self.rows += k

    def add_values(self, values) -> None:
        """Encode and append a chunk of items (str, bytes, int or tuples of them)."""
        self.add_encodings(encode_chunk(to_list(values, self.name), self.name, self.rows))

    def add_columns(self, columns: list, names: list[str]) -> None:
        """Encode and append a chunk of rows given column by column (a composite key when
        there are several columns)."""
        self.add_encodings(encode_columns(columns, names, self.rows))

    def finish(self) -> EncodedItems:
        """The store (the builder is emptied). Peak while finishing: the buffer plus about
        16 bytes per item (the hashes and their sorted copy)."""
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.uint32)
        self._lengths = []
        n = int(lengths.size)
        width = int(lengths[0]) if n else 0
        offsets = _offsets(lengths)
        del lengths
        hashes = np.concatenate(self._hashes) if self._hashes else np.zeros(0, np.int64)
        self._hashes = []
        buf, self._buf = self._buf, bytearray()
        first = _first_occurrences(buf, _Layout(n, width, offsets), hashes)
        return EncodedItems(buf, n, width, offsets, first, self.name)


class _Layout:
    """Where item ``i`` lies in the buffer: fixed ``width`` or ``offsets``."""

    def __init__(self, n: int, width: int, offsets: np.ndarray | None):
        self.n, self.width, self.offsets = n, width, offsets

    def span(self, i: int) -> tuple[int, int]:
        if self.offsets is None:
            return i * self.width, (i + 1) * self.width
        return int(self.offsets[i]), int(self.offsets[i + 1])


def _offsets(lengths: np.ndarray) -> np.ndarray | None:
    """Start offsets (``n + 1``), or None when all lengths are equal (fixed width)."""
    if lengths.size == 0 or (lengths == lengths[0]).all():
        return None
    total = int(lengths.sum(dtype=np.uint64))
    out = np.zeros(lengths.size + 1, dtype=np.uint32 if total < 2**32 else np.uint64)
    np.cumsum(lengths, out=out[1:])
    return out


def _first_occurrences(buf: bytearray, layout: _Layout, hashes: np.ndarray) -> np.ndarray | None:
    """Rows of first occurrences (ascending), or None when all items are distinct.

    Exact: rows are compared byte for byte whenever their 64-bit hashes are equal."""
    n = hashes.size
    sorted_h = np.sort(hashes)
    if n < 2 or not (sorted_h[1:] == sorted_h[:-1]).any():
        return None
    del sorted_h
    order = np.argsort(hashes, kind="stable")
    h = hashes[order]
    same = h[1:] == h[:-1]
    del h
    candidate = np.zeros(n, dtype=bool)
    candidate[1:] |= same
    candidate[:-1] |= same
    rows = np.sort(order[candidate])
    del order, candidate
    seen: set[bytes] = set()
    repeat = []
    for r in rows.tolist():
        a, b = layout.span(r)
        enc = bytes(buf[a:b])
        if enc in seen:
            repeat.append(r)
        else:
            seen.add(enc)
    if not repeat:
        return None
    keep = np.ones(n, dtype=bool)
    keep[np.asarray(repeat, dtype=np.int64)] = False
    return np.nonzero(keep)[0].astype(np.int64)


class EncodedItems:
    """The encodings of ``n_rows`` input rows in one buffer (see the module docstring).

    ``len(store)`` is the number of items the PSI runs on: all rows, or after
    :meth:`deduplicated` the first occurrence of each item. ``positions`` maps item ``i``
    back to its input row. ``duplicates`` is the number of rows repeating an earlier item.
    """

    def __init__(self, buf: bytearray, n: int, width: int, offsets: np.ndarray | None, first: np.ndarray | None,
                 name: str = "items"):
        self.name = name
        self.n_rows = n
        self._buf = buf
        self._width = width
        self._offsets = offsets
        self._first = first
        self._keep = None
        self._view = np.frombuffer(buf, dtype=np.uint8) if len(buf) else np.zeros(0, np.uint8)

    @property
    def duplicates(self) -> int:
        return 0 if self._first is None else self.n_rows - int(self._first.size)

    def deduplicated(self) -> EncodedItems:
        """The same store restricted to the first occurrence of each item."""
        if self._first is None or self._keep is not None:
            return self
        out = object.__new__(EncodedItems)
        out.__dict__.update(self.__dict__)
        out._keep = self._first
        return out

    def __len__(self) -> int:
        return self.n_rows if self._keep is None else int(self._keep.size)

    @property
    def positions(self) -> np.ndarray:
        """int64 input row of each item."""
        return np.arange(self.n_rows, dtype=np.int64) if self._keep is None else self._keep

    def rows_of(self, idx) -> np.ndarray:
        """Input rows of items ``idx`` (an int array)."""
        idx = np.asarray(idx, dtype=np.int64)
        return idx if self._keep is None else self._keep[idx]

    @property
    def nbytes(self) -> int:
        """Bytes held per the module docstring (buffer, offsets, row map, duplicate index)."""
        extra = sum(a.nbytes for a in (self._offsets, self._keep, self._first) if a is not None)
        return len(self._buf) + extra

    def take(self, idx) -> list[bytes]:
        """The encodings of items ``idx`` (an int array), as a list of ``bytes``."""
        rows = self.rows_of(idx)
        if self._offsets is None:
            w = self._width
            if w == 0:
                return [b""] * rows.size
            flat = self._view.reshape(-1, w)[rows].tobytes()
            return [flat[i:i + w] for i in range(0, len(flat), w)]
        start, end = self._offsets[rows].tolist(), self._offsets[rows + 1].tolist()
        view = memoryview(self._buf)
        return [view[a:b].tobytes() for a, b in zip(start, end)]

    def __getitem__(self, i: int) -> bytes:
        return self.take(np.asarray([i]))[0]

    def items(self, idx) -> list:
        """The items ``idx`` (int array), decoded from their encodings (str, bytes, int or tuple)."""
        return [decode(e) for e in self.take(idx)]


def encode_chunks(chunks: Iterable, *, name: str = "items") -> EncodedItems:
    """An :class:`EncodedItems` store from an iterable of chunks, each a sequence of items
    (list, numpy array, pandas Series...) of the kinds :func:`~pet.psi.ecdh_psi` accepts.

    Only one chunk's encodings exist as Python objects at a time; errors name the row
    counted from the start of the first chunk."""
    if isinstance(chunks, (str, bytes, bytearray, dict)) or not isinstance(chunks, Iterable):
        raise PetTypeError(f"{name} must be an iterable of chunks of items, got {type(chunks).__name__}")
    builder = StoreBuilder(name)
    for chunk in chunks:
        if isinstance(chunk, (str, bytes, bytearray)):
            raise InputError(f"{name}: a chunk must be a sequence of items, got a single {type(chunk).__name__} "
                             f"at row {builder.rows} (wrap it in a list)")
        builder.add_values(chunk)
    return builder.finish()


def store_from_values(values: list, name: str = "items", batch: int = DEFAULT_BATCH) -> EncodedItems:
    """A store from a list of items, encoded ``batch`` items at a time."""
    builder = StoreBuilder(name)
    for s in range(0, len(values), batch):
        builder.add_encodings(encode_chunk(values[s:s + batch], name, s))
    return builder.finish()


def store_from_columns(columns: list, names: list[str], name: str, batch: int = DEFAULT_BATCH) -> EncodedItems:
    """A store from equally long value lists (a composite key when several)."""
    builder = StoreBuilder(name)
    n = len(columns[0]) if columns else 0
    for s in range(0, n, batch):
        builder.add_encodings(encode_columns([c[s:s + batch] for c in columns], names, s))
    return builder.finish()
