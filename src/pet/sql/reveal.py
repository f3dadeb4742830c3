"""The reveal: only the kept groups' (or rows') output values reach the receiver(s).

Inputs are the output values per group (:mod:`pet.sql.values`), the ``keep`` 0/1 value
(public, owned by one party, or shared) and the receivers (both parties or one).

1. The receivers learn ``keep`` (which output rows exist -- part of the result). An
   owned ``keep`` is sent by its owner; a shared one is opened to the receivers only.
2. Shared outputs: if both parties know ``keep``, only the kept entries are opened;
   otherwise the receiver opens ``value * keep`` (a Beaver product), so a dropped group
   opens as 0.
3. Owned outputs (group keys, or aggregates their owner computed): the owner sends the
   kept entries in plaintext when it knows ``keep``; when it does not (a shared ``keep``
   and the other party is the only receiver), it encodes its values as 32-bit words
   (a presence/length word, then the bits of the number or the UTF-8 bytes of the
   string), the words are multiplied by ``keep`` in MPC and opened to the receiver, so a
   dropped group's key opens as zeros. The receiver learns the number of words per
   value (the longest string key, in 4-byte units).

The non-receiving party learns nothing in this step (it only sends masked shares).
"""

from __future__ import annotations

import numpy as np

from pet.errors import ProtocolError
from pet.sql.values import Own, Pub, Sh, trivial

__all__ = ["reveal_columns", "to_words", "from_words"]


def to_words(vals, kind: str) -> np.ndarray:
    """``(g, w)`` int64 words < 2^32: word 0 = 0 for NULL, else 1 (numbers) or 1 + byte
    length (strings); then the 64-bit pattern (numbers) or the UTF-8 bytes (strings)."""
    g = len(vals)
    if kind in ("int", "bool", "float"):
        out = np.zeros((g, 3), dtype=np.int64)
        for i, v in enumerate(vals):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            if kind == "float":
                bits = int(np.float64(v).view(np.uint64))
            else:
                bits = int(np.int64(v).view(np.uint64))
            out[i] = (1, bits >> 32, bits & 0xFFFFFFFF)
        return out
    raw = [None if v is None else str(v).encode("utf-8") for v in vals]
    width = max([len(b) for b in raw if b is not None] + [0])
    nw = 1 + -(-width // 4)
    out = np.zeros((g, nw), dtype=np.int64)
    for i, b in enumerate(raw):
        if b is None:
            continue
        out[i, 0] = 1 + len(b)
        padded = b + b"\0" * ((nw - 1) * 4 - len(b))
        if nw > 1:
            out[i, 1:] = np.frombuffer(padded, dtype=">u4").astype(np.int64)
    return out


def from_words(words: np.ndarray, kind: str) -> list:
    """Inverse of :func:`to_words` (NULL for a zero presence word)."""
    out = []
    for row in np.asarray(words, dtype=np.int64):
        if row[0] == 0:
            out.append(None)
            continue
        if kind in ("int", "bool", "float"):
            bits = np.uint64((int(row[1]) << 32) | int(row[2]))
            if kind == "float":
                out.append(float(bits.view(np.float64)))
            elif kind == "bool":
                out.append(bool(bits.view(np.int64)))
            else:
                out.append(int(bits.view(np.int64)))
            continue
        n = int(row[0]) - 1
        data = row[1:].astype(">u4").tobytes()[:n]
        out.append(data.decode("utf-8"))
    return out


def _keep_operand(session, keep, g):
    if isinstance(keep, Sh):
        return keep.s.reshape(g, 1)
    kv = None if keep.v is None else np.asarray(keep.v).astype(np.int64).reshape(g, 1)
    return trivial(session, keep.party, kv if kv is not None else np.zeros((g, 1), np.int64), 0)


def _total(session, v, receivers):
    """Sum of a 0/1 value, opened to the receivers (None elsewhere)."""
    one = receivers[0] if len(receivers) == 1 else None
    if isinstance(v, Pub):
        return int(np.sum(v.v))
    if isinstance(v, Sh):
        got = session.reveal(v.s.sum(axis=0).reshape(1), to=one)
        return None if got is None else int(np.rint(got[0]))
    total = None if v.v is None else int(np.sum(np.asarray(v.v, dtype=np.int64)))
    return _send_owned(session, v.party, total, receivers, "sql.total")


def _send_owned(session, owner, value, receivers, op):
    """The owner's plaintext ``value`` to the receivers; returns it at receivers."""
    me = session.party
    other = 1 - owner
    if other in receivers:
        if me == owner:
            session.send_to_peer(op, value)
        else:
            value = session.recv_from_peer(op)
    return value if me in receivers else None


def reveal_columns(session, plan, outs, keep, receivers, *, g, suppressed, null_flag, nullable, info,
                   pad_words=False):
    """The output columns (kept entries only) at a receiver, None elsewhere; ``g`` is the
    (public) number of groups or rows; fills ``info["suppressed_groups"]``. ``pad_words``
    (DP release of data-derived groups): masked key words are padded to
    :func:`padded_width`, so the receiver does not learn the longest suppressed key."""
    me = session.party
    receivers = sorted(receivers)
    one = receivers[0] if len(receivers) == 1 else None
    if suppressed is not None:
        info["suppressed_groups"] = _total(session, suppressed, receivers)
    else:
        info.setdefault("suppressed_groups", 0)
    # 1. the receivers learn keep
    if isinstance(keep, Pub):
        kv = np.broadcast_to(np.asarray(keep.v, dtype=bool), (g,)).copy()
        known_both = True
    elif isinstance(keep, Own):
        kv = keep.v if me == keep.party else None
        kv = _send_owned(session, keep.party, None if kv is None else np.asarray(kv, dtype=bool),
                         receivers, "sql.keep")
        if me == keep.party:
            kv = np.asarray(keep.v, dtype=bool)
        known_both = len(receivers) == 2 or keep.party not in receivers
    else:
        got = session.reveal(keep.s, to=one)
        kv = None if got is None else np.asarray(got).astype(bool)
        known_both = len(receivers) == 2
    if kv is not None and (not isinstance(kv, np.ndarray) or kv.shape != (g,)):
        raise ProtocolError("malformed keep vector")
    idx = None if kv is None else np.nonzero(kv)[0]
    nulls = None
    if null_flag is not None:
        nulls = _reveal_small(session, null_flag, receivers)
    cols = []
    for v, nullable_col in zip(outs, nullable):
        col = _reveal_value(session, v, keep, kv, idx, known_both, receivers, g, pad_words)
        if me in receivers and nulls is not None and nullable_col:
            col = np.asarray(col, dtype=object)
            col[np.asarray(nulls, dtype=bool)[idx]] = None
        cols.append(col)
    return cols if me in receivers else None


def _reveal_small(session, v, receivers):
    one = receivers[0] if len(receivers) == 1 else None
    if isinstance(v, Pub):
        return np.asarray(v.v)
    if isinstance(v, Sh):
        got = session.reveal(v.s, to=one)
        return None if got is None else np.asarray(got)
    return _send_owned(session, v.party, None if v.v is None else np.asarray(v.v), receivers, "sql.small")


def padded_width(words: int) -> int:
    """A public width for masked key words: at least 16 (60-byte strings), else the next
    power of two (the receiver learns only that power)."""
    return max(16, 1 << (max(words, 1) - 1).bit_length())


def _reveal_value(session, v, keep, kv, idx, known_both, receivers, g, pad_words=False):
    me = session.party
    one = receivers[0] if len(receivers) == 1 else None
    if isinstance(v, Pub):
        if me not in receivers:
            return None
        return np.broadcast_to(np.asarray(v.v), (g,))[idx]
    if isinstance(v, Sh):
        if known_both:
            sel = idx if idx is not None else np.nonzero(kv)[0]
            return session.reveal(v.s[sel] if len(sel) else v.s[0:0], to=one)
        masked = v.s * _keep_operand(session, keep, g).reshape(g)
        got = session.reveal(masked, to=one)
        return None if got is None else np.asarray(got)[idx]
    # owned
    p = v.party
    if receivers == [p]:
        return np.asarray(v.v)[idx] if me == p else None
    if known_both or (isinstance(keep, Own) and keep.party == p):
        payload = None
        if me == p:
            sel = np.nonzero(np.asarray(keep.v, dtype=bool))[0] if isinstance(keep, Own) else idx
            payload = np.asarray(v.v)[sel].tolist()
        got = _send_owned(session, p, payload, receivers, "sql.owned")
        if me not in receivers:
            return None
        return np.asarray(got if got is not None else [], dtype=object)
    # the owner does not know keep, the other party is the only receiver: masked words
    words = to_words(list(np.asarray(v.v, dtype=object)), v.kind) if me == p else None
    if words is not None and pad_words and v.kind == "str" and words.shape[1] < padded_width(words.shape[1]):
        words = np.pad(words, ((0, 0), (0, padded_width(words.shape[1]) - words.shape[1])))
    width = _send_owned(session, p, None if words is None else int(words.shape[1]), receivers, "sql.width")
    if me == p:
        width = int(words.shape[1])
    if not isinstance(width, int) or width < 1 or width > 1 << 16:
        raise ProtocolError("malformed key width")
    W = trivial(session, p, words if words is not None else np.zeros((g, width), np.int64), 0)
    masked = W * _keep_operand(session, keep, g)
    got = session.reveal(masked, to=one)
    if got is None:
        return None
    return np.asarray(from_words(np.asarray(got)[idx], v.kind), dtype=object)
