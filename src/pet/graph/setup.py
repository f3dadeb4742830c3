"""Joint input checks and the level-0 view of the split graph.

Protocol (both parties, in this order):

1. *Hello*: each party validates its own input locally (:mod:`pet.graph.inputs`) and sends
   ``ok`` or an error category (never the offending private values), plus the public
   parameters (resolution, seed, iterations, groups); if either side failed or the
   parameters differ, both raise :class:`~pet.graph.inputs.GraphError`. The same message
   carries the network each party declares (round trip and bandwidth, see
   :func:`agree_link`); both use the slower of the two to choose the tournament arity.
2. *Disjoint node sets*: ECDH-PSI (:func:`pet.psi.ecdh_psi`, ``reveal="both"``) of the
   canonical node keys; a non-empty intersection (nodes claimed by both) is an error on
   both sides, naming the shared ids (both parties learn them from the PSI anyway).
3. *Cross edges*: each party sends the (own, foreign) endpoint keys of its cross-party
   edges (public in this setting: "a cross edge's endpoints are known to both"); an edge
   listed by one party only is an error on both sides. The agreed cross edges, sorted by
   (party 0's endpoint, party 1's endpoint), fix the public node order: all cross-edge
   endpoints, sorted by key.
4. *Scale*: each party sends ``ceil(log2(1 + sum of |own weight shares| * 2))`` (the
   bit length of its part of ``2m``); from the larger one both derive the same number of
   fractional bits ``f`` such that every gain of :mod:`pet.graph.rounds` fits the 64-bit
   ring with room to spare; weights and shares are rounded to multiples of ``2^-f``.
5. *Non-negative cross weights*: one batched secure comparison ``share_0 + share_1 < 0``
   over all cross edges; only the bits are opened (to both), and a negative total weight is
   an error on both sides naming the edge.

What a party learns here: whether the peer's input is valid (and an error category), the
peer's number of nodes (PSI), the nodes claimed by both (empty on valid input), the
cross-edge endpoints (public by the setting), the bit length of the peer's total weight
share, the sign bits of the cross-edge weights (all non-negative on valid input), and the
round trip and bandwidth the peer declares for the link.
"""

from __future__ import annotations

import math

import numpy as np

from pet.errors import PetTypeError, PrecisionError, ProtocolError
from pet.graph.inputs import GraphError, LocalInput
from pet.graph.state import LevelGraph, build_csr
from pet.mpc import Shared, compare

__all__ = ["Level0", "joint_setup", "agree_link"]

GAMMA_BITS = 10


class Level0:
    """The level-0 view: graph, own node positions, public node keys, constants."""

    def __init__(self, graph, own_known, pub_keys, frac_bits, gamma_num, m2, n_peer_nodes, link=None):
        self.graph = graph
        self.link = link  # the agreed pet.transport.Link (None: no latency declared)
        self.own_known = own_known  # known-node index of each own input node (input order)
        self.pub_keys = pub_keys
        self.frac_bits = frac_bits
        self.gamma_num = gamma_num
        self.m2 = m2
        self.n_peer_nodes = n_peer_nodes


def _network(link) -> list:
    """``[rtt seconds, bandwidth bit/s or 0.0 for unlimited]`` of a declared link."""
    if link is None:
        return [0.0, 0.0]
    return [float(link.rtt), 0.0 if link.bandwidth is None else float(link.bandwidth)]


def agree_link(own, peer):
    """The link both parties plan for: the larger round trip and the smaller bandwidth of
    the two declared ones (``own``: a Link or None; ``peer``: the peer's ``[rtt, bw]``,
    checked). ``None`` when neither declares a round trip."""
    from pet.transport import Link

    if not (isinstance(peer, list) and len(peer) == 2
            and all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in peer)):
        raise ProtocolError("graph setup: malformed link declaration from the peer")
    mine = _network(own)
    rtt = max(mine[0], peer[0])
    bws = [b for b in (mine[1], peer[1]) if b > 0]
    if rtt <= 0 or rtt >= 3600:
        return None
    return Link(rtt=rtt, bandwidth=max(1e3, min(bws)) if bws else None)


def _fail_both(session, local_error, params, link=None):
    """Step 1: exchange validity, parameters and the declared links; raise on both sides
    if needed. Returns the agreed link (:func:`agree_link`)."""
    if link is not None and not all(hasattr(link, a) for a in ("rtt", "bandwidth")):
        raise PetTypeError("link must be a pet.transport.Link or None")
    ok = local_error is None
    msg = "" if ok else type(local_error).__name__ + ": " + _category(str(local_error))
    peer = session.exchange("graph.hello", [bool(ok), msg, list(params), _network(link)])
    if not (isinstance(peer, list) and len(peer) == 4):
        raise ProtocolError("graph setup: malformed hello from the peer")
    if not ok:
        raise local_error
    if not peer[0]:
        raise GraphError(f"the peer (party {1 - session.party}) rejected its input: {peer[1]}")
    if list(peer[2]) != list(params):
        raise GraphError(f"the parties passed different parameters (resolution, seed, n_iterations, n_groups, "
                         f"group_size): this party {list(params)}, the peer {list(peer[2])}")
    return agree_link(link, peer[3])


def _category(text: str) -> str:
    """The part of an error message that is safe to tell the peer (no ids or values)."""
    for param in ("resolution", "seed", "n_iterations", "n_groups", "group_size", "max_levels", "max_rounds"):
        if text.startswith(param):
            return text[:200]  # public parameters: the whole message
    for cat in ("listed twice", "negative weight", "not finite", "neither endpoint", "missing column",
                "must be numeric", "node ids must", "nodes must", "edges must"):
        if cat in text:
            return f"invalid input ({cat})"
    return "invalid input"


def joint_setup(session, local: LocalInput | None, local_error, *, resolution, params,
                check_disjoint=True, link=None) -> Level0:
    """Run steps 1-5 and build the level-0 view (see the module docstring); ``link``: the
    network this party declares (a :class:`pet.transport.Link` or None)."""
    me = session.party
    agreed = _fail_both(session, local_error, params, link)

    # 2. disjoint node sets
    if check_disjoint:
        from pet.psi import ecdh_psi

        res = ecdh_psi(session.channel, local.keys, party=me, reveal="both")
        if res.size:
            shown = ", ".join(sorted(str(x) for x in res.items)[:5])
            raise GraphError(f"{res.size} node(s) are claimed by both parties (e.g. {shown}); "
                             "each node must belong to exactly one party")
        n_peer_nodes = int(res.peer_size)
    else:
        n_peer_nodes = -1

    # 3. cross edges
    own_keys = [local.keys[i] for i in local.cross_own.tolist()]
    mine = sorted(zip(own_keys, local.cross_foreign))
    peer = session.exchange("graph.cross", [[a for a, _ in mine], [b for _, b in mine]])
    if not (isinstance(peer, list) and len(peer) == 2 and len(peer[0]) == len(peer[1])):
        raise ProtocolError("graph setup: malformed cross-edge list from the peer")
    theirs = sorted(zip(peer[1], peer[0]))  # as (my endpoint, their endpoint)
    if mine != theirs:
        only_me = sorted(set(mine) - set(theirs))
        only_peer = sorted(set(theirs) - set(mine))
        parts = []
        p0, p1 = (only_me, only_peer) if me == 0 else (only_peer, only_me)
        if p0:
            parts.append("listed by party 0 only: " + ", ".join(f"({a}, {b})" if me == 0 else f"({b}, {a})"
                                                              for a, b in p0[:5]))
        if p1:
            parts.append("listed by party 1 only: " + ", ".join(f"({b}, {a})" if me == 0 else f"({a}, {b})"
                                                              for a, b in p1[:5]))
        dup = len(set(mine)) != len(mine)
        raise GraphError("cross-party edges differ between the parties ("
                         + ("; ".join(parts) if parts else "an edge is listed twice" if dup else "counts differ")
                         + "); each cross edge must be listed by both parties with their weight shares")
    # canonical order: by (party 0's endpoint, party 1's endpoint)
    pairs = [(a, b) if me == 0 else (b, a) for a, b in mine]
    order = sorted(range(len(pairs)), key=lambda i: pairs[i])
    pub_keys = sorted({k for p in pairs for k in p})
    pub_pos = {k: i for i, k in enumerate(pub_keys)}

    # 4. scale
    abs_total = 2.0 * float(np.abs(local.int_w).sum()) + float(np.abs(local.cross_w).sum())
    bits = int(math.ceil(math.log2(1.0 + abs_total)))
    peer_bits = session.exchange("graph.scale", bits)
    if not isinstance(peer_bits, int):
        raise ProtocolError("graph setup: malformed scale message")
    bb = max(bits, int(peer_bits)) + 1
    gamma_num = int(round(resolution * (1 << GAMMA_BITS)))
    if gamma_num < 1:
        raise GraphError(f"resolution {resolution!r} is too small (minimum 2^-{GAMMA_BITS})")
    gbits = int(math.ceil(math.log2((1 << GAMMA_BITS) + 2 * gamma_num)))
    f = min(16, (61 - gbits - 2 * bb) // 2)
    if f < 0:
        raise PrecisionError("the total edge weight is too large for exact 64-bit gains "
                             f"(about 2^{bb}); scale the weights down")
    scale = float(1 << f)
    int_w = np.round(local.int_w * scale).astype(np.int64)
    cross_w = np.round(local.cross_w * scale).astype(np.int64)

    # 5. non-negative total cross weights (secure comparison, bits opened to both)
    key_to_idx = {(own_keys[i], local.cross_foreign[i]): i for i in range(len(own_keys))}
    w_canon = np.array([cross_w[key_to_idx[mine[i]]] for i in order], dtype=np.int64)
    if w_canon.size:
        neg = session.reveal(compare.less(Shared.from_shares(session, w_canon, 0), 0))
        if np.any(neg):
            i = int(np.flatnonzero(neg)[0])
            a, b = pairs[order[i]]
            raise GraphError(f"cross edge ({a}, {b}) has a negative total weight "
                             f"({int(np.sum(neg))} such edge(s)); weights must be >= 0")

    # level-0 view: public nodes, then own private nodes
    n_pub = len(pub_keys)
    own_known = np.empty(len(local.keys), dtype=np.int64)
    nxt = n_pub
    for i, k in enumerate(local.keys):
        if k in pub_pos:
            own_known[i] = pub_pos[k]
        else:
            own_known[i] = nxt
            nxt += 1
    n_known = nxt
    src = np.concatenate([own_known[local.int_src],
                          own_known[local.cross_own]]) if local.keys else np.zeros(0, np.int64)
    dst = np.concatenate([own_known[local.int_dst],
                          np.array([pub_pos[k] for k in local.cross_foreign], dtype=np.int64)]) \
        if local.keys else np.zeros(0, np.int64)
    w = np.concatenate([int_w, cross_w])
    indptr, indices, weights = build_csr(n_known, src.astype(np.int64), dst.astype(np.int64), w)
    deg = np.zeros(n_known, dtype=np.int64)
    np.add.at(deg, np.repeat(np.arange(n_known), np.diff(indptr)), weights)
    loops = src == dst
    np.add.at(deg, src[loops], 2 * w[loops])
    m2 = int(deg.sum())
    graph = LevelGraph(n_pub, n_known, indptr, indices, weights, deg)
    return Level0(graph, own_known, pub_keys, f, gamma_num, m2, n_peer_nodes, agreed)
