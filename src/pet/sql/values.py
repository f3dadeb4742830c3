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
    num: object = None  # pet.sql.numbers.Num: bound, representation, error (None: legacy)


@dataclass
class Own:
    party: int
    v: object  # numpy array at the owner, None at the other party
    kind: str
    num: object = None


@dataclass
class Sh:
    s: object  # pet.mpc.Shared
    kind: str
    num: object = None


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
    from pet.mpc import Shared

    shape = np.shape(arr) if arr is not None else ()
    return Shared.known_to(session, np.asarray(arr) if session.party == party else None, party, frac_bits=frac,
                           shape=shape)


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

    a = x.scaled(hi, shift=k - 12).rescale(f)
    b = x.scaled(lo, shift=k).rescale(f)
    return a + b


def mul_fine(session, x, owner, inv, limbs=None):
    """Shared ``x`` times ``inv`` known to party ``owner`` (e.g. a reciprocal it computed),
    keeping ``f1 + f2`` fractional bits of ``inv``: ``inv = hi + lo * 2^-f1`` with ``hi``
    shared at ``f1`` bits and ``lo`` (``|lo| <= 1/2``) at ``f2`` bits; ``x*hi + (x*lo) *
    2^-f1`` (two Beaver products, one more exact truncation). ``limbs = (prep, f1, f2)``
    (planned by pet.sql.numbers.avg_of for AVG under an owned count: ``x`` is brought to
    ``prep`` bits first) or None: ``f1 = f2`` = the session's ``f``. The limb sizes change
    no round and no byte; the error of ``inv`` is ``2^-(f1 + f2 + 1)``."""

    f = session.frac_bits
    if limbs is not None:
        prep, f1, f2 = limbs
        if x.frac != prep:
            x = x.rescale(prep)
    else:
        f1 = f2 = f
        if x.frac == 0:
            x = x.rescale(f)
    hi = lo = None
    if session.party == owner:
        arr = np.asarray(inv, dtype=np.float64)
        hi = np.rint(arr * 2.0 ** f1) / 2.0 ** f1
        lo = (arr - hi) * 2.0 ** f1
    if limbs is None:
        H = to_shared(session, Own(owner, hi, "float"))
        L = to_shared(session, Own(owner, lo, "float"))
    else:
        H = session.share(hi, owner=owner, frac_bits=f1)
        L = session.share(lo, owner=owner, frac_bits=f2)
    xh = x * H
    xl = x * L
    return xh + xl.scaled(shift=f1).rescale(xh.frac)


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


def evaluate(session, ir, leaf, shape=None, *, what=None):
    """Evaluate IR ``ir``; ``leaf(node)`` resolves ``col``/``key``/``agg`` nodes to values.

    When the leaves carry :class:`pet.sql.numbers.Num` facts, every MPC operation uses the
    representation the range rules choose (:mod:`pet.sql.numbers`); with ``session=None``
    nothing is computed: only the facts are propagated (and checked), which is how the
    planner refuses a query before any MPC work."""
    tag = ir[0]
    if tag == "lit":
        from pet.sql import numbers as N
        return Pub(ir[1], ir[2], N.literal(ir[1], ir[2]) if ir[2] in ("int", "float", "bool") else None)
    if tag in ("col", "key", "agg"):
        return leaf(ir)
    op, args = ir[1], ir[2]
    vals = [evaluate(session, a, leaf, shape, what=what) for a in args]
    if all(getattr(v, "num", None) is not None for v in vals) and op != "case":
        return _eval_num(session, op, vals, shape, what or "an expression")
    if op == "case" and all(getattr(v, "num", None) is not None for v in vals):
        return _case_num(session, vals, shape, what or "an expression")
    if op in ("neg", "not", "tofloat", "abs"):
        return unary(session, op, vals[0], shape)
    if op == "case":
        return case(session, vals, shape)
    return binary(session, op, vals[0], vals[1], shape)


# -- the range-checked path (pet.sql.numbers) -------------------------------------------------

def _kind_num(kind):
    return kind if kind in ("int", "bool") else "float"


def at_frac(session, v, f, shape=None):
    """``v`` as a Shared with exactly ``f`` fractional bits (owned values are shared by
    their owner directly at ``f``; shared ones rescaled: down = one exact truncation)."""
    import pet.mpc as mpc

    if isinstance(v, Sh):
        return v.s.rescale(f) if v.s.frac != f else v.s
    if isinstance(v, Pub):
        arr = np.asarray(v.v, dtype=np.float64)
        if shape is not None:
            arr = np.broadcast_to(arr, shape)
        if v.num is not None and v.num.ring == 128:
            from pet.mpc import ring128
            return ring128.constant(session, arr, f)
        if v.num is not None and v.num.dec is not None:
            return mpc.constant(session, np.rint(arr).astype(np.int64), 0)
        return mpc.constant(session, arr if f else np.rint(arr).astype(np.int64), f)
    if session.party == v.party:
        if v.num is not None and v.num.dec is not None:
            raw = np.asarray(v.v)  # exact integers (Python ints beyond 2^53: execute._col_leaf)
            arr = raw.astype(np.int64) if raw.dtype.kind in "iuO" else \
                np.rint(raw.astype(np.float64)).astype(np.int64)
            return session.share(arr, owner=v.party, frac_bits=0)
        arr = _np(v.kind, v.v)
        arr = np.asarray(arr, dtype=np.float64 if f else None)
        if f == 0:
            arr = np.rint(np.asarray(arr, dtype=np.float64)).astype(np.int64)
        return session.share(arr, owner=v.party, frac_bits=f)
    return session.share(None, owner=v.party)


def _mul_public_sh(session, x, c, xf, fc, fo):
    """Shared ``x`` (rescaled to ``xf``) times public ``c`` encoded with ``fc`` fractional
    bits (0: integral, local), truncated to ``fo`` bits."""
    x = x.rescale(xf) if x.frac != xf else x
    enc = np.rint(np.asarray(c, dtype=np.float64) * 2.0 ** fc).astype(np.int64)
    return x.scaled(enc, shift=fc).rescale(fo)


def _mul_sh(session, xs, ys, fo):
    """Beaver product of Shared ``xs``, ``ys`` truncated to ``fo`` fractional bits (in
    the wide ring when an operand is a :class:`pet.mpc.Shared128`)."""
    from pet.mpc import mul

    if getattr(xs, "ring_bits", 64) == 128:
        return xs.mul(ys, frac=fo)
    if getattr(ys, "ring_bits", 64) == 128:
        return ys.mul(xs, frac=fo)
    return mul(xs, ys, frac=fo)


def _wide_op(op, num, xn, yn, xs, ys) -> bool:
    """Whether a rule-planned op runs in the wide ring (pet.sql.numbers: its result is
    wide, an operand is, or a comparison's difference needs it)."""
    from pet.sql import numbers as N

    if any(getattr(v, "ring_bits", 64) == 128 for v in (xs, ys)):
        return True
    if op in ("lt", "le", "gt", "ge", "eq", "ne"):
        return N.compare_ring(xn, yn)[0] == 128
    return num.ring == 128


def wide_operands(values: list) -> list:
    """Shared values as :class:`pet.mpc.Shared128` (the 64-bit ones lifted together, one
    round)."""
    from pet.mpc.ring128 import lift_many

    narrow = [i for i, v in enumerate(values) if getattr(v, "ring_bits", 64) == 64]
    out = list(values)
    for i, w in zip(narrow, lift_many([values[i] for i in narrow])):
        out[i] = w
    return out


def _plain(op, x, y, kind):
    if op == "tofloat":
        return _np("float", x.v)
    if op == "neg":
        return -_np(x.kind, x.v)
    if op == "abs":
        return np.abs(_np(x.kind, x.v))
    if op == "not":
        return np.logical_not(_np("bool", x.v))
    return _local(op, _np(x.kind, x.v), _np(y.kind, y.v))


def _exact_of(v):
    """Plaintext value of ``v`` as the number its representation holds (DECIMAL: the
    scaled integer)."""
    return v.v


def _eval_num(session, op, vals, shape, what):
    from pet.sql import numbers as N

    x = vals[0]
    y = vals[1] if len(vals) > 1 else None
    if op in ("neg", "not", "tofloat", "abs"):
        kind = "bool" if op == "not" else "float" if op == "tofloat" else x.kind
        num = N.Num(1, 0, 0.0) if op == "not" else N.rule(op, x.num, None, what)[0]
        if session is None:
            return Sh(None, kind, num)
        if op == "tofloat" and x.num.dec is not None and isinstance(x, Sh):
            return Sh(to_float_shared(session, x.s, x.num), "float", num)
        if isinstance(x, Sh):
            if op == "neg":
                return Sh(-x.s, kind, num)
            if op == "not":
                return Sh(1 - x.s, kind, num)
            if op == "tofloat":
                return Sh(x.s, kind, num)
            neg = x.s < 0
            return Sh(x.s - 2 * (neg * x.s), kind, num)
        if isinstance(x, Own) and x.v is None:
            return Own(x.party, None, kind, num)
        val = _plain(op, x, None, kind)
        if op == "tofloat" and x.num.dec is not None:
            val = np.asarray(x.v, dtype=np.float64) / 10.0 ** x.num.dec
        return Own(x.party, val, kind, num) if isinstance(x, Own) else Pub(val, kind, num)
    if (x.kind == "str" or y.kind == "str") and op not in ("eq", "ne", "lt", "le", "gt", "ge"):
        raise SqlNotSupported(f"operator {op} on strings across parties")
    kind = combine_kind(x.kind, y.kind, op)
    if op == "div" and isinstance(y, Pub):
        inv = 1.0 / np.asarray(y.v, dtype=np.float64)
        num, xf, fc = N.scale_public(x.num, N.class_of(inv), inv)
        res = None if session is None else ("pubmul", inv, xf, fc)
    elif op == "mul" and (isinstance(y, Pub) or isinstance(x, Pub)) and not (isinstance(x, Pub) and isinstance(y, Pub)):
        if isinstance(x, Pub):
            x, y = y, x
        c = np.asarray(y.v, dtype=np.float64)
        num, xf, fc = N.scale_public(x.num, N.class_of(c), c)
        if y.num is not None and y.num.dec is not None:
            raise SqlNotSupported("a DECIMAL literal in a product across parties")
        res = None if session is None else ("pubmul", c, xf, fc)
    elif op in ("div",) and not isinstance(y, Pub):
        # a secret or owned divisor: pet.mpc.divide / an owner-computed reciprocal, in the
        # session's fixed point (f bits) -- divisor domain |d| >= 2^-10, relative error ~1e-4
        xn = N.to_float(x.num)
        k = xn.k + 10
        if xn.k + 16 > 19 + 16:
            raise N.PrecisionError(f"{what}: a division of a value up to 2^{xn.k} by a secret divisor "
                                   "exceeds the supported range |x| < 2^19 (docs/sql.md)")
        num = N.Num(k, 16, 1e-4 * 2.0 ** k + 2.0 ** -14, None)
        res = None if session is None else ("legacy",)
        num = _approx(num)
    else:
        num, fr = N.rule(op, x.num, y.num, what)
        res = None if session is None else ("rule", fr)
    if x.num.approx or y.num.approx:
        num = _approx(num)
    if session is None:
        return Sh(None, kind, num)
    if isinstance(x, Pub) and isinstance(y, Pub):
        return Pub(_local(op, x.v, y.v), kind, num)
    owners = {v.party for v in (x, y) if isinstance(v, Own)}
    if not any(isinstance(v, Sh) for v in (x, y)) and len(owners) == 1:
        p = owners.pop()
        if session.party != p:
            return Own(p, None, kind, num)
        xv, yv = x.v, y.v
        if x.num.dec is not None and (num.dec is None or op not in ("add", "sub", "mul", "mulinv")):
            xv = np.asarray(xv, dtype=np.float64) / 10.0 ** x.num.dec
        if y.num.dec is not None and (num.dec is None or op not in ("add", "sub", "mul", "mulinv")):
            yv = np.asarray(yv, dtype=np.float64) / 10.0 ** y.num.dec
        if num.dec is not None and op in ("add", "sub"):
            pass
        return Own(p, _local(op, _np(x.kind, xv), _np(y.kind, yv)), kind, num)
    if "str" in (x.kind, y.kind):
        raise SqlNotSupported("comparing strings of both parties")
    if res[0] == "pubmul":
        _, c, xf, fc = res
        xs = _float_operand(session, x, xf, shape)
        return Sh(_mul_public_sh(session, xs, c, xf, fc, num.frac), kind, num)
    if res[0] == "legacy":
        return Sh(_sh_binary(session, op, _legacy_ready(session, x, shape), _legacy_ready(session, y, shape),
                             shape), kind, num)
    fa, fb = res[1]
    xs = _operand(session, x, fa, num, y, shape)
    ys = _operand(session, y, fb, num, x, shape)
    if _wide_op(op, num, x.num, y.num, xs, ys):
        xs, ys = wide_operands([xs, ys])
    if op in ("add", "sub"):
        return Sh(xs + ys if op == "add" else xs - ys, kind, num)
    if op in ("mul", "mulinv", "and"):
        return Sh(_mul_sh(session, xs, ys, num.frac), kind, num)
    if op == "or":
        return Sh(xs + ys - _mul_sh(session, xs, ys, 0), kind, num)
    if op == "lt":
        return Sh(xs < ys, kind, num)
    if op == "le":
        return Sh(xs <= ys, kind, num)
    if op == "gt":
        return Sh(xs > ys, kind, num)
    if op == "ge":
        return Sh(xs >= ys, kind, num)
    eq = xs == ys
    return Sh(eq if op == "eq" else 1 - eq, kind, num)


def _approx(num):
    """Mark a value whose error follows a documented approximate division (exempt from
    the 1e-6 criterion; still range-checked)."""
    import dataclasses
    return dataclasses.replace(num, approx=True)


def _is_dec_aligned(v, num):
    return v.num.dec is not None and num.dec is not None


def _operand(session, v, f, num, other, shape):
    """Operand ``v`` of a rule-planned op at ``f`` fractional bits (a DECIMAL meeting a
    float is converted first; DECIMALs of different scales are aligned)."""
    if v.num.dec is not None and num.dec is None and not (num.k == 1 and num.frac == 0 and other.num.dec is not None
                                                           and other.num.dec == v.num.dec):
        return _float_operand(session, v, f, shape)
    return at_frac(session, v, f, shape)


def _float_operand(session, v, f, shape):
    from pet.sql import numbers as N

    if v.num.dec is None:
        return at_frac(session, v, f, shape)
    if isinstance(v, Own):
        val = None if v.v is None else np.asarray(v.v, dtype=np.float64) / 10.0 ** v.num.dec
        return at_frac(session, Own(v.party, val, "float", N.to_float(v.num)), f, shape)
    if isinstance(v, Pub):
        return at_frac(session, Pub(np.asarray(v.v, dtype=np.float64) / 10.0 ** v.num.dec, "float"), f, shape)
    return to_float_shared(session, v.s, v.num).rescale(f)


def to_float_shared(session, s, num):
    from pet.sql import numbers as N

    c = 10.0 ** -num.dec
    out, xf, fc = N.scale_public(N.Num(num.k, 0, 0.0, ring=num.ring), N.class_of(c), c)
    return _mul_public_sh(session, s, c, xf, fc, out.frac)


def _legacy_ready(session, v, shape):
    """An operand of the legacy division path, at the session's fixed point."""
    if v.num is not None and v.num.dec is not None:
        from pet.sql import numbers as N
        if isinstance(v, Sh):
            return Sh(to_float_shared(session, v.s, v.num), "float")
        if isinstance(v, Own):
            return Own(v.party, None if v.v is None else np.asarray(v.v, dtype=np.float64) / 10.0 ** v.num.dec,
                       "float")
        del N
    if isinstance(v, Sh) and v.s.frac not in (0, session.frac_bits):
        return Sh(v.s.rescale(session.frac_bits), v.kind)
    return Own(v.party, v.v, v.kind) if isinstance(v, Own) else Pub(v.v, v.kind) if isinstance(v, Pub) else v


def _case_num(session, vals, shape, what):
    """CASE WHEN with range-planned representations."""
    import pet.mpc as mpc
    from pet.sql import numbers as N

    result = vals[-1]
    pairs = [(vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 2)]
    for cond, val in reversed(pairs):
        kind = "float" if "float" in (val.kind, result.kind) else val.kind
        if "str" in (val.kind, result.kind):
            raise SqlNotSupported("CASE choosing strings by a condition over both parties' values")
        num, (fa, fb) = N.rule("case", val.num, result.num, what)
        if session is None:
            result = Sh(None, kind, num)
            continue
        vs = [cond, val, result]
        owners = {v.party for v in vs if isinstance(v, Own)}
        if not any(isinstance(v, Sh) for v in vs) and len(owners) <= 1:
            conv = [np.asarray(v.v, dtype=np.float64) / 10.0 ** v.num.dec if v.num.dec is not None
                    and num.dec is None and v.v is not None else v.v for v in (val, result)]
            if not owners:
                result = Pub(np.where(_np("bool", cond.v), conv[0], conv[1]), kind, num)
                continue
            p = owners.pop()
            result = Own(p, None if session.party != p else
                         np.where(_np("bool", cond.v), _np(kind, conv[0]), _np(kind, conv[1])), kind, num)
            continue
        c = at_frac(session, cond, 0, shape)
        a = _operand(session, val, fa, num, result, shape)
        b = _operand(session, result, fb, num, val, shape)
        result = Sh(mpc.where(c, a, b), kind, num)
    return result
