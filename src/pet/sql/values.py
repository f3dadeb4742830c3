"""Values of a cross-party query and the evaluation of plan expressions (IR) on them.

A value is one of

- :class:`Pub` -- public (a literal, or a size both parties know);
- :class:`Own` -- plaintext held by one party (``v`` is None at the other party): a
  pushed-down column, a group key, an aggregate its owner could compute alone;
- :class:`Sh` -- secret-shared (:class:`pet.mpc.Shared`).

Operations stay as cheap as possible: Pub/Own operands of one owner are computed locally
in numpy (no message); as soon as two parties' values meet, the owned operands are
secret-shared (``session.share``: the peer receives a uniformly random array) and the
operation runs in MPC: ``+ -`` locally on shares, ``*`` by a Beaver product, comparisons
by the MSB of a difference, ``/`` by :func:`pet.mpc.divide`, AND/OR/NOT and CASE WHEN as
arithmetic on 0/1 values. Both parties walk the same IR in the same order, so the MPC
operations match. Neither party learns anything from evaluating an expression that
involves the other's values: every opened MPC value is masked.

Kinds follow DuckDB: ``int`` (exact, fixed point with 0 fractional bits), ``float``
(fixed point, ``session.frac_bits``), ``bool`` (0/1), ``str`` (never shared).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pet.sql.errors import SqlNotSupported

__all__ = ["Pub", "Own", "Sh", "to_shared", "trivial", "evaluate", "logical_and", "combine_kind"]


@dataclass
class Pub:
    v: object
    kind: str


@dataclass
class Own:
    party: int
    v: object  # numpy array at the owner, None at the other party
    kind: str


@dataclass
class Sh:
    s: object  # pet.mpc.Shared
    kind: str


def combine_kind(a: str, b: str, op: str) -> str:
    if op in ("lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not"):
        return "bool"
    if op in ("div", "mulinv") or "float" in (a, b):
        return "float"
    return "int"


def _np(kind, arr):
    arr = np.asarray(arr)
    if kind == "float":
        return arr.astype(np.float64)
    if kind == "bool":
        return arr.astype(bool)
    if kind == "int" and arr.dtype.kind in "biu":
        return arr.astype(np.int64)
    return arr


def to_shared(session, x, shape=None):
    """``x`` as a :class:`pet.mpc.Shared` (owned values are shared by their owner)."""
    import pet.mpc as mpc

    if isinstance(x, Sh):
        return x.s
    if isinstance(x, Pub):
        if x.kind == "str":
            raise SqlNotSupported("a string value in a computation across parties")
        arr = np.asarray(x.v, dtype=np.float64 if x.kind == "float" else np.int64)
        if shape is not None:
            arr = np.broadcast_to(arr, shape)
        return mpc.constant(session, arr, session.frac_bits if x.kind == "float" else 0)
    if x.kind not in ("int", "float", "bool"):
        raise SqlNotSupported(f"a {x.kind} value in a computation across parties")
    if session.party == x.party:
        arr = _np(x.kind, x.v)
        if x.kind == "bool":
            arr = arr.astype(np.int64)
        return session.share(arr, owner=x.party)
    return session.share(None, owner=x.party)


def trivial(session, party: int, arr, frac: int):
    """A value known to ``party`` as a Shared without any message: the owner's share is
    the encoded value, the other's is zero. Only for operands of Beaver products (whose
    openings are masked and whose outputs are fresh random shares) -- never revealed or
    compared directly."""
    from pet.mpc import Shared, ring

    if session.party == party:
        return Shared(session, ring.encode(np.asarray(arr), frac), frac)
    return Shared(session, np.zeros(np.shape(arr) if arr is not None else (), dtype=np.uint64), frac)


def div_public(x, d):
    """Shared ``x`` divided by public nonzero ``d`` (scalar or array) to ~24 significant
    bits: ``1/d = M * 2^-k`` with an integer ``M`` of 24 bits split in two 12-bit limbs,
    two local integer products and two exact truncations (no rounds besides the
    truncations; ``|x| < 2^(46 - f)`` at ``f`` fractional bits)."""
    session = x.session
    f = x.frac if x.frac else session.frac_bits
    if x.frac == 0:
        x = x.rescale(f)
    inv = 1.0 / np.asarray(d, dtype=np.float64)
    top = float(np.max(np.abs(inv)))
    k = 23 - int(np.floor(np.log2(top)))
    if k <= 12:  # |1/d| >= 2^11: a plain product is already precise
        return x * inv
    M = np.rint(inv * 2.0 ** k).astype(np.int64)
    hi = M >> 12
    lo = M - (hi << 12)
    from pet.mpc import Shared
    from pet.mpc.ring import to_ring

    a = Shared(session, x.share * to_ring(hi), f + k - 12).rescale(f)
    b = Shared(session, x.share * to_ring(lo), f + k).rescale(f)
    return a + b


def mul_fine(session, x, owner, inv):
    """Shared ``x`` times ``inv`` known to party ``owner`` (e.g. a reciprocal it computed),
    keeping ~33 fractional bits of ``inv``: ``inv = hi + lo * 2^-f`` with both limbs
    shared at ``f`` bits; ``x*hi + (x*lo) * 2^-f`` (two Beaver products, one more exact
    truncation)."""
    from pet.mpc import Shared

    f = session.frac_bits
    if x.frac == 0:
        x = x.rescale(f)
    hi = lo = None
    if session.party == owner:
        arr = np.asarray(inv, dtype=np.float64)
        hi = np.rint(arr * 2.0 ** f) / 2.0 ** f
        lo = (arr - hi) * 2.0 ** f
    H = to_shared(session, Own(owner, hi, "float"))
    L = to_shared(session, Own(owner, lo, "float"))
    xh = x * H
    xl = x * L
    return xh + Shared(session, xl.share, xl.frac + f).rescale(xl.frac)


def _local(op, a, b=None):
    if op == "mulinv":
        return a * b
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(a, dtype=np.float64) / np.asarray(b, dtype=np.float64)
    if op == "lt":
        return a < b
    if op == "le":
        return a <= b
    if op == "gt":
        return a > b
    if op == "ge":
        return a >= b
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if op == "and":
        return np.logical_and(a, b)
    if op == "or":
        return np.logical_or(a, b)
    raise SqlNotSupported(f"operator {op}")


def _sh_binary(session, op, x, y, shape):
    import pet.mpc as mpc

    def S(v):
        return to_shared(session, v, shape)

    if op in ("add", "sub", "mul"):
        if op == "mul" and isinstance(y, Pub) and np.asarray(y.v).dtype.kind == "f" and not isinstance(x, Pub):
            v = float(np.asarray(y.v))
            if v != 0 and v != np.rint(v):  # a non-integer constant: keep its precision
                return div_public(S(x), 1.0 / v)
        if isinstance(y, Pub) and y.kind != "str" and not isinstance(x, Pub):
            xs, yv = S(x), np.asarray(y.v)
            return xs + yv if op == "add" else xs - yv if op == "sub" else xs * yv
        if isinstance(x, Pub) and x.kind != "str" and not isinstance(y, Pub):
            ys, xv = S(y), np.asarray(x.v)
            return ys + xv if op == "add" else (-ys) + xv if op == "sub" else ys * xv
        xs, ys = S(x), S(y)
        return xs + ys if op == "add" else xs - ys if op == "sub" else xs * ys
    if op == "mulinv":  # y is a reciprocal its owner computed
        if isinstance(y, Own):
            return mul_fine(session, S(x), y.party, y.v)
        return S(x) * S(y)
    if op == "div":
        if isinstance(y, Pub):
            return div_public(S(x), y.v)
        if isinstance(y, Own):
            # the divisor's owner inverts it in plaintext; a fine product in MPC
            inv = None if y.v is None else _local("div", 1.0, y.v)
            return mul_fine(session, S(x), y.party, inv)
        return mpc.divide(S(x), S(y))
    if op in ("lt", "le", "gt", "ge", "eq", "ne"):
        xs = S(x)
        yv = np.asarray(y.v) if isinstance(y, Pub) else S(y)
        if op == "lt":
            return xs < yv
        if op == "le":
            return xs <= yv
        if op == "gt":
            return xs > yv
        if op == "ge":
            return xs >= yv
        eq = xs == yv
        return eq if op == "eq" else 1 - eq
    if op == "and":
        return S(x) * S(y)
    if op == "or":
        xs, ys = S(x), S(y)
        return xs + ys - xs * ys
    raise SqlNotSupported(f"operator {op}")


def binary(session, op, x, y, shape=None):
    """``x op y`` on values (see the module docstring)."""
    kind = combine_kind(x.kind, y.kind, op)
    if (x.kind == "str" or y.kind == "str") and op not in ("eq", "ne", "lt", "le", "gt", "ge"):
        raise SqlNotSupported(f"operator {op} on strings across parties")
    if isinstance(x, Pub) and isinstance(y, Pub):
        return Pub(_local(op, x.v, y.v), kind)
    owners = {v.party for v in (x, y) if isinstance(v, Own)}
    if not any(isinstance(v, Sh) for v in (x, y)) and len(owners) == 1:
        p = owners.pop()
        if session.party != p:
            return Own(p, None, kind)
        return Own(p, _local(op, _np(x.kind, x.v), _np(y.kind, y.v)), kind)
    if "str" in (x.kind, y.kind):
        raise SqlNotSupported("comparing strings of both parties")
    return Sh(_sh_binary(session, op, x, y, shape), kind)


def logical_and(session, x, y, shape=None):
    return binary(session, "and", x, y, shape)


def unary(session, op, x, shape=None):
    if op == "neg":
        if isinstance(x, Sh):
            return Sh(-x.s, x.kind)
        if isinstance(x, Own) and x.v is None:
            return x
        return type(x)(*((x.party,) if isinstance(x, Own) else ()), -_np(x.kind, x.v), x.kind)
    if op == "not":
        if isinstance(x, Sh):
            return Sh(1 - x.s, "bool")
        if isinstance(x, Own) and x.v is None:
            return Own(x.party, None, "bool")
        val = np.logical_not(_np("bool", x.v))
        return Own(x.party, val, "bool") if isinstance(x, Own) else Pub(val, "bool")
    if op == "tofloat":
        if isinstance(x, Sh):
            return Sh(x.s, "float")
        return type(x)(*((x.party,) if isinstance(x, Own) else ()),
                       None if x.v is None else _np("float", x.v), "float")
    if op == "abs":
        if isinstance(x, Sh):
            neg = x.s < 0
            return Sh(x.s - 2 * (neg * x.s), x.kind)
        if isinstance(x, Own) and x.v is None:
            return x
        val = np.abs(_np(x.kind, x.v))
        return Own(x.party, val, x.kind) if isinstance(x, Own) else Pub(val, x.kind)
    raise SqlNotSupported(f"operator {op}")


def case(session, args, shape=None):
    """CASE WHEN c1 THEN v1 [WHEN c2 THEN v2 ...] ELSE d END (args already evaluated)."""
    import pet.mpc as mpc

    result = args[-1]
    pairs = [(args[i], args[i + 1]) for i in range(0, len(args) - 1, 2)]
    for cond, val in reversed(pairs):
        kind = "float" if "float" in (val.kind, result.kind) else val.kind
        vals = [cond, val, result]
        owners = {v.party for v in vals if isinstance(v, Own)}
        if not any(isinstance(v, Sh) for v in vals) and len(owners) <= 1:
            if not owners:
                result = Pub(np.where(_np("bool", cond.v), val.v, result.v), kind)
                continue
            p = owners.pop()
            if session.party != p:
                result = Own(p, None, kind)
            else:
                result = Own(p, np.where(_np("bool", cond.v), _np(kind, val.v), _np(kind, result.v)), kind)
            continue
        if "str" in (val.kind, result.kind) or val.kind == "other" or result.kind == "other":
            raise SqlNotSupported("CASE choosing strings by a condition over both parties' values")
        c = to_shared(session, cond, shape)
        a = val.v if isinstance(val, Pub) else to_shared(session, val, shape)
        b = result.v if isinstance(result, Pub) else to_shared(session, result, shape)
        if isinstance(a, np.ndarray) or np.isscalar(a):
            a = np.asarray(a, dtype=np.float64 if kind == "float" else np.int64)
        if isinstance(b, np.ndarray) or np.isscalar(b):
            b = np.asarray(b, dtype=np.float64 if kind == "float" else np.int64)
        result = Sh(mpc.where(c, a, b), kind)
    return result


def evaluate(session, ir, leaf, shape=None):
    """Evaluate IR ``ir``; ``leaf(node)`` resolves ``col``/``key``/``agg`` nodes to values."""
    tag = ir[0]
    if tag == "lit":
        return Pub(ir[1], ir[2])
    if tag in ("col", "key", "agg"):
        return leaf(ir)
    op, args = ir[1], ir[2]
    vals = [evaluate(session, a, leaf, shape) for a in args]
    if op in ("neg", "not", "tofloat", "abs"):
        return unary(session, op, vals[0], shape)
    if op == "case":
        return case(session, vals, shape)
    return binary(session, op, vals[0], vals[1], shape)
