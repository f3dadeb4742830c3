"""Segmented secure argmax: the first maximum of every segment of a flat shared array.

The candidate moves of many nodes are laid out as one flat array of shared gains, node
after node (a *segment* per node; segment lengths are public). One tournament runs over all
segments at once, so the cost in rounds depends only on the longest segment:

1. at each level, pair the elements ``(0, 1), (2, 3), ...`` of every segment (an odd last
   element is carried to the next level unchanged);
2. one batched comparison ``c = right > left`` for all pairs of all segments (8 rounds),
3. one batched Beaver product muxes both the winning value and the winning index
   (``left + c * (right - left)``, 1 round).

After ``ceil(log2(longest segment))`` levels each segment holds one shared index: the
position of its first maximum (ties go to the earlier element, because ``c`` is a strict
comparison). Nothing is opened: every message is a masked Beaver or comparison opening.
"""

from __future__ import annotations

import numpy as np

from pet.mpc import Shared, compare

__all__ = ["segmented_argmax"]


def segmented_argmax(session, gains: Shared, lengths: np.ndarray) -> Shared:
    """Shared index (within its segment) of the first maximum of each segment.

    ``gains`` is a flat integer ``Shared`` (``frac == 0``); ``lengths`` (public, every
    entry >= 1) splits it into consecutive segments.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    vals = gains.share.astype(np.uint64, copy=True)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    # position of each element inside its segment: a public value, party 0 holds it
    local_pos = (np.arange(vals.size, dtype=np.int64) - np.repeat(starts, lengths)).astype(np.uint64)
    idx = local_pos if session.party == 0 else np.zeros_like(local_pos)
    lens = lengths.copy()
    while lens.size and lens.max() > 1:
        npairs = lens // 2
        odd = lens % 2
        seg_of_pair = np.repeat(np.arange(lens.size), npairs)
        pair_rank = np.arange(seg_of_pair.size) - np.repeat(np.cumsum(npairs) - npairs, npairs)
        left = starts[seg_of_pair] + 2 * pair_rank
        right = left + 1
        new_lens = npairs + odd
        new_starts = np.concatenate([[0], np.cumsum(new_lens)[:-1]]).astype(np.int64)
        n_new = int(new_lens.sum())
        lv, rv = Shared(session, vals[left], 0), Shared(session, vals[right], 0)
        c = compare.greater(rv, lv)
        dv = vals[right] - vals[left]
        di = idx[right] - idx[left]
        cc = Shared(session, np.concatenate([c.share, c.share]), 0)
        prod = (cc * Shared(session, np.concatenate([dv, di]), 0)).share
        npr = left.size
        new_vals = np.empty(n_new, dtype=np.uint64)
        new_idx = np.empty(n_new, dtype=np.uint64)
        dest = new_starts[seg_of_pair] + pair_rank
        new_vals[dest] = vals[left] + prod[:npr]
        new_idx[dest] = idx[left] + prod[npr:]
        carry_seg = np.flatnonzero(odd)
        src = starts[carry_seg] + lens[carry_seg] - 1
        dst = new_starts[carry_seg] + npairs[carry_seg]
        new_vals[dst] = vals[src]
        new_idx[dst] = idx[src]
        vals, idx, lens, starts = new_vals, new_idx, new_lens, new_starts
    return Shared(session, idx, 0)
