"""The wire codec: a versioned frame with a typed header and raw array buffers.

No pickle, marshal or eval: only a whitelist of types crosses the wire, and the decoder
reconstructs them from a small binary header. Large arrays and byte strings travel as raw
buffers after the header, so the sender hands the kernel a ``memoryview`` of the array and
the receiver ``recv_into``\\ s straight into a freshly allocated ``numpy`` array.

Frame layout (all integers little-endian)::

    prefix  (20 bytes)  magic b"PETF" | version u8 | flags u8 (0) | reserved u16 (0)
                        | header_len u32 | body_len u64
    header  (header_len bytes)  one encoded value, see below
    body    (body_len bytes)    the raw buffers of every array / bytes value, in header order

The receiver checks ``20 + header_len + body_len <= max_frame_size`` *before* allocating
anything, so an oversized length prefix costs nothing.

Header encoding of a value: a one-byte tag and a payload.

====  ==========================  ===========================================================
tag   type                        payload
====  ==========================  ===========================================================
N     None                        -
T/F   True / False                -
i     int in [-2^63, 2^63)        i64
I     any other int               u32 length + two's-complement little-endian bytes
d     float                       f64
s     str                         u32 length + UTF-8 bytes
b     bytes / bytearray           u64 length (the bytes go in the body)
a     numpy array                 u8 dtype code + u8 ndim + ndim x u64 shape (data in body)
A     numpy scalar                as ``a`` with ndim 0; decodes to a numpy scalar
l/t   list / tuple                u32 count + items
m     dict                        u32 count + (key, value) pairs; keys are encoded values
G     goodbye (control frame)     u32 length + ASCII reason; only as the whole header, never
                                  nested: the decoder raises :class:`~pet.errors.PeerFailed`
====  ==========================  ===========================================================

Arrays are sent in little-endian byte order and C order; a non-contiguous or big-endian
array is copied once into that layout. Allowed dtypes: bool, int8..int64, uint8..uint64,
float16/32/64, complex64/128.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

import numpy as np

from pet.errors import FrameTooLarge, PeerFailed, PetTypeError, ProtocolError, describe_peer_failure

__all__ = [
    "MAGIC",
    "VERSION",
    "PREFIX",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_DEPTH",
    "EncodedFrame",
    "encode",
    "decode",
    "parse_prefix",
    "decode_header",
]

MAGIC = b"PETF"
VERSION = 1
PREFIX = struct.Struct("<4sBBHIQ")
#: Default cap on the size of one frame (prefix + header + body): 4 GiB.
DEFAULT_MAX_FRAME_SIZE = 4 << 30
#: Default cap on container nesting.
DEFAULT_MAX_DEPTH = 32
#: Cap on the header part of a frame (the raw buffers do not count).
MAX_HEADER_SIZE = 64 << 20

_DTYPES: tuple[np.dtype, ...] = tuple(
    np.dtype(name).newbyteorder("<")
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64", "complex64", "complex128",
    )
)
_DTYPE_CODE = {dt: code for code, dt in enumerate(_DTYPES)}
_DTYPE_CODE.update({dt.newbyteorder("="): code for code, dt in enumerate(_DTYPES)})
_MAX_NDIM = 32

_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True)
class EncodedFrame:
    """A frame ready to send: ``head`` (prefix + header) then the raw ``buffers``."""

    head: bytes
    buffers: tuple[memoryview, ...]
    nbytes: int

    def join(self) -> bytes:
        """The whole frame as one ``bytes`` object (a copy; for small frames and tests)."""
        return b"".join((self.head, *self.buffers))


def _array_buffer(arr: np.ndarray) -> tuple[int, memoryview]:
    dt = arr.dtype
    code = _DTYPE_CODE.get(dt)
    if code is None:
        if dt.kind in "biufc" and dt.byteorder == ">":
            arr = arr.astype(dt.newbyteorder("<"))
            code = _DTYPE_CODE[arr.dtype]
        else:
            raise PetTypeError(
                f"cannot send a numpy array of dtype {dt}: allowed dtypes are bool, "
                "(u)int8..64, float16/32/64 and complex64/128"
            )
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    # reshape(-1) of a contiguous array is a view; uint8 view gives a flat byte buffer.
    return code, memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else memoryview(b"")


def encode(obj, *, max_depth: int = DEFAULT_MAX_DEPTH) -> EncodedFrame:
    """Encode ``obj`` into a frame. Raises :class:`~pet.errors.PetTypeError` for a type
    outside the whitelist and :class:`~pet.errors.ProtocolError` if nesting exceeds
    ``max_depth``."""
    header = bytearray()
    buffers: list[memoryview] = []

    def put(value, depth: int) -> None:
        # Order matters: bool before int (bool subclasses int), numpy scalars before float.
        if value is None:
            header.append(0x4E)  # N
        elif value is True:
            header.append(0x54)  # T
        elif value is False:
            header.append(0x46)  # F
        elif isinstance(value, np.ndarray):
            code, buf = _array_buffer(value)
            if value.ndim > _MAX_NDIM:
                raise PetTypeError(f"cannot send an array with {value.ndim} dimensions")
            header.append(0x61)  # a
            header.extend(_U8.pack(code) + _U8.pack(value.ndim))
            for n in value.shape:
                header.extend(_U64.pack(n))
            buffers.append(buf)
        elif isinstance(value, np.generic):
            code, buf = _array_buffer(np.asarray(value))
            header.append(0x41)  # A
            header.extend(_U8.pack(code) + _U8.pack(0))
            buffers.append(buf)
        elif isinstance(value, int):
            if _I64_MIN <= value <= _I64_MAX:
                header.append(0x69)  # i
                header.extend(_I64.pack(value))
            else:
                raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
                header.append(0x49)  # I
                header.extend(_U32.pack(len(raw)) + raw)
        elif isinstance(value, float):
            header.append(0x64)  # d
            header.extend(_F64.pack(value))
        elif isinstance(value, str):
            raw = value.encode("utf-8", "surrogatepass")
            header.append(0x73)  # s
            header.extend(_U32.pack(len(raw)) + raw)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            buf = memoryview(value).cast("B") if isinstance(value, memoryview) else memoryview(value)
            header.append(0x62)  # b
            header.extend(_U64.pack(buf.nbytes))
            buffers.append(buf)
        elif isinstance(value, (list, tuple)):
            if depth >= max_depth:
                raise ProtocolError(f"value nested deeper than max_depth={max_depth}")
            header.append(0x6C if isinstance(value, list) else 0x74)  # l / t
            header.extend(_U32.pack(len(value)))
            for item in value:
                put(item, depth + 1)
        elif isinstance(value, dict):
            if depth >= max_depth:
                raise ProtocolError(f"value nested deeper than max_depth={max_depth}")
            header.append(0x6D)  # m
            header.extend(_U32.pack(len(value)))
            for key, item in value.items():
                put(key, depth + 1)
                put(item, depth + 1)
        else:
            raise PetTypeError(
                f"cannot send a value of type {type(value).__name__}: the wire accepts None, "
                "bool, int, float, str, bytes, numeric numpy arrays and lists/tuples/dicts of these"
            )

    put(obj, 0)
    body_len = sum(b.nbytes for b in buffers)
    head = PREFIX.pack(MAGIC, VERSION, 0, 0, len(header), body_len) + bytes(header)
    return EncodedFrame(head, tuple(buffers), len(head) + body_len)


#: Header tag of the goodbye control frame (``G`` + a str reason, the whole header).
GOODBYE_TAG = 0x47
#: Longest goodbye reason accepted (the vocabulary's keys are much shorter).
_MAX_GOODBYE = 64


def encode_goodbye(reason: str) -> EncodedFrame:
    """The goodbye control frame: a party that stops early sends it before closing, with a
    reason key from :data:`pet.errors.PEER_FAILURE_REASONS` (never error text or data). The
    receiver's decoder raises :class:`~pet.errors.PeerFailed` instead of returning a value."""
    raw = reason.encode("ascii")
    if len(raw) > _MAX_GOODBYE:
        raise PetTypeError(f"goodbye reason longer than {_MAX_GOODBYE} bytes")
    header = bytes([GOODBYE_TAG]) + _U32.pack(len(raw)) + raw
    return EncodedFrame(PREFIX.pack(MAGIC, VERSION, 0, 0, len(header), 0) + header, (), PREFIX.size + len(header))


def _raise_goodbye(view: memoryview) -> None:
    """Decode a goodbye header (tag already seen at ``view[0]``) and raise PeerFailed."""
    reason = None
    if len(view) >= 5:
        (n,) = _U32.unpack(view[1:5])
        raw = bytes(view[5:])
        if n == len(raw) <= _MAX_GOODBYE and raw.isascii():
            reason = raw.decode("ascii")
    message = describe_peer_failure(reason)
    raise PeerFailed(message, reason if message != describe_peer_failure(None) else None)


def parse_prefix(prefix: bytes | bytearray | memoryview, *, max_frame_size: int) -> tuple[int, int]:
    """Check a 20-byte frame prefix and return ``(header_len, body_len)``.

    Raises :class:`~pet.errors.ProtocolError` on a bad magic, version or reserved field and
    :class:`~pet.errors.FrameTooLarge` when the announced frame exceeds ``max_frame_size``.
    """
    magic, version, flags, reserved, header_len, body_len = PREFIX.unpack(prefix)
    if magic != MAGIC and bytes(magic[:2]) == b"\x16\x03":
        raise ProtocolError("the peer started a TLS handshake but this side does not use TLS: give both sides "
                            "TLS options (--tls-dir, or --tls-cert/--tls-key/--tls-ca), or neither")
    if magic != MAGIC:
        raise ProtocolError(f"bad frame magic {bytes(magic)!r} (expected {MAGIC!r}): not a pet peer?")
    if version != VERSION:
        raise ProtocolError(f"unsupported frame version {version} (this side speaks {VERSION})")
    if flags or reserved:
        raise ProtocolError(f"unsupported frame flags {flags:#x}/{reserved:#x}")
    total = PREFIX.size + header_len + body_len
    if header_len > MAX_HEADER_SIZE or total > max_frame_size:
        raise FrameTooLarge(
            f"peer announced a frame of {total} bytes (header {header_len}), "
            f"above the limit of {max_frame_size} bytes"
        )
    return header_len, body_len


class _Slot:
    """A place in the decoded tree that the body data will fill."""

    __slots__ = ("kind", "dtype", "shape", "nbytes", "scalar")

    def __init__(self, kind, dtype, shape, nbytes, scalar=False):
        self.kind, self.dtype, self.shape, self.nbytes, self.scalar = kind, dtype, shape, nbytes, scalar


def decode_header(header: bytes | memoryview, *, max_depth: int = DEFAULT_MAX_DEPTH):
    """Parse a frame header into a value tree with :class:`_Slot` placeholders for
    buffers, and the list of those slots in body order. Raises
    :class:`~pet.errors.ProtocolError` on any malformed input."""
    view = memoryview(header)
    end = len(view)
    if end and view[0] == GOODBYE_TAG:
        _raise_goodbye(view)
    slots: list[_Slot] = []
    pos = 0

    def take(n: int) -> memoryview:
        nonlocal pos
        if pos + n > end:
            raise ProtocolError("truncated frame header")
        chunk = view[pos:pos + n]
        pos += n
        return chunk

    def get(depth: int):
        tag = take(1)[0]
        if tag == 0x4E:
            return None
        if tag == 0x54:
            return True
        if tag == 0x46:
            return False
        if tag == 0x69:
            return _I64.unpack(take(8))[0]
        if tag == 0x49:
            (n,) = _U32.unpack(take(4))
            return int.from_bytes(take(n), "little", signed=True)
        if tag == 0x64:
            return _F64.unpack(take(8))[0]
        if tag == 0x73:
            (n,) = _U32.unpack(take(4))
            try:
                return str(take(n), "utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"string in frame header is not UTF-8: {exc}") from None
        if tag == 0x62:
            (n,) = _U64.unpack(take(8))
            slot = _Slot("b", None, None, n)
            slots.append(slot)
            return slot
        if tag in (0x61, 0x41):
            code, ndim = take(2)
            if code >= len(_DTYPES):
                raise ProtocolError(f"unknown dtype code {code} in frame header")
            if ndim > _MAX_NDIM or (tag == 0x41 and ndim != 0):
                raise ProtocolError(f"bad array rank {ndim} in frame header")
            shape = tuple(_U64.unpack(take(8))[0] for _ in range(ndim))
            dtype = _DTYPES[code]
            slot = _Slot("a", dtype, shape, _array_nbytes(shape, dtype), scalar=tag == 0x41)
            slots.append(slot)
            return slot
        if tag in (0x6C, 0x74):
            if depth >= max_depth:
                raise ProtocolError(f"frame nests deeper than max_depth={max_depth}")
            (n,) = _U32.unpack(take(4))
            if n > end - pos:  # every item takes at least one byte
                raise ProtocolError("truncated frame header (container count too large)")
            items = [get(depth + 1) for _ in range(n)]
            return items if tag == 0x6C else tuple(items)
        if tag == 0x6D:
            if depth >= max_depth:
                raise ProtocolError(f"frame nests deeper than max_depth={max_depth}")
            (n,) = _U32.unpack(take(4))
            if 2 * n > end - pos:
                raise ProtocolError("truncated frame header (dict count too large)")
            out = {}
            for _ in range(n):
                key = get(depth + 1)
                value = get(depth + 1)
                try:
                    out[key] = value
                except TypeError:
                    raise ProtocolError(f"unhashable dict key of type {type(key).__name__} in frame") from None
            return out
        raise ProtocolError(f"unknown type tag {tag:#04x} in frame header")

    value = get(0)
    if pos != end:
        raise ProtocolError(f"{end - pos} trailing bytes after the frame header")
    return value, slots


def _array_nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes of an array of ``shape``; :class:`~pet.errors.ProtocolError` for a shape numpy
    cannot represent (a dimension or a size beyond ``2**63 - 1``, even next to a zero)."""
    nonzero = 1
    for n in shape:
        if n > _I64_MAX:
            raise ProtocolError(f"array dimension {n} in frame header exceeds 2**63 - 1")
        if n:
            nonzero *= n
    if nonzero * dtype.itemsize > _I64_MAX:
        raise ProtocolError(f"array shape {shape} of {dtype} in frame header is too large to represent")
    return 0 if 0 in shape else nonzero * dtype.itemsize


def _as_array(raw: np.ndarray, slot: _Slot) -> np.ndarray:
    """View the received bytes ``raw`` (1-D uint8) as the slot's array."""
    try:
        if not slot.nbytes:
            return np.empty(slot.shape, dtype=slot.dtype)
        return raw.view(slot.dtype).reshape(slot.shape)
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise ProtocolError(f"cannot build an array of shape {slot.shape} from the frame: {exc}") from None


#: The body of a frame is received into buffers that grow as the data arrives: the first
#: allocation for a value is at most this many bytes, and each later step at most doubles
#: it, so a peer announcing a huge value commits only about twice what it actually sent.
BODY_STEP = 4 << 20
#: Bytes of finished receive buffers a :class:`RecvPool` keeps for reuse (per channel).
RECV_POOL_BYTES = 64 << 20
#: Values smaller than this are received into fresh buffers (malloc reuses small ones
#: without new pages anyway) and never pooled.
RECV_POOL_MIN_BYTES = 1 << 20


class RecvPool:
    """Receive buffers of earlier frames of one channel, reused once nothing refers to them.

    A large value received into fresh memory costs a page fault (and the kernel zeroing the
    page) every 4 KiB: about 4,000 faults per 16 MB Beaver opening, a third of a party's
    CPU time over loopback. The pool keeps the buffers of finished large values (at most
    ``max_bytes`` in all) and hands one back for a later value of at most its size and at
    least half of it, but only when the pool's own reference is the last one (CPython
    reference count: every array or memoryview built on the buffer holds a reference to
    it), so a value the caller still holds is never overwritten. Reuse allocates nothing,
    so the bound on what a lying peer can make a receiver allocate is unchanged.
    Not thread-safe: used under the channel's receive lock.
    """

    def __init__(self, max_bytes: int = RECV_POOL_BYTES, min_bytes: int = RECV_POOL_MIN_BYTES):
        self.max_bytes = int(max_bytes)
        self.min_bytes = int(min_bytes)
        self._bufs: list[np.ndarray] = []
        self.reused = 0  # buffers handed out again (for tests and diagnostics)

    def _free(self, i: int) -> bool:
        # the list's reference and getrefcount's argument: nothing else holds the buffer
        return sys.getrefcount(self._bufs[i]) <= 2

    def take(self, nbytes: int) -> np.ndarray | None:
        """A free pooled buffer of ``nbytes`` to ``2 * nbytes`` bytes (the smallest), or None."""
        if nbytes < self.min_bytes:
            return None
        best = None
        for i in range(len(self._bufs)):
            size = self._bufs[i].size
            if nbytes <= size <= 2 * nbytes and (best is None or size < self._bufs[best].size) and self._free(i):
                best = i
        if best is None:
            return None
        self.reused += 1
        return self._bufs[best]

    def offer(self, buf: np.ndarray) -> None:
        """Keep ``buf`` (a finished receive buffer, not pooled yet) for reuse if it is at
        least ``min_bytes`` and at most ``max_bytes``, forgetting the oldest pooled buffers
        until it fits (a forgotten buffer still in use stays with its user; the pool keeps
        the most recent messages' buffers, not values held for long such as input shares)."""
        if buf.size < self.min_bytes or buf.size > self.max_bytes or any(b is buf for b in self._bufs):
            return
        while self._bufs and self.nbytes + buf.size > self.max_bytes:
            del self._bufs[0]
        self._bufs.append(buf)

    @property
    def nbytes(self) -> int:
        return sum(b.size for b in self._bufs)


class BodyReader:
    """Receives the body of a frame into buffers that grow with the data that arrived.

    Call :meth:`view` for the next writable piece, fill some of it, release the view, then
    :meth:`advance` by the number of bytes written; :attr:`buffers` holds the finished
    values (numpy arrays and ``bytes``) in body order once :attr:`done`.
    """

    def __init__(self, slots, *, step: int = BODY_STEP, pool: RecvPool | None = None):
        self.slots = list(slots)
        self.step = step
        self.pool = pool
        self.buffers: list = []
        self._index = 0
        self._buf = None
        self._got = 0
        self._next_slot()

    @property
    def done(self) -> bool:
        return self._index >= len(self.slots)

    def view(self) -> memoryview:
        """The writable space left in the current buffer (release it before :meth:`advance`)."""
        return memoryview(self._buf[self._got:])

    def advance(self, n: int) -> None:
        self._got += n
        if self._got < len(self._buf):
            return
        slot = self.slots[self._index]
        if self._got < slot.nbytes:
            size = min(slot.nbytes, 2 * len(self._buf))
            try:
                # in place (realloc, no copy): only this attribute refers to the buffer (the
                # caller released its view); ``_grow(self._buf, ...)`` would hold a second
                # reference, fail numpy's reference check and copy every step
                self._buf.resize(size)
            except ValueError:
                self._buf = _grow(self._buf, size)
            return
        self._finish(self._buf)
        self._index += 1
        self._next_slot()

    def _next_slot(self) -> None:
        while not self.done and not self.slots[self._index].nbytes:
            self._finish(np.empty(0, dtype=np.uint8))
            self._index += 1
        if not self.done:
            nbytes = self.slots[self._index].nbytes
            pooled = self.pool.take(nbytes) if self.pool is not None else None
            # a pooled buffer (already in memory, no new pages) of at least the announced size,
            # else a fresh one that grows with the data
            self._buf = pooled[:nbytes] if pooled is not None else np.empty(min(nbytes, self.step), dtype=np.uint8)
            self._got = 0
        else:
            self._buf = None

    def _finish(self, raw: np.ndarray) -> None:
        slot = self.slots[self._index]
        self.buffers.append(_as_array(raw, slot) if slot.kind == "a" else raw.tobytes())
        if self.pool is not None and raw.base is None:  # a fresh buffer (a pooled one is a view)
            self.pool.offer(raw)


def _grow(buf: np.ndarray, size: int) -> np.ndarray:
    """``buf`` enlarged to ``size`` bytes: in place (realloc) when nothing else refers to it,
    by a copy otherwise."""
    try:
        buf.resize(size)
        return buf
    except ValueError:
        bigger = np.empty(size, dtype=np.uint8)
        bigger[:len(buf)] = buf
        return bigger


def fill(value, slots, buffers):
    """Replace each slot in the decoded tree by its received buffer.

    A module-level recursion (not a nested function that calls itself: that closure is a
    reference cycle holding every received buffer until the garbage collector runs, so a
    16 MB opening the caller already dropped stayed in memory and its pages could not be
    reused for the next message)."""
    if not slots:
        return value
    return _fill({id(slot): buf for slot, buf in zip(slots, buffers)}, value)


def _fill(lookup: dict, v):
    if isinstance(v, _Slot):
        buf = lookup[id(v)]
        if v.kind == "b":
            return bytes(buf) if not isinstance(buf, bytes) else buf
        return buf[()] if v.scalar else buf
    if isinstance(v, list):
        return [_fill(lookup, x) for x in v]
    if isinstance(v, tuple):
        return tuple(_fill(lookup, x) for x in v)
    if isinstance(v, dict):
        return {_fill(lookup, k): _fill(lookup, x) for k, x in v.items()}
    return v


def decode(frame: bytes | bytearray | memoryview, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
           max_depth: int = DEFAULT_MAX_DEPTH):
    """Decode one complete frame held in memory (the inverse of :func:`encode`).

    Arrays in the result are views into ``frame`` when it is writable, copies otherwise.
    """
    view = memoryview(frame).cast("B")
    if len(view) < PREFIX.size:
        raise ProtocolError("truncated frame (shorter than the 20-byte prefix)")
    header_len, body_len = parse_prefix(view[:PREFIX.size], max_frame_size=max_frame_size)
    if len(view) != PREFIX.size + header_len + body_len:
        raise ProtocolError(
            f"frame length {len(view)} does not match its prefix "
            f"({PREFIX.size + header_len + body_len})"
        )
    value, slots = decode_header(view[PREFIX.size:PREFIX.size + header_len], max_depth=max_depth)
    check_body(slots, body_len)
    pos = PREFIX.size + header_len
    buffers = []
    for slot in slots:
        chunk = view[pos:pos + slot.nbytes]
        pos += slot.nbytes
        if slot.kind == "a":
            arr = _as_array(np.frombuffer(chunk, dtype=np.uint8), slot)
            buffers.append(arr if not view.readonly else arr.copy())
        else:
            buffers.append(bytes(chunk))
    return fill(value, slots, buffers)


def check_body(slots, body_len: int) -> None:
    """The buffers the header describes must add up to the announced body length."""
    total = sum(slot.nbytes for slot in slots)
    if total != body_len:
        raise ProtocolError(f"frame header describes {total} body bytes but the prefix announced {body_len}")
