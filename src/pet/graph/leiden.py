"""Two-party privacy-preserving Leiden community detection: :func:`leiden`.

Setting: the nodes of an undirected weighted graph are split between party 0 and party 1.
Each party knows its own nodes and the edges among them in plaintext; a cross-party edge's
endpoints are known to both and its weight is additively shared (each party lists the edge
with its own share). Each party learns the community of each of its own nodes; labels are
global, so the union of the two outputs is one partition of the whole graph.

Algorithm (Traag, Waltman & van Eck 2019, maximising modularity with resolution
``gamma``), run by both parties in lockstep:

* **local moving** (queue-based "fast local moving"): nodes are visited in batches; a
  seed-derived hash splits the nodes into ``n_groups`` groups and each round decides the
  best move of every queued node of one group at once (:mod:`pet.graph.rounds`: gains in
  MPC, secure argmax); a node that moves puts its neighbours outside its new community back
  in the queue; until the queue is empty;
* **refinement**: inside every community, starting from singletons, each singleton node
  may join the neighbouring sub-community (same community) with the best non-negative gain
  (the greedy, ``theta -> 0`` form of Leiden's randomised merge, as leidenalg's
  ``merge_nodes_constrained``); joins happen only along edges and never into a sub-community
  whose only member is moving in the same round, so every sub-community stays connected;
  public nodes are refined first, then private ones;
* **aggregation**: each sub-community becomes a node of the next level (each party sums its
  own shares locally), with the local-moving partition as its starting partition;
* until a level moves and merges nothing and every community is one aggregate node
  (checked jointly), hence connected; if three fresh refinements cannot merge the nodes of
  a multi-node community, it is split into its (connected) nodes; the whole is repeated
  ``n_iterations`` times from the current partition (or until an iteration changes nothing,
  with ``n_iterations=-1``).

Determinism: gains are exact integers (weights in fixed point with a jointly chosen number
of fractional bits, no truncation), batches and tie-breaks (stay, then the empty
community, then public labels ascending, then private ones) come from the agreed seed, so
the same inputs and seed give the same partition on every run and machine.

Leakage (what a party learns beyond its own input and output) is listed in
:func:`leiden`'s docstring and in ``docs/graph.md``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from pet._validate import check_int
from pet.errors import InputError, PetTypeError, ProtocolError
from pet.graph.inputs import check_resolution, prepare_input
from pet.graph.rounds import Context, batched_round
from pet.graph.setup import GAMMA_BITS, joint_setup
from pet.graph.state import LabelStore, aggregate, group_of
from pet.transport import Link

__all__ = ["leiden"]


def _public(value):
    """A parameter as sent in the hello message (a number, else its repr)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value) if isinstance(value, (float, np.floating)) else int(value)
    return repr(value)[:50]


def _check_int(name, value, lo):
    return check_int(value, name, lo=lo)


def leiden(session, nodes, edges, *, resolution=1.0, seed=0, n_iterations=2, n_groups=8,
           group_size=256, max_levels=50, max_rounds=400, check_disjoint=True, link=None) -> pd.Series:
    """Leiden communities of a graph split between two parties; both call it together.

    Parameters
    ----------
    session : :class:`pet.mpc.Session` with a dealer.
    nodes : this party's node ids (int or str; ``7`` and ``"7"`` are the same node).
    edges : DataFrame ``source, target, weight``; each undirected edge once. An edge with one
        foreign endpoint is a cross-party edge, ``weight`` this party's additive share of it
        (the peer lists the same edge with its share).
    resolution : modularity resolution ``gamma > 0`` (encoded as a multiple of 2^-10).
    seed : public seed both parties agree on (node batches, tie-breaks).
    n_iterations : full Leiden passes (each until no level changes); ``-1``: until a pass
        changes nothing (at most 20).
    n_groups : batches per sweep of local moving and refinement (more: closer to sequential
        Leiden, more rounds); a level of ``n`` nodes uses ``min(n_groups, ceil(n /
        group_size))`` batches, at least 2.
    max_levels, max_rounds : safety caps on levels per pass and rounds per local moving.
    check_disjoint : run the PSI check that no node is claimed by both parties.
    link : the network between the parties, a :class:`pet.transport.Link` (round trip,
        bandwidth); default: the session channel's own link if it is shaped
        (:meth:`pet.transport.Link.wrap`), else none. Both parties' declarations are
        exchanged in the hello and the slower combination is used to pick each round's
        argmax arity (:func:`pet.mpc.tournament.choose_arity`: with a round trip of tens
        of milliseconds, arity 3 or 4, about 40 % fewer rounds for 2.4x the comparison
        bytes; without one, the binary tournament). The partition does not depend on it.

    Returns
    -------
    ``pandas.Series`` indexed by this party's node ids (input order), int64 community labels
    ``0 .. c-1`` that are global: the same label on both sides is the same community.
    ``series.attrs["pet_graph"]`` holds counters (levels, rounds, MPC rounds, candidates,
    ``step_rounds``: MPC rounds per step of a batch, ``arity``: argmax calls per arity,
    ``link``: the agreed link or None).

    Leakage, to each party, beyond its own input and output:

    * the peer's node count (PSI), the cross-edge endpoints (given by the setting) and
      hence which of its own and the peer's nodes are *public* (have a cross edge);
    * the bit length of the peer's total weight share (fixes the fixed-point scale);
    * the round trip and bandwidth the peer declares for the link (``link=``, or its shaped
      channel's; both need the same argmax arity);
    * the community of every public node at every step (every move of a public node), and
      the labels of the public communities (communities that ever held a public node);
    * per round: the number of the peer's private nodes in the batch, of their candidate
      communities, and which public communities are among them; for each public node, the
      public communities and the number of the peer's private communities next to it
      (identified within the round), and which public nodes the peer re-queues;
    * per level: the number of the peer's private nodes (aggregate nodes made of its
      private nodes only) and the number of moves and merges of its private nodes; at a
      level where nothing moved or merged, whether some community holds two or more nodes
      and the public communities holding the peer's private aggregate nodes;
    * at the end: the public labels in use by the peer's nodes and the peer's number of
      private communities.

    Never revealed: any weight, weight share, degree, community total ``K``, ``m``, any
    gain, the peer's private node ids or private edges, or the moves of the peer's private
    nodes.
    """
    if not (hasattr(session, "exchange") and getattr(session, "party", None) in (0, 1)):
        raise PetTypeError("session must be a pet.mpc.Session")
    t0 = time.perf_counter()
    local, local_error = None, None
    try:  # a bad argument or input fails at both parties (after one hello message)
        resolution = check_resolution(resolution)
        _check_int("seed", seed, 0)
        if not (isinstance(n_iterations, (int, np.integer)) and n_iterations == -1):
            _check_int("n_iterations", n_iterations, 1)
        _check_int("n_groups", n_groups, 1)
        _check_int("group_size", group_size, 1)
        _check_int("max_levels", max_levels, 1)
        _check_int("max_rounds", max_rounds, 1)
        if link is not None and not isinstance(link, Link):
            raise PetTypeError(f"link must be a pet.transport.Link or None, got {type(link).__name__}")
        local = prepare_input(nodes, edges)
    except InputError as exc:  # GraphError and PetTypeError included
        local_error = exc
    params = [_public(resolution), _public(seed), _public(n_iterations), _public(n_groups), _public(group_size)]
    if link is None or local_error is not None:
        link = getattr(session.channel, "link", None)  # a shaped channel declares its link
        link = link if isinstance(link, Link) else None
    lv0 = joint_setup(session, local, local_error, resolution=resolution, params=params,
                      check_disjoint=check_disjoint, link=link)
    ctx = Context(session, lv0.gamma_num, GAMMA_BITS, lv0.m2, lv0.link)
    g0 = lv0.graph

    store = LabelStore()
    store.new_public(g0.n_pub)
    store.new_private(g0.n_priv)
    lab0 = np.concatenate([np.arange(g0.n_pub, dtype=np.int64),
                           -1 - np.arange(g0.n_priv, dtype=np.int64)])
    store.add_K(lab0, g0.deg)
    info = {"levels": 0, "iterations": 0, "moves": 0}
    max_iter = 20 if n_iterations == -1 else int(n_iterations)
    clean = None  # the last pass that ended without splitting (both parties agree on it)
    for it in range(max_iter):
        splits = info.get("splits", 0)
        lab0, moved = _one_pass(ctx, g0, lab0, store, seed=int(seed), iteration=it, n_groups=int(n_groups),
                                group_size=int(group_size),
                                max_levels=int(max_levels), max_rounds=int(max_rounds), info=info)
        info["iterations"] += 1
        split = info.get("splits", 0) > splits
        if not split:
            clean = lab0.copy()
        if not moved:
            break
    if clean is not None:
        lab0 = clean  # a split is only a last resort: prefer a pass that ended cleanly
    labels = _global_labels(session, lab0[lv0.own_known])
    info.update(ctx.stats)
    info["mpc_rounds"] = session.rounds
    info["link"] = None if lv0.link is None else str(lv0.link)
    info["seconds"] = time.perf_counter() - t0
    info["frac_bits"] = lv0.frac_bits
    out = pd.Series(labels, index=pd.Index(local.node_ids, name="node"), name="community", dtype=np.int64)
    out.attrs["pet_graph"] = info
    return out


def _one_pass(ctx, g0, lab0, store, *, seed, iteration, n_groups, group_size, max_levels, max_rounds, info):
    """Levels of local moving, refinement and aggregation until a level changes nothing.
    Returns the level-0 labels and whether any node moved in local moving."""
    g, lab = g0, lab0.copy()
    map0 = np.arange(g0.n_known, dtype=np.int64)
    any_move = False
    stuck = 0
    for level in range(max_levels):
        salt = iteration * 8
        # batches per sweep: fewer on small (aggregate) levels, where a batch's cost is its
        # latency, not its size
        peer_priv = ctx.session.exchange("graph.size", int(g.n_priv))
        if not isinstance(peer_priv, int):
            raise ProtocolError("graph: malformed level size")
        n_total = g.n_known + int(peer_priv)
        k = max(min(2, n_groups), min(n_groups, -(-n_total // group_size)))
        lm = _local_moving(ctx, g, lab, store, seed, level, salt, k, max_rounds)
        ref = np.concatenate([np.arange(g.n_pub, dtype=np.int64), -1 - np.arange(g.n_priv, dtype=np.int64)])
        rstore = LabelStore()
        rstore.new_public(g.n_pub)
        rstore.new_private(g.n_priv)
        rstore.add_K(ref, g.deg)
        rstore.cnt_pub[:] = 1
        rstore.cnt_priv[:] = 1
        # a retry after a stuck level spreads the nodes over more batches (public nodes in
        # distinct batches), so that two nodes that should merge are not in the same one
        k_ref = min(64, max(k, n_total)) if stuck else k
        merges = _refine(ctx, g, lab, ref, rstore, seed, level, salt + 1, k_ref, spread=bool(stuck),
                         peer_priv=int(peer_priv))
        peer = ctx.session.exchange("graph.level", [int(lm[0]), int(merges[0])])
        if not (isinstance(peer, list) and len(peer) == 2):
            raise ProtocolError("graph: malformed level summary")
        total_moves = lm[0] + lm[1] + int(peer[0])
        total_merges = merges[0] + merges[1] + int(peer[1])
        info["levels"] += 1
        info["moves"] += total_moves
        any_move = any_move or total_moves > 0
        if total_merges == 0:
            if total_moves > 0:
                # nodes moved but no sub-community merged (possible when every candidate
                # target was moving in the same batch): refine again with fresh batches
                continue
            if not _any_multi_node_community(ctx, g, lab):
                break  # every community is one aggregate node, hence connected
            stuck += 1
            if stuck <= 3:
                continue  # retry the refinement with fresh batches
            # give up merging: split the remaining communities into their aggregate nodes
            # (each one connected by construction), so the guarantee holds
            _split_into_nodes(g, lab, store)
            info["splits"] = info.get("splits", 0) + 1
            break
        g, mapping, lab = aggregate(g, ref, lab)
        map0 = mapping[map0]
    return lab[map0], any_move


def _any_multi_node_community(ctx, g, lab) -> bool:
    """Jointly: does some community hold two or more nodes of this level?

    Each party counts the public nodes and its own private nodes per label and sends one
    flag plus the public labels that hold at least one of its private nodes.
    """
    pub_count = np.bincount(lab[:g.n_pub], minlength=_n_pub_labels(lab, g)) if g.n_pub else np.zeros(0, np.int64)
    priv = lab[g.n_pub:]
    flag = False
    own_priv = priv[priv < 0]
    if own_priv.size and np.unique(own_priv).size < own_priv.size:
        flag = True
    own_in_pub = priv[priv >= 0]
    own_pub_labels, own_pub_counts = np.unique(own_in_pub, return_counts=True)
    pc = np.zeros(own_pub_labels.size, dtype=np.int64)
    ok = own_pub_labels < pub_count.size
    pc[ok] = pub_count[own_pub_labels[ok]]
    if np.any(pc + own_pub_counts >= 2) or (pub_count.size and pub_count.max() >= 2):
        flag = True
    peer = ctx.session.exchange("graph.multi", [bool(flag), own_pub_labels.astype(np.int64)])
    if not (isinstance(peer, list) and len(peer) == 2):
        raise ProtocolError("graph: malformed community-size message")
    if flag or peer[0]:
        return True
    theirs = np.asarray(peer[1], dtype=np.int64)
    if np.intersect1d(theirs, own_pub_labels).size:
        return True
    ok = (theirs >= 0) & (theirs < pub_count.size)
    return bool(np.any(pub_count[theirs[ok]] >= 1))


def _n_pub_labels(lab, g) -> int:
    """Length for counting public labels of the public nodes."""
    return int(lab[:g.n_pub].max()) + 1 if g.n_pub else 0


def _split_into_nodes(g, lab, store) -> None:
    """Give every node of this level a fresh community of its own (same order on both
    sides for public nodes), moving the degree totals along."""
    new = np.concatenate([store.new_public(g.n_pub), store.new_private(g.n_priv)])
    store.add_K(lab, -g.deg)
    store.add_K(new, g.deg)
    lab[:] = new


def _groups(seed, level, salt, g, n_groups):
    pub = group_of(seed, level, 2 * salt, np.arange(g.n_pub), n_groups)
    priv = group_of(seed, level, 2 * salt + 1, np.arange(g.n_priv), n_groups)
    return np.concatenate([pub, priv])


def _local_moving(ctx, g, lab, store, seed, level, salt, n_groups, max_rounds):
    """Queue-based local moving in batches; returns (own private moves, public moves)."""
    s = ctx.session
    sweep = 0
    grp = _groups(seed, level, salt + 64 * sweep, g, n_groups)
    active = np.ones(g.n_known, dtype=bool)  # own private part: own queue; public part: agreed
    requests = np.zeros(0, dtype=np.int64)
    cur = 0
    n_own_moves = n_pub_moves = 0
    for _ in range(max_rounds):
        own_counts = np.bincount(grp[g.n_pub:][active[g.n_pub:]], minlength=n_groups).astype(np.int64)
        peer = s.exchange("graph.queue", [own_counts, requests])
        ctx.stats["step_rounds"]["queue"] += 1
        if not (isinstance(peer, list) and len(peer) == 2):
            raise ProtocolError("graph: malformed queue message")
        peer_counts = np.asarray(peer[0], dtype=np.int64)
        peer_req = np.asarray(peer[1], dtype=np.int64)
        if peer_counts.shape != (n_groups,) or (peer_req.size and (peer_req.min() < 0 or peer_req.max() >= g.n_pub)):
            raise ProtocolError("graph: invalid queue message")
        active[requests] = True
        active[peer_req] = True
        work = own_counts + peer_counts + np.bincount(grp[:g.n_pub][active[:g.n_pub]], minlength=n_groups)
        if work.sum() == 0:
            break
        order = (np.arange(n_groups) + cur) % n_groups
        gsel = int(order[np.flatnonzero(work[order] > 0)[0]])
        if gsel < cur or gsel == n_groups - 1:
            # a sweep ends: fresh seed-derived groups, so that two adjacent nodes that keep
            # swapping communities in the same batch are soon split apart
            nxt_grp = _groups(seed, level, salt + 64 * (sweep + 1), g, n_groups)
        else:
            nxt_grp = None
        cur = (gsel + 1) % n_groups
        sel = active & (grp == gsel)
        own_nodes = np.flatnonzero(sel[g.n_pub:]) + g.n_pub
        pub_nodes = np.flatnonzero(sel[:g.n_pub])
        active[own_nodes] = False
        active[pub_nodes] = False
        moved_own, moved_pub = batched_round(ctx, g, lab, store, own_nodes, pub_nodes, allow_empty=True)
        if nxt_grp is not None:
            sweep += 1
            grp, cur = nxt_grp, 0
        n_own_moves += moved_own.size
        n_pub_moves += moved_pub.size
        movers = np.concatenate([moved_own, moved_pub])
        if movers.size:
            cnt = g.indptr[movers + 1] - g.indptr[movers]
            off = np.repeat(g.indptr[movers] - (np.cumsum(cnt) - cnt), cnt) + np.arange(int(cnt.sum()))
            nb = g.indices[off]
            src_lab = np.repeat(lab[movers], cnt)
            nb = np.unique(nb[lab[nb] != src_lab])
            active[nb[nb >= g.n_pub]] = True
            requests = nb[nb < g.n_pub]
        else:
            requests = np.zeros(0, dtype=np.int64)
    return n_own_moves, n_pub_moves


def _refine(ctx, g, comm, ref, rstore, seed, level, salt, n_groups, spread=False, peer_priv=None):
    """Refinement: phase 1 public singletons, phase 2 own private singletons, each one
    pass over the groups. Returns (own private merges, public merges).

    A batch both parties know to be empty costs no round: in phase 1 the public batch; in
    phase 2 a group holding none of either party's private nodes (the groups of the peer's
    private nodes follow from the public seed and the peer's private node count,
    ``peer_priv``, which it sent for this level)."""
    grp = _groups(seed, level, salt, g, n_groups)
    occupied = np.ones(n_groups, dtype=bool)
    if peer_priv is not None:
        peer_grp = group_of(seed, level, 2 * salt + 1, np.arange(peer_priv), n_groups)
        occupied = (np.bincount(grp[g.n_pub:], minlength=n_groups)
                    + np.bincount(peer_grp, minlength=n_groups)) > 0
    if spread and g.n_pub:
        offset = int(group_of(seed, level, 2 * salt + 7, np.zeros(1), n_groups)[0])
        grp[:g.n_pub] = (np.arange(g.n_pub) + offset) % n_groups
    n_own = n_pub = 0
    empty = np.zeros(0, dtype=np.int64)
    for gsel in range(n_groups):
        cand = np.flatnonzero(grp[:g.n_pub] == gsel)
        cand = cand[rstore.cnt_pub[ref[cand]] == 1]
        if cand.size == 0:
            continue  # public batch, known to both to be empty: no round at all
        _, moved_pub = batched_round(ctx, g, ref, rstore, empty, cand, allow_empty=False, restrict=comm,
                                     excluded=ref[cand], move_on_zero=True)
        n_pub += moved_pub.size
    for gsel in range(n_groups):
        if not occupied[gsel]:
            continue  # no private node of either party in this group: known to both
        cand = np.flatnonzero(grp[g.n_pub:] == gsel) + g.n_pub
        r = ref[cand]
        ok = r < 0
        ok[ok] = rstore.cnt_priv[-1 - r[ok]] == 1
        cand = cand[ok]
        moved_own, _ = batched_round(ctx, g, ref, rstore, cand, empty, allow_empty=False, restrict=comm,
                                     excluded=ref[cand], move_on_zero=True)
        n_own += moved_own.size
    return n_own, n_pub


def _global_labels(session, own_labels: np.ndarray) -> np.ndarray:
    """Renumber to ``0 .. c-1``: public labels in use (union of both sides, ascending),
    then party 0's private labels, then party 1's."""
    me = session.party
    pub_used = np.unique(own_labels[own_labels >= 0])
    priv_used = np.unique(own_labels[own_labels < 0])[::-1]  # ascending private index
    peer = session.exchange("graph.labels", [pub_used, np.int64(priv_used.size)])
    if not (isinstance(peer, list) and len(peer) == 2):
        raise ProtocolError("graph: malformed label message")
    all_pub = np.union1d(pub_used, np.asarray(peer[0], dtype=np.int64))
    offset = all_pub.size + (0 if me == 0 else int(peer[1]))
    out = np.empty(own_labels.size, dtype=np.int64)
    p = own_labels >= 0
    out[p] = np.searchsorted(all_pub, own_labels[p])
    if priv_used.size:
        out[~p] = offset + np.searchsorted(-1 - priv_used, -1 - own_labels[~p])
    return out
