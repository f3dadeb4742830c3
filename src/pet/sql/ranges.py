"""Range analysis of a join plan (issue 21): magnitude classes of the columns entering MPC,
their exchange, declared bounds, the pre-check that refuses a query before any MPC
work, and the presentation of revealed numbers (rounded to the precision carried,
integers as integers, exact decimals).

What crosses between the parties: in the existing ``sql.rows`` round (no extra round),
each party sends, for each of *its* columns the plan computes on in MPC and for which no
bound was declared, the class ``k = ceil(log2(max |v| over the joined rows))`` (an
integer, or None for an all-zero column) -- nothing else. Declared bounds
(``bounds={"table.column": (lo, hi)}``, identical at both parties) cost no message; the
owner checks its rows lie within them (a violation stops the query like any local
failure: the peer learns one bit).
"""

from __future__ import annotations

import math

import numpy as np

from pet.errors import InputError, ProtocolError
from pet.sql import numbers as N

__all__ = ["mpc_columns", "own_classes", "merge_classes", "column_nums", "precheck", "present",
           "agg_text", "out_text", "ir_text", "check_declared", "normalize_bounds"]


# -- naming (error messages name the SQL expression) ------------------------------------------

def ir_text(plan, ir) -> str:
    """SQL-like text of an IR node (columns as their pushed-down SQL)."""
    if ir is None:
        return ""
    tag = ir[0]
    if tag == "col":
        return plan.columns[ir[1]].sql
    if tag == "lit":
        return repr(ir[1])
    if tag == "key":
        return plan.columns[plan.group_keys[ir[1]]].sql
    if tag == "agg":
        return agg_text(plan, ir[1])
    op, args = ir[1], ir[2]
    sym = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mulinv": "/", "lt": "<", "le": "<=", "gt": ">",
           "ge": ">=", "eq": "=", "ne": "<>", "and": "AND", "or": "OR"}
    if op in sym and len(args) == 2:
        if op == "mulinv":
            d = plan.columns[args[1][1]].sql if args[1][0] == "col" else ir_text(plan, args[1])
            d = d.replace("1.0 / ", "", 1)
            return f"({ir_text(plan, args[0])} / {d})"
        return f"({ir_text(plan, args[0])} {sym[op]} {ir_text(plan, args[1])})"
    if op == "case":
        return "CASE ... END"
    return f"{op.upper()}({', '.join(ir_text(plan, a) for a in args)})"


def agg_text(plan, j) -> str:
    if j < 0:
        return "COUNT(*)"
    a = plan.aggs[j]
    return f"{a.func.upper()}({ir_text(plan, a.arg) if a.arg is not None else '*'})"


def out_text(plan, i) -> str:
    return f"output column {plan.out_names[i]!r}"


# -- which columns, and their classes ---------------------------------------------------------

def _cols(ir, out):
    if ir is None:
        return out
    if ir[0] == "col":
        out.add(ir[1])
    elif ir[0] == "op":
        for a in ir[2]:
            _cols(a, out)
    return out


def _keys(plan, ir, out, inside=False):
    if ir is None:
        return out
    if ir[0] == "key" and inside:
        out.add(plan.group_keys[ir[1]])
    elif ir[0] == "op":
        for a in ir[2]:
            _keys(plan, a, out, True)
    return out


def mpc_columns(plan) -> list:
    """Names of the numeric columns the plan may compute on across parties (sorted)."""
    used = set()
    _cols(plan.mask, used)
    for a in plan.aggs:
        _cols(a.arg, used)
    if plan.row_level:
        for o in plan.outputs:
            if o[0] == "op":
                _cols(o, used)
    else:
        for o in plan.outputs:
            _keys(plan, o, used)
        _keys(plan, plan.having, used)
    return sorted(c for c in used if plan.columns[c].kind in ("int", "float", "bool"))


def normalize_bounds(bounds) -> dict:
    """``{"table.column": (lo, hi)}`` as ``{"table.column": [lo, hi]}`` (lower case keys)."""
    if bounds is None:
        return {}
    if not isinstance(bounds, dict):
        raise InputError("bounds must be a dict {'table.column': (lo, hi)}")
    out = {}
    for key, val in bounds.items():
        if not isinstance(key, str) or key.count(".") != 1:
            raise InputError(f"bounds key {key!r} must be 'table.column'")
        try:
            lo, hi = (float(v) for v in val)
        except (TypeError, ValueError):
            raise InputError(f"bounds[{key!r}] must be a pair (lo, hi) of numbers") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise InputError(f"bounds[{key!r}] must be finite with lo <= hi")
        out[key.lower()] = [lo, hi]
    return out


def _declared(plan, name, bounds):
    """The declared (lo, hi) of plan column ``name`` (a bare column of a base table)."""
    if not bounds:
        return None
    text = plan.columns[name].sql.replace('"', "").lower()
    if text.count(".") != 1:
        return None
    alias, col = text.split(".")
    table = (getattr(plan, "alias_tables", {}) or {}).get(alias)
    if table is None:
        return None
    return bounds.get(f"{table}.{col}")


def _class_of_bound(lo_hi, dec):
    m = max(abs(lo_hi[0]), abs(lo_hi[1]))
    return N.class_of(np.array([m * (10.0 ** dec if dec else 1.0)]))


def check_declared(plan, df, party, bounds) -> None:
    """The owner's rows lie within its declared bounds (else InputError, locally)."""
    for name, col in plan.columns.items():
        if col.party != party:
            continue
        b = _declared(plan, name, bounds)
        if b is None or name not in df:
            continue
        v = df[name].to_numpy(dtype=np.float64)
        if getattr(col, "dec", None):
            v = v / 10.0 ** col.dec
        if v.size and (np.nanmin(v) < b[0] or np.nanmax(v) > b[1]):
            raise InputError(f"values of {col.sql} (party {party}) lie outside the declared bounds {b}")


def own_classes(plan, rows, me, needed, bounds) -> dict:
    """This party's classes of its needed, undeclared columns over the joined rows."""
    out = {}
    for name in needed:
        col = plan.columns[name]
        if col.party != me or _declared(plan, name, bounds) is not None:
            continue
        out[name] = N.class_of(rows[name].to_numpy(dtype=np.float64)) if len(rows) else None
    return out


def merge_classes(plan, needed, me, mine, theirs, bounds) -> dict:
    """Classes of every needed column: this party's, the peer's (validated), declared."""
    expect = sorted(n for n in needed if plan.columns[n].party != me and _declared(plan, n, bounds) is None)
    if not isinstance(theirs, dict) or sorted(theirs) != expect:
        raise ProtocolError("malformed magnitude classes from the peer")
    out = dict(mine)
    for name, k in theirs.items():
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or abs(k) > N.MAX_CLASS):
            raise ProtocolError("malformed magnitude class from the peer")
        out[name] = k
    for name in needed:
        b = _declared(plan, name, bounds)
        if b is not None:
            out[name] = _class_of_bound(b, getattr(plan.columns[name], "dec", None))
    return out


def column_nums(plan, classes) -> dict:
    """Planned representation of each needed column (PrecisionError if none holds it)."""
    out = {}
    for name, k in classes.items():
        col = plan.columns[name]
        out[name] = N.leaf(k, col.kind, col.sql, getattr(col, "dec", None))
    return out


# -- the pre-check ----------------------------------------------------------------------------

def _count_kind(plan) -> str:
    owners = {plan.columns[k].party for k in plan.group_keys}
    if plan.mask is not None or len(owners) > 1:
        return "sh"
    return "pub" if not owners else "own"


def precheck(plan, col_nums, n) -> list:
    """Propagate the classes through the whole plan without any MPC work; refuse
    (PrecisionError naming the expression and its bound) what the 64-bit ring cannot hold
    or cannot hold precisely enough. Returns the planned Num of every aggregate."""
    from pet.sql.values import Sh, evaluate

    def leaf(ir):
        c = plan.columns[ir[1]]
        return Sh(None, c.kind, col_nums.get(ir[1]))

    if plan.mask is not None:
        evaluate(None, plan.mask, leaf, what=ir_text(plan, plan.mask))
    if plan.row_level:
        for i, o in enumerate(plan.outputs):
            if o[0] == "op":
                v = evaluate(None, o, leaf, what=out_text(plan, i))
                if v.num is not None:
                    N.check(v.num, f"{out_text(plan, i)} = {ir_text(plan, o)}")
        return []
    agg_nums = []
    rows = []
    for j, a in enumerate(plan.aggs):
        what = agg_text(plan, j)
        if a.func == "count" or a.arg is None:
            agg_nums.append(N.count_of(n))
            rows.append(None)
            continue
        row = evaluate(None, a.arg, leaf, what=what).num
        rows.append(row)
        if row is None:
            agg_nums.append(None)
            continue
        if a.func == "sum":
            agg_nums.append(N.check(N.sum_of(row, n, what)[0], what))
        elif a.func == "avg":
            total = N.sum_of(row, n, what)[0]
            agg_nums.append(N.check(N.avg_of(row, total, _count_kind(plan), 16, what, n), what))
        else:
            agg_nums.append(N.extreme_of(row, what))
    ext = [agg_nums[j] for j, a in enumerate(plan.aggs) if a.func in ("min", "max") and agg_nums[j] is not None]
    if ext:
        f, _ = N.extremes_rep(ext)
        if f < 0:
            raise N._refuse("MIN/MAX", max(x.k for x in ext), "exceeds the 64-bit ring")
        for j, a in enumerate(plan.aggs):
            if a.func in ("min", "max") and agg_nums[j] is not None:
                x = agg_nums[j]
                t = N._trunc_to(x, f)
                what = agg_text(plan, j)
                agg_nums[j] = N.check(N.Num(x.k, t.frac if x.dec is None else 0, t.err if x.dec is None else 0.0,
                                            x.dec, x.approx), what)
    key_nums = {}

    def gleaf(ir):
        if ir[0] == "agg":
            if ir[1] < 0:
                return Sh(None, "int", N.count_of(n))
            a = plan.aggs[ir[1]]
            kind = "int" if a.func == "count" else "float" if a.func == "avg" else \
                (rows[ir[1]] is not None and "float") or "float"
            return Sh(None, kind, agg_nums[ir[1]])
        name = plan.group_keys[ir[1]]
        c = plan.columns[name]
        return Sh(None, c.kind, col_nums.get(name, key_nums.get(name)))

    if plan.having is not None:
        evaluate(None, plan.having, gleaf, what="HAVING")
    for i, o in enumerate(plan.outputs):
        v = evaluate(None, o, gleaf, what=f"{out_text(plan, i)} = {ir_text(plan, o)}")
        if v.num is not None and o[0] == "op":
            N.check(v.num, f"{out_text(plan, i)} = {ir_text(plan, o)}")
    return agg_nums


# -- presentation -----------------------------------------------------------------------------

def present(plan, outs, cols):
    """Revealed columns as the receiver returns them: an exact DECIMAL as the nearest
    double to its exact value, a shared float rounded to the decimals its error bound
    carries (no 4328.489990234375 for 4328.49)."""
    if cols is None:
        return None
    out = []
    for v, col in zip(outs, cols):
        num = getattr(v, "num", None)
        if num is None or col is None:
            out.append(col)
            continue
        arr = np.asarray(col, dtype=object)
        if num.dec is not None:
            scale = 10 ** num.dec
            out.append(np.array([None if x is None else _dec_value(x, scale, v) for x in arr.tolist()],
                                dtype=object))
            continue
        from pet.sql.values import Sh
        d = N.decimals_for(num)
        if isinstance(v, Sh) and d is not None and v.kind == "float":
            out.append(np.array([None if x is None else round(float(x), d) for x in arr.tolist()], dtype=object))
            continue
        out.append(col)
    return out


def _dec_value(x, scale, v):
    from pet.sql.values import Sh
    if isinstance(v, Sh) or isinstance(x, (int, np.integer)) or float(x) == round(float(x)):
        return int(round(float(x))) / scale if abs(float(x)) < 2 ** 53 else int(x) / scale
    return float(x) / scale
