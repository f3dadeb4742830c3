"""Boolean (XOR) sharing on bit-packed uint64 words: AND, A2B, B2A and MSB.

A boolean-shared word ``w`` is ``w_0 ^ w_1``; XOR, NOT (party 0 flips) and shifts are
local. Each element's 64 bits live in one uint64 word, so one word operation processes
64 bit-positions of one element at once.

* :func:`and_words` -- ``x & y_j`` for several ``y_j`` sharing the left operand ``x``
  (1 round; each party sends ``(1 + nb)`` words per element; one AND triple per word).
* :func:`a2b` -- arithmetic share ``x = x_0 + x_1`` to boolean shares of its bits with a
  Kogge-Stone parallel-prefix adder over the two parties' shares: generate
  ``g = x_0 & x_1`` (1 round), propagate ``p = x_0 ^ x_1`` (local), then 6 levels
  ``G ^= P & (G << s)``, ``P &= P << s`` for ``s = 1, 2, ..., 32`` (1 round each);
  ``sum = p ^ (G << 1)``. 7 rounds, 19 words (152 bytes) sent per element per party.
* :func:`b2a_bits` -- selected bits of boolean-shared words to arithmetic 0/1 shares:
  the dealer gives a random word ``rho`` (XOR-shared) and arithmetic shares of its bits;
  open ``e = w ^ rho`` (1 round, 8 bytes); ``bit = e + rho_j - 2 e rho_j``.
* :func:`msb` -- dealer-masked opening and a compacting comparison tree (8 rounds, about
  33 bytes per element per party, see its docstring); with the OT source, 1-out-of-16 OT
  leaves on 4-bit digits and a 4-level tree instead (7 rounds, about 42 bytes online, half
  the OTs of the masked form; :func:`_msb_leaves`). ``msb(..., bits=l)``: the narrow
  comparison of values the caller guarantees to lie in ``[-2^(l-1), 2^(l-1))``, on lanes of
  ``L`` = 8, 16 or 32 bits packed ``64 / L`` per word (``2 + log2 L`` rounds, about
  ``L / 2`` bytes per element; :func:`_msb_narrow`, :func:`_msb_narrow_leaves`;
  :func:`check_msb_bound` refuses a declared bound that does not fit).

Every opened value is masked by fresh dealer randomness, so it is uniform: a party learns
nothing about the other's shares.
"""

from __future__ import annotations

import numpy as np

from pet.errors import InputError, PrecisionError
from pet.mpc.correlated import B2A, AndTriple, CmpMask

__all__ = ["and_words", "a2b", "b2a_bits", "b2a_lanes", "msb", "msb_specs", "msb_lane", "msb_width",
           "check_msb_bound", "LANES", "pack_lanes", "prefix_or_down"]

_U = np.uint64


def and_words(session, x: np.ndarray, ys: list, mat: dict | None = None) -> list:
    """Boolean shares of ``x & y`` for each ``y`` in ``ys`` (all arrays of one shape).

    One AND triple family ``(a, b_j, c_j = a & b_j)``; open ``d = x ^ a`` and
    ``e_j = y_j ^ b_j``; ``x & y_j = d & e_j ^ d & b_j ^ e_j & a ^ c_j`` (party 0 adds
    ``d & e_j``). 1 round, ``(1 + len(ys))`` words sent per element.
    """
    from pet.mpc import _kernels

    nb = len(ys)
    t = mat if mat is not None else session.correlated([AndTriple(x.shape, nb)])[0]
    shape = x.shape
    n = x.size
    mine = np.empty((nb + 1, n), dtype=np.uint64)
    ystack = np.empty((nb, n), dtype=np.uint64)
    for j, y in enumerate(ys):
        ystack[j] = y.reshape(-1)
    _kernels.and_prep(np.ascontiguousarray(x).reshape(-1), ystack, t["a"].reshape(-1), t["b"].reshape(nb, -1), mine)
    other = session.exchange(f"and{shape}x{nb}", mine)
    out = np.empty((nb, n), dtype=np.uint64)
    _kernels.and_finish(mine, np.asarray(other, dtype=np.uint64).reshape(nb + 1, n), t["a"].reshape(-1),
                        t["b"].reshape(nb, -1), t["c"].reshape(nb, -1), session.party == 0, out)
    return [out[j].reshape(shape) for j in range(nb)]


def _lane_keep(lane_bits: int, s: int, up: bool) -> np.uint64:
    """Mask of the bits that stay inside their ``lane_bits``-wide lane after a shift by
    ``s``: ``up`` (``<< s``) drops each lane's lowest ``s`` positions, down (``>> s``) its
    highest ``s``."""
    lane = ((1 << lane_bits) - 1) ^ ((1 << s) - 1) if up else ((1 << (lane_bits - s)) - 1)
    word = 0
    for k in range(64 // lane_bits):
        word |= lane << (k * lane_bits)
    return _U(word)


def _check_lanes(lane_bits: int) -> None:
    if lane_bits not in (8, 16, 32, 64):
        raise InputError(f"lane_bits must be 8, 16, 32 or 64, got {lane_bits!r}")


def a2b(session, x: np.ndarray, lane_bits: int = 64) -> np.ndarray:
    """Boolean shares of the bits of the arithmetic-shared ``x`` (see module docstring).

    ``lane_bits < 64``: each word holds ``64 // lane_bits`` independent lanes (e.g. from
    :func:`pack_lanes`) and the result is the bits of ``x_0 + x_1 mod 2^lane_bits`` per
    lane (no carry crosses a lane): ``log2(lane_bits) + 1`` rounds instead of 7, the same
    words per packed word."""
    _check_lanes(lane_bits)
    zero = np.zeros_like(x)
    left, right = (x, zero) if session.party == 0 else (zero, x)
    (g,) = and_words(session, left, [right])
    p0 = x.copy()  # p = x_0 ^ x_1: each party's share of it is its own arithmetic share
    G, P = g, p0
    s = 1
    while s < lane_bits:
        sh, keep = _U(s), _lane_keep(lane_bits, s, True)
        if 2 * s < lane_bits:
            t_g, t_p = and_words(session, P, [(G << sh) & keep, (P << sh) & keep])
            G = G ^ t_g
            P = t_p
        else:
            (t_g,) = and_words(session, P, [(G << sh) & keep])
            G = G ^ t_g
        s *= 2
    return p0 ^ ((G << _U(1)) & _lane_keep(lane_bits, 1, True))


def pack_lanes(x: np.ndarray, lane_bits: int) -> np.ndarray:
    """Local: the low ``lane_bits`` bits of each share of ``x`` (flattened, ``n``
    elements) packed lane-major into ``ceil(n / P)`` words, ``P = 64 // lane_bits``:
    element ``l * words + j`` in lane ``l`` of word ``j``. Reduction mod ``2^lane_bits``
    is compatible with the sharing (``2^lane_bits`` divides ``2^64``)."""
    _check_lanes(lane_bits)
    flat = np.ascontiguousarray(x, dtype=np.uint64).reshape(-1)
    P = 64 // lane_bits
    words = max(1, -(-flat.size // P))
    pad = np.zeros(P * words, dtype=np.uint64)
    pad[:flat.size] = flat
    if lane_bits == 64:
        return pad
    pad &= _U((1 << lane_bits) - 1)
    lanes = pad.reshape(P, words)
    out = lanes[0].copy()
    for k in range(1, P):
        out |= lanes[k] << _U(k * lane_bits)
    return out


def b2a_lanes(session, w: np.ndarray, lane_bits: int, n: int, positions, weights) -> np.ndarray:
    """:func:`b2a_bits` with ``weights`` on words packed by :func:`pack_lanes`: the ``K``
    weighted sums of bit ``positions`` (within a lane) for each of the ``n`` elements,
    shape ``(K, n)`` (1 round, 8 bytes per packed word)."""
    P = 64 // lane_bits
    positions = [int(p) for p in positions]
    weights = [[int(v) for v in row] for row in weights]
    K, npos = len(weights), len(positions)
    bits = [k * lane_bits + p for k in range(P) for p in positions]
    big = [[0] * (P * npos) for _ in range(K * P)]
    for r in range(K):
        for k in range(P):
            big[r * P + k][k * npos:(k + 1) * npos] = weights[r]
    sums = b2a_bits(session, w, bits, weights=big)  # (K * P, words)
    return sums.reshape(K, P * w.size)[:, :n]


def b2a_bits(session, w: np.ndarray, bits, mat: dict | None = None, weights=None,
             element_major: bool = False) -> np.ndarray:
    """Arithmetic 0/1 shares, shape ``(len(bits),) + w.shape``, of the chosen bit
    positions of the boolean-shared words ``w`` (1 round, 8 bytes per element).

    With ``weights`` (a ``(K, len(bits))`` integer array) return instead the ``K``
    weighted sums ``sum_j weights[k, j] * bit_j`` (shape ``(K,) + w.shape``), computed in
    one fused pass without materialising the bits. ``element_major=True`` returns the
    plain bits with shape ``w.shape + (len(bits),)`` instead.
    """
    from pet.mpc import _kernels

    bits = tuple(int(b) for b in bits)
    t = mat if mat is not None else session.correlated([B2A(w.shape, bits)])[0]
    shape = w.shape
    flat = np.ascontiguousarray(w).reshape(-1)
    mine = flat ^ t["rho"].reshape(-1)
    other = session.exchange(f"b2a{shape}", mine)
    e = mine ^ np.asarray(other, dtype=np.uint64).reshape(-1)
    nb = len(bits)
    if weights is None:
        plain = np.empty((flat.size, nb), dtype=np.uint64)
        _kernels.b2a_plain(e, t["ra"].reshape(-1, nb), np.array(bits, dtype=np.int64), session.party == 0, plain)
        if element_major:
            return plain.reshape(shape + (nb,))
        return np.ascontiguousarray(plain.T).reshape((nb,) + shape)
    weights = np.array([[int(v) % (1 << 64) for v in row] for row in weights], dtype=np.uint64)
    out = np.empty((weights.shape[0], flat.size), dtype=np.uint64)
    _kernels.b2a_weighted(e, t["ra"].reshape(-1, nb), np.array(bits, dtype=np.int64), weights,
                          session.party == 0, out)
    return out.reshape((weights.shape[0],) + shape)


#: lane widths of the narrow comparison (``bits`` is rounded up to one of them; 64 = full)
LANES = (8, 16, 32, 64)


def msb_lane(bits) -> int:
    """The lane width ``L`` the comparison of ``bits``-bit values runs on: the smallest of
    :data:`LANES` that is ``>= bits`` (InputError for ``bits`` not an int in 1..64)."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= int(bits) <= 64:
        raise InputError(f"bits must be an int in 1..64 (the width of the compared values), got {bits!r}"[:120])
    return next(L for L in LANES if L >= int(bits))


def msb_width(bound) -> int:
    """The smallest ``bits`` for which :func:`msb` with ``bits`` is exact on every ring
    element ``x`` with ``|x| <= bound`` (as int64; ``bound`` a non-negative integer, the
    caller's public bound): ``bound < 2^(bits - 1)``, i.e. ``bound.bit_length() + 1``.
    :class:`~pet.errors.PrecisionError` when even 64 bits do not hold it."""
    if isinstance(bound, bool) or not isinstance(bound, (int, np.integer)) or int(bound) < 0:
        raise InputError("bound must be a non-negative int (a bound on |x| as an integer of the ring)")
    bits = int(bound).bit_length() + 1
    if bits > 64:
        raise PrecisionError(f"a comparison of values up to 2^{bits - 1} in magnitude does not fit the 64-bit ring")
    return bits


def check_msb_bound(bound, bits, what: str = "x") -> None:
    """Refuse (:class:`~pet.errors.PrecisionError`, naming ``what``, before any message) a
    narrow comparison whose declared bound ``|x| <= bound`` (integer ring units) does not
    fit ``bits``: :func:`msb` with ``bits`` is exact only for ``-2^(bits-1) <= x < 2^(bits-1)``."""
    msb_lane(bits)
    need = msb_width(bound)
    if need > int(bits):
        raise PrecisionError(f"{what}: a narrow comparison on {int(bits)} bits needs |{what}| < "
                             f"2^{int(bits) - 1}, but its declared bound needs {need} bits")


def msb_specs(n: int, correlations: str = "dealer", bits: int = 64) -> list:
    """The correlated randomness :func:`msb` uses for ``n`` elements (one request), for a
    session whose source is the dealer (``correlations="dealer"``, the default) or the OT
    source (``"ot"``: the leaves of the 1-out-of-16 comparison, see :func:`msb`), for the
    comparison on ``bits``-bit values (lane ``L`` = :func:`msb_lane`; ``L < 64``:
    :func:`_msb_narrow` / :func:`_msb_narrow_leaves`, ``L / 64`` of the words)."""
    N = max(64, -(-n // 64) * 64)
    L = msb_lane(bits)
    if correlations not in ("dealer", "ot"):
        raise InputError(f"correlations must be 'dealer' or 'ot', got {str(correlations)[:20]!r}")
    if correlations == "ot":
        from pet.mpc.ot.millionaire import CmpLeaves

        Nv = N * L // 64  # 64-bit leaf operands (16 digits each), 64 / L elements per operand
        Q = Nv // 4  # leaf words: 16 digit leaves per operand, 4 operands per word
        levels = (L // 4).bit_length() - 1
        specs = [CmpLeaves((Nv,))]
        specs += [AndTriple((Q >> k,), 2) for k in range(1, levels)]
        specs += [AndTriple((Q >> levels,), 1), B2A((N >> 6,), tuple(range(64)))]
        return specs
    W = N * L // 64  # packed words of the tree's leaves, 64 / L elements per word
    levels = L.bit_length() - 1
    specs = [CmpMask((N,))]
    specs += [AndTriple((W >> k,), 2) for k in range(1, levels)]
    specs += [AndTriple((W >> levels,), 1), B2A((N >> 6,), tuple(range(64)))]
    return specs


def _source_kind(session) -> str:
    return "ot" if getattr(getattr(session, "source", None), "kind", None) == "ot" else "dealer"


def msb(session, x: np.ndarray, bits: int = 64) -> np.ndarray:
    """Arithmetic 0/1 shares of the most significant bit of the shared ring elements
    ``x`` (``1`` iff negative as int64), exact for every ring element; with ``bits < 64``
    the *narrow* comparison (:func:`_msb_narrow`), exact only when the caller guarantees
    ``-2^(bits-1) <= x < 2^(bits-1)`` as int64 (see :func:`check_msb_bound`), and cheaper
    in proportion to the lane ``L`` (:func:`msb_lane`: ``bits`` rounded up to 8, 16, 32).

    Protocol (8 rounds; per element each party sends about 33 bytes, the dealer sends
    about 4 words of corrections):

    1. the dealer gives ``r`` (arithmetic shares) and ``rb`` (XOR shares of the bits of
       ``r``); open ``c = x + r`` (uniform);
    2. ``x = c - r`` so ``msb(x) = msb(c) ^ msb(r) ^ [c' < r']`` with ``c', r'`` the low 63
       bits; the borrow ``[c' < r']`` is a comparison of a public and a boolean-shared
       number: generate ``g = ~c & r``, propagate ``p = ~(c ^ r)`` (local), then a
       binary tree of 6 levels combining adjacent bit pairs,
       ``(G, P) = (G_hi ^ P_hi & G_lo, P_hi & P_lo)``. After each level the surviving bits
       are compacted (numba), so the level's AND works on half as many words: about
       ``3 n`` words in total rather than ``6 * 3 n`` for a full adder;
    3. XOR in ``msb(c) ^ msb(r)`` (bit-packed, local) and convert the packed bits to
       arithmetic shares (1 round, :func:`b2a_bits` on 64 bits per word).
    """
    from pet.mpc import _kernels

    L = msb_lane(bits)
    if _source_kind(session) == "ot":
        return _msb_leaves(session, x) if L == 64 else _msb_narrow_leaves(session, x, L)
    if L < 64:
        return _msb_narrow(session, x, L)
    shape = x.shape
    n = x.size
    specs = msb_specs(n)
    N = specs[0].shape[0]
    mats = session.correlated(specs)
    xf = np.zeros(N, dtype=np.uint64)
    xf[:n] = x.ravel()
    cm = mats[0]
    mine = xf + cm["r"]
    other = np.asarray(session.exchange(f"msb({n})", mine), dtype=np.uint64)
    g, p = np.empty(N, dtype=np.uint64), np.empty(N, dtype=np.uint64)
    packed = np.empty(N // 64, dtype=np.uint64)
    _kernels.msb_setup(mine, other, cm["rb"], session.party == 0, g, p, packed)
    for level in range(1, 7):
        m = g.shape[0] // 2
        gh, gl, ph, pl = (np.empty(m, dtype=np.uint64) for _ in range(4))
        _kernels.split_pairs(g, p, gh, gl, ph, pl)
        if level < 6:
            t_g, t_p = and_words(session, ph, [gl, pl], mats[level])
            g, p = gh ^ t_g, t_p
        else:
            (t_g,) = and_words(session, ph, [gl], mats[level])
            g = gh ^ t_g
    w = g ^ packed
    bits = b2a_bits(session, w, range(64), mats[7], element_major=True)  # bit b of word j = element 64j+b
    return bits.reshape(-1)[:n].reshape(shape)


def _tree(session, g, p, mats, levels):
    """``levels`` levels of the comparison tree on packed XOR-shared words (see
    :func:`msb`): ``(G, P) = (G_hi ^ P_hi & G_lo, P_hi & P_lo)`` on adjacent bit pairs,
    compacted after each level; the last level computes ``G`` only. 1 round per level."""
    from pet.mpc import _kernels

    for level in range(1, levels + 1):
        m = g.shape[0] // 2
        gh, gl, ph, pl = (np.empty(m, dtype=np.uint64) for _ in range(4))
        _kernels.split_pairs(g, p, gh, gl, ph, pl)
        if level < levels:
            t_g, t_p = and_words(session, ph, [gl, pl], mats[level - 1])
            g, p = gh ^ t_g, t_p
        else:
            (t_g,) = and_words(session, ph, [gl], mats[level - 1])
            g = gh ^ t_g
    return g


def _msb_leaves(session, x: np.ndarray) -> np.ndarray:
    """:func:`msb` with the OT source: no ``cmpmask`` opening; the carry into bit 63 of
    ``x_0 + x_1`` is the millionaires' comparison ``[A < B]`` of party 0's
    ``A = ~x_0 mod 2^63`` and party 1's ``B = x_1 mod 2^63``, on 16 digits of 4 bits:

    1. leaves: XOR shares of ``[A_j < B_j]`` and ``[A_j == B_j]`` per digit from random
       1-out-of-16 OTs (:mod:`pet.mpc.ot.millionaire`; 2 rounds, 8 bytes per element from
       the receiving party and 64 from the sending one, each party sends for half);
    2. the tree of :func:`msb` on 16 leaves per element: 4 levels (4 rounds, 15 AND bits
       per element);
    3. XOR in both parties' ``msb(x_p)`` (local) and :func:`b2a_bits` (1 round).

    7 rounds; about 42 bytes per element per party online (the dealer path's ``msb``:
    8 rounds, about 41 bytes).
    """
    from pet.mpc.ot import _kernels as _ot_kernels
    from pet.mpc.ot.millionaire import leaf_shares

    shape = x.shape
    n = x.size
    specs = msb_specs(n, "ot")
    N = specs[0].shape[0]
    mats = session.correlated(specs)
    xf = np.zeros(N, dtype=np.uint64)
    xf[:n] = x.ravel()
    val = np.empty(N, dtype=np.uint64)
    tops = np.empty(N // 64, dtype=np.uint64)
    _ot_kernels.msb_operands(xf, session.party == 0, val, tops)
    g, p = leaf_shares(session, val, mats[0])
    w = _tree(session, g, p, mats[1:5], 4) ^ tops
    bits = b2a_bits(session, w, range(64), mats[5], element_major=True)  # bit b of word j = element 64j+b
    return bits.reshape(-1)[:n].reshape(shape)


_WIRE = {8: np.uint8, 16: np.uint16, 32: np.uint32}


def _msb_narrow(session, x: np.ndarray, L: int) -> np.ndarray:
    """:func:`msb` of ``L``-bit values (``L`` in 8, 16, 32), dealer source: the sign of
    ``x mod 2^L`` read as a signed ``L``-bit number, which is ``msb(x)`` whenever
    ``-2^(L-1) <= x < 2^(L-1)`` as int64 (the caller's precondition; outside it the bit
    is that of ``x mod 2^L``, i.e. meaningless). ``2^L`` divides ``2^64``, so each party
    reduces its share mod ``2^L`` locally and ``x_0 + x_1 = x (mod 2^L)``.

    1. the dealer's comparison mask (:class:`~pet.mpc.correlated.CmpMask`, its low ``L``
       bits: ``r mod 2^L`` arithmetic, ``rb`` XOR shares of its bits); open
       ``c = (x + r) mod 2^L`` (1 round, ``L / 8`` bytes per element): uniform mod
       ``2^L``, so a party learns nothing;
    2. ``msb_L(x) = msb_L(c) ^ msb_L(r) ^ [c' < r']`` with ``c', r'`` the low ``L - 1``
       bits; the leaves ``g = ~c & r``, ``p = ~(c ^ r)`` are packed ``64 / L`` elements
       per word in aligned ``L``-bit lanes (:func:`pet.mpc._narrow_kernels.narrow_setup`),
       so the tree of :func:`msb` combines bit pairs within lanes: ``log2 L`` levels
       (1 round each, ``3 L / 8`` bytes per element in all);
    3. XOR in ``msb_L(c) ^ msb_L(r)`` and :func:`b2a_bits` (1 round, 1/8 byte).

    ``2 + log2 L`` rounds (5, 6, 7 for ``L`` = 8, 16, 32; 64 bits: 8); per element and
    party about ``L / 8 + 3 L / 8`` bytes (3.6, 7.6, 15.6 bytes; 64 bits: 31.6). The dealer's
    part is the full-width mask and ``L / 64`` of the tree's AND triples. What each party
    learns: only uniformly masked openings (``c``, the AND and B2A openings)."""
    from pet.mpc import _narrow_kernels

    shape = x.shape
    n = x.size
    specs = msb_specs(n, "dealer", L)
    N = specs[0].shape[0]
    levels = L.bit_length() - 1
    mats = session.correlated(specs)
    xf = np.zeros(N, dtype=np.uint64)
    xf[:n] = x.ravel()
    cm = mats[0]
    mine = (xf + cm["r"]).astype(_WIRE[L])  # mod 2^L
    other = np.asarray(session.exchange(f"msb{L}({n})", mine))
    if other.dtype != _WIRE[L] or other.shape != (N,):
        from pet.errors import ProtocolError

        raise ProtocolError("the peer's narrow comparison opening has the wrong size or type")
    W = N * L // 64
    g, p = np.empty(W, dtype=np.uint64), np.empty(W, dtype=np.uint64)
    packed = np.empty(N // 64, dtype=np.uint64)
    _narrow_kernels.narrow_setup(mine, other, cm["rb"], L, session.party == 0, g, p, packed)
    w = _tree(session, g, p, mats[1:1 + levels], levels) ^ packed
    bits = b2a_bits(session, w, range(64), mats[1 + levels], element_major=True)  # element 64j+b: bit b of word j
    return bits.reshape(-1)[:n].reshape(shape)


def _msb_narrow_leaves(session, x: np.ndarray, L: int) -> np.ndarray:
    """:func:`_msb_narrow` with the OT source (no dealer): the carry into bit ``L - 1`` of
    ``(x_0 mod 2^(L-1)) + (x_1 mod 2^(L-1))`` is the millionaires' comparison ``[A < B]``
    of party 0's ``A = ~x_0 mod 2^(L-1)`` and party 1's ``B = x_1 mod 2^(L-1)``, on
    ``L / 4`` digits of 4 bits:

    1. the operands are packed ``64 / L`` per 64-bit word in ``L``-bit lanes
       (:func:`pet.mpc._narrow_kernels.narrow_operands`) and each word is one operand of
       :func:`pet.mpc.ot.millionaire.leaf_shares` (16 digit leaves; a lane's top bit is 0
       at both parties, so lanes never interact): 2 rounds, per element ``L / 64`` of the
       64-bit leaves' bytes (8 from the receiving party, 64 from the sending one, each
       party sending for half of the words) and ``L`` random OTs offline;
    2. the tree on ``L / 4`` leaves per element: ``log2(L / 4)`` levels (1, 2, 3 rounds);
    3. XOR in both parties' ``msb_L(x_p)`` (local) and :func:`b2a_bits` (1 round).

    ``3 + log2(L / 4)`` rounds (4, 5, 6 for ``L`` = 8, 16, 32; 64 bits: 7); about
    ``36 L / 64 + 3 L / 32`` bytes per element per party online (5.3, 10.6, 21 bytes).
    What each party learns: as for the 64-bit leaves (:mod:`pet.mpc.ot.millionaire`)."""
    from pet.mpc import _narrow_kernels
    from pet.mpc.ot.millionaire import leaf_shares

    shape = x.shape
    n = x.size
    specs = msb_specs(n, "ot", L)
    N = max(64, -(-n // 64) * 64)
    levels = (L // 4).bit_length() - 1
    mats = session.correlated(specs)
    xf = np.zeros(N, dtype=np.uint64)
    xf[:n] = x.ravel()
    val = np.empty(N * L // 64, dtype=np.uint64)
    tops = np.empty(N // 64, dtype=np.uint64)
    _narrow_kernels.narrow_operands(xf, L, session.party == 0, val, tops)
    g, p = leaf_shares(session, val, mats[0])
    w = _tree(session, g, p, mats[1:1 + levels], levels) ^ tops
    bits = b2a_bits(session, w, range(64), mats[1 + levels], element_major=True)
    return bits.reshape(-1)[:n].reshape(shape)


def prefix_or_down(session, w: np.ndarray, lane_bits: int = 64) -> np.ndarray:
    """Boolean shares of ``m`` with bit ``i`` = OR of the bits ``>= i`` of ``w``
    (6 rounds; ``a | b = a ^ b ^ (a & b)``). ``m ^ (m >> 1)`` is then the one-hot of the
    leading one. ``lane_bits < 64``: within each lane of that width (``log2(lane_bits)``
    rounds)."""
    _check_lanes(lane_bits)
    m = w
    s = 1
    while s < lane_bits:
        t = (m >> _U(s)) & _lane_keep(lane_bits, s, False)
        (a,) = and_words(session, m, [t])
        m = m ^ t ^ a
        s *= 2
    return m
