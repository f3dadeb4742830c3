"""Correlated randomness from the OT engine, with the dealer's field names and shapes.

:func:`generate` takes dealer-style specs (``("triple", shape)``, ``("and", shape, nb)``,
``("b2a", shape, bits)``, ``("trunc", shape, shift)``, ``("cmpmask", shape)``; see
:mod:`pet.mpc.correlated`) and returns one dict of fields per spec, exactly as
:class:`~pet.mpc.correlated.DealerClient` does, so the online protocols run unchanged (same
rounds). All specs of one call are served by ONE :meth:`OTEngine.extend` (one message
each way per chunk, plus one for the last corrections). Both parties call it with the
same specs in the same order.

================  ==============================================  ==========================
kind              how (this party's fields)                       bytes per element, both
                                                                  parties together
================  ==============================================  ==========================
``triple``        random ``a, b``; ``c = a b + `` two Gilboa      2 x (1024 + 260) = 2568
                  shares (a_0 b_1 and a_1 b_0, one per direction)
``and`` (nb)      ``a`` = own random choice bits, ``b`` = XOR of  2 x 64 x 16 = 2048 per
                  own sender's two random-OT messages (nb bits    word, whatever ``nb``
                  each), ``c = a & b ^ m0 ^ m_a`` (no corrections)
``b2a`` (P bits)  random ``rho``; ``ra_j = rho_p,j - 2 [rho_0,j    P x (16 + 63 / 8)
                  rho_1,j]``: one correlated OT per bit
``cmpmask``       random ``rb``; ``r = sum_j 2^j bit_j(rb)``: 64    1024 + 252 = 1276
                  bit products of widths 63 - j
``trunc`` (s)     random bits ``rho``; ``r = sum 2^j rho_j``,     1024 + (2016 + s (64-s))/8
                  ``rs = sum_{j>=s} 2^(j-s) rho_j``, ``rm = rho_63``  (s = 16: 1372)
================  ==============================================  ==========================

Arithmetic shares of XOR-shared bits: ``rho_j = rho_0,j + rho_1,j - 2 rho_0,j rho_1,j``;
the cross product is a :class:`~pet.mpc.ot.requests.BitProduct` (one correlated OT per
bit, the message only as wide as the bit's coefficient needs). Bit-product specs are split
in two halves, one per direction, so both parties do the same work.

What a party learns: only its own uniformly random fields and uniformly masked OT
messages; the correlations hold by construction (tests check them against Python
integers). Matrix-product kinds (``matmul``, ``reuse_*``) are not served here.
"""

from __future__ import annotations

import numpy as np

from pet.errors import InputError
from pet.mpc.ot.requests import BitProduct, GilboaProduct, RandomOT, random_words

__all__ = ["generate", "beaver_triples", "and_triples", "b2a_bits", "trunc_pairs", "cmp_masks", "plan"]


def _shape(t) -> tuple:
    return tuple(int(s) for s in t)


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _triple(party, shape):
    n = _size(shape)
    a, b = random_words(n), random_words(n)
    reqs = [GilboaProduct(n, 0, a if party == 0 else b), GilboaProduct(n, 1, b if party == 0 else a)]

    def finish(res):
        c = a * b + res[0]["share"] + res[1]["share"]
        return {"a": a.reshape(shape), "b": b.reshape(shape), "c": c.reshape(shape)}

    return reqs, finish


def _and(party, shape, nb):
    n = _size(shape)
    if not 1 <= nb <= 128:
        raise InputError(f"an AND-triple family needs 1..128 right operands, got {nb}")
    a = random_words(n)
    # request 0: party 0 sends, party 1 receives with choices a_1; request 1 the other way
    reqs = [RandomOT(64 * n, 0, nb, None if party == 0 else a), RandomOT(64 * n, 1, nb, a if party == 0 else None)]
    mine, theirs = (0, 1) if party == 0 else (1, 0)

    def finish(res):
        sent, got = res[mine], res[theirs]
        b = sent["m0"] ^ sent["m1"]
        c = (a[None, :] & b) ^ sent["m0"] ^ got["m"]
        return {"a": a.reshape(shape), "b": b.reshape((nb,) + shape), "c": c.reshape((nb,) + shape)}

    return reqs, finish


def _bit_linear(party, n, positions, L):
    """Arithmetic shares of ``sum_p L[q, p] rho_p`` for a fresh XOR-shared random word
    ``rho`` per element: returns (requests, finish) with finish -> (rho_mine, out (K, n))."""
    from pet.mpc.ot import _kernels

    positions = np.array(positions, dtype=np.int64)
    L = np.array([[int(v) % (1 << 64) for v in row] for row in L], dtype=np.uint64)
    cross = [[(-2 * int(v)) % (1 << 64) for v in row] for row in L]
    rho = random_words(n)
    half = n // 2
    reqs = [BitProduct(half, 0, positions, cross, rho[:half]), BitProduct(n - half, 1, positions, cross, rho[half:])]

    def finish(res):
        out = np.empty((L.shape[0], n), dtype=np.uint64)
        _kernels.bitprod_local(rho, positions, L, out)
        out[:, :half] += res[0]["out"]
        out[:, half:] += res[1]["out"]
        return rho, out

    return reqs, finish


def _b2a(party, shape, bits):
    bits = [int(b) for b in bits]
    n = _size(shape)
    reqs, fin = _bit_linear(party, n, bits, np.eye(len(bits), dtype=np.uint64))

    def finish(res):
        rho, out = fin(res)
        return {"rho": rho.reshape(shape), "ra": np.ascontiguousarray(out.T).reshape(shape + (len(bits),))}

    return reqs, finish


def _trunc(party, shape, shift):
    s = int(shift)
    if not 0 <= s < 64:
        raise InputError(f"trunc shift must be in 0..63, got {shift}")
    n = _size(shape)
    L = [[1 << j for j in range(64)], [(1 << (j - s)) if j >= s else 0 for j in range(64)],
         [1 if j == 63 else 0 for j in range(64)]]
    reqs, fin = _bit_linear(party, n, range(64), L)

    def finish(res):
        _, out = fin(res)
        return {"r": out[0].reshape(shape), "rs": out[1].reshape(shape), "rm": out[2].reshape(shape)}

    return reqs, finish


def _cmpmask(party, shape):
    n = _size(shape)
    reqs, fin = _bit_linear(party, n, range(64), [[1 << j for j in range(64)]])

    def finish(res):
        rho, out = fin(res)
        return {"r": out[0].reshape(shape), "rb": rho.reshape(shape)}

    return reqs, finish


def plan(spec, party: int):
    """The OT requests of one spec and the function turning their results into fields."""
    kind = spec[0]
    if kind == "triple":
        return _triple(party, _shape(spec[1]))
    if kind == "and":
        return _and(party, _shape(spec[1]), int(spec[2]))
    if kind == "b2a":
        return _b2a(party, _shape(spec[1]), spec[2])
    if kind == "trunc":
        return _trunc(party, _shape(spec[1]), spec[2])
    if kind == "cmpmask":
        return _cmpmask(party, _shape(spec[1]))
    raise InputError(f"the OT source does not produce {kind!r} correlations "
                     "(triple, and, b2a, trunc and cmpmask are supported)")


def _wire(spec) -> tuple:
    """A typed spec (:class:`~pet.mpc.correlated.Spec`) or a legacy tuple as ``(kind, *params)``."""
    to_wire = getattr(spec, "to_wire", None)
    return tuple(to_wire()) if to_wire is not None else tuple(spec)


def generate(engine, specs: list) -> list:
    """Fields for every spec, all served by one :meth:`OTEngine.extend` call."""
    plans = [plan(_wire(s), engine.party) for s in specs]
    reqs = [r for p in plans for r in p[0]]
    res = engine.extend(reqs)
    out, pos = [], 0
    for p_reqs, finish in plans:
        out.append(finish(res[pos:pos + len(p_reqs)]))
        pos += len(p_reqs)
    return out


def beaver_triples(engine, shape) -> dict:
    """Z_2^64 Beaver triple shares ``a, b, c`` (``c_0 + c_1 = (a_0 + a_1)(b_0 + b_1)``)."""
    return generate(engine, [("triple", _shape(shape))])[0]


def and_triples(engine, shape, nb: int = 1) -> dict:
    """Bit-packed AND-triple family: ``a`` (shape), ``b``, ``c`` (nb, *shape) XOR shares
    with ``c_j = a & b_j``."""
    return generate(engine, [("and", _shape(shape), int(nb))])[0]


def b2a_bits(engine, shape, bits=range(64)) -> dict:
    """``rho`` (XOR shares, shape) and ``ra`` (shape + (len(bits),)): arithmetic shares of
    the chosen bits of ``rho``."""
    return generate(engine, [("b2a", _shape(shape), tuple(int(b) for b in bits))])[0]


def trunc_pairs(engine, shape, shift: int) -> dict:
    """``r``, ``rs = r >> shift``, ``rm = msb(r)`` (arithmetic shares) for exact truncation."""
    return generate(engine, [("trunc", _shape(shape), int(shift))])[0]


def cmp_masks(engine, shape) -> dict:
    """``r`` (arithmetic shares) and ``rb`` (XOR shares of the same bits) for comparisons."""
    return generate(engine, [("cmpmask", _shape(shape))])[0]
