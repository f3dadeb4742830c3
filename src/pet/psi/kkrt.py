"""KKRT private set intersection: a batched OPRF from OT extension (semi-honest).

Kolesnikov, Kumaresan, Rosulek, Trieu, "Efficient Batched Oblivious PRF with
Applications to Private Set Intersection", CCS 2016 (KKRT16), with the cuckoo-hashing
layout of Pinkas, Schneider, Zohner (PSZ14/18). Same contract as
:func:`~pet.psi.ecdh_psi`: same item encodings (:mod:`pet.psi.encoding`), the same
:class:`~pet.psi.ecdh.PsiResult`, duplicates rejected, ``reveal="both" | 0 | 1``.

Roles: the *receiver* ``R`` (its items ``Y``, ``n_R``) evaluates the OPRF on its items,
the *sender* ``S`` (items ``X``, ``n_S``) holds the OPRF key. With ``reveal=r`` party ``r``
is the receiver; with ``"both"`` the party with the smaller set is (party 0 on a tie).

Protocol (``lambda = 40``):

0. Header exchange (protocol, version, operation, reveal mode, key columns, set size,
   party, a fresh 32-byte nonce). Either set empty: both return an empty result, nothing
   more is sent. ``hid`` = SHA-256 of both nonces (party 0's first) seeds the cuckoo hash
   functions, so ``R`` can build its table while ``S`` prepares the base OTs.
1. Base OTs: 512 1-out-of-2 OTs of seeds, ``S`` the base-OT receiver with random choice
   bits ``s`` (:func:`pet.mpc.ot.kkrt_ext.base_ots_one_way`; one message each way; the
   session id ``sid`` comes from both parties' nonces).
2. Both hash each item's canonical encoding to 128 bits: ``h(x)`` = BLAKE2b-128 with
   personalisation ``pet-kkrt-item``. ``R`` places its items in a stashless cuckoo table
   of ``m`` bins with 3 hash functions (:mod:`pet.psi.cuckoo`: ``m`` for failure
   ``<= 2^-40`` at ``n_R``; about ``1.54 n_R`` at 2^20). A failed placement is detected
   and retried with the next seed (``hid``, attempt), at most :data:`MAX_ATTEMPTS` times,
   never by dropping an item. ``R`` sends the attempt number.
3. OPRF (:mod:`pet.mpc.ot.kkrt_ext`): for bin ``b`` holding ``y`` placed by function ``i``,
   ``R``'s codeword is ``C(h(y) ^ i)`` (``C`` = the 512-bit pseudorandom code, AES under
   four keys derived from ``sid``; ``i`` is XORed into the high word); empty bins use
   the all-zero codeword. ``R`` sends ``u`` (64 bytes per bin) in chunks of
   ``chunk_size`` bins and keeps ``t_b``; ``S`` gets ``q_b = t_b ^ (C(y_b) & s)``.
4. OPRF outputs, with the random oracle ``H`` = BLAKE2b-``ell`` (salt = ``sid[:16]``,
   personalisation ``pet-kkrt-oprf``) of the 512-bit value and the bin number:
   ``R``: ``v(y) = H(t_b, b)``; ``S``, for each item ``x`` and function ``i`` with
   ``b = h_i(x)``: ``F_i(x) = H(q_b ^ (C(h(x) ^ i) & s), b)``.
   ``S`` shuffles its items with one CSPRNG permutation ``pi`` and sends the three lists
   ``[F_i(x_pi(0)), F_i(x_pi(1)), ...]`` (``i = 0, 1, 2``; ``ell`` bytes per entry).
5. ``R`` looks up ``v(y)`` in list ``i`` of ``y`` (one hash table over the three lists). A
   hit at position ``p`` means ``y`` = item ``pi(p)`` of ``S``. Joint order: ascending
   ``p`` (a uniformly random order neither party chose). With ``reveal="both"`` ``R``
   sends ``S`` the sorted positions ``p`` of the matches (8 bytes each).

Mask length: ``ell = ceil((40 + ceil(log2(n0 n1))) / 8)`` bytes, so the probability that
any of the ``n_R n_S`` (own value, entry of the matching list) pairs collides falsely is
at most ``2^-40`` (PSZ14's ``lambda + log2(n0 n1)``); 10 bytes at 2^20 x 2^20. A value
matching two entries of one list is detected and raises :class:`~pet.errors.ProtocolError`.

What each party learns (beyond its own input and output):

- ``R``: ``n_S``; which of its items are in ``X`` (an entry of list ``i`` equal to
  ``v(y)``); every other entry is an OPRF output on an input it does not hold,
  pseudorandom (KKRT16, Theorem 2); positions ``p`` are of a permutation it never sees.
- ``S``: ``n_R`` and the cuckoo attempt number (``> 0`` only after a ``<= 2^-40`` event,
  which depends on ``Y``); every ``u`` column is masked by an AES-CTR stream of a base-OT
  seed it did not receive. With ``reveal="both"`` also the intersection (the positions
  ``p``), which it maps back through ``pi``; with ``reveal=R`` nothing else.

Communication: ``R -> S`` 64 bytes per bin (about ``98 n_R`` bytes at 2^20) plus the base
OTs (32 KiB); ``S -> R`` ``3 ell n_S`` bytes (30 bytes per item at 2^20), plus 8 bytes per
match with ``"both"``.

Memory: the item hashes (16 B), cuckoo positions (24 B) and per-item OPRF values or the
three lists (``ell`` or ``3 ell`` B) per item, plus one chunk of the OT matrix
(``64 chunk_size`` B, several temporaries). Items are read from the
:class:`~pet.psi.store.EncodedItems` store's buffer by a BLAKE2b kernel, without a Python
object per item.
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np

from pet._random import secure_permutation
from pet._validate import NOT_GIVEN, check_party
from pet.errors import InputError, ProtocolError
from pet.mpc.ot.kkrt_ext import CODE_BITS, KkrtReceiver, KkrtSender, PseudorandomCode, base_ots_one_way
from pet.psi import cuckoo, kkrt_kernels
from pet.psi._parallel import resolve_workers
from pet.psi.ecdh import PsiResult, check_channel, check_reveal, prepare, protocol_mismatch
from pet.psi.store import EncodedItems

__all__ = ["DEFAULT_CHUNK", "MAX_ATTEMPTS", "item_hashes", "kkrt_psi", "mask_bytes", "run_protocol"]

_PROTO = "pet.psi.kkrt"
_VERSION = 1
#: Bins per OT-extension message (``u`` = 64 bytes per bin: 2 MiB).
DEFAULT_CHUNK = 1 << 15
#: Cuckoo placements tried (fresh hash functions each) before giving up.
MAX_ATTEMPTS = 8
_ITEM_PERSON = b"pet-kkrt-item"
_OPRF_PERSON = b"pet-kkrt-oprf"


def mask_bytes(n0: int, n1: int) -> int:
    """Bytes of the sender's masks: ``ceil((40 + ceil(log2(n0 n1))) / 8)`` (module doc)."""
    pairs = max(2, n0 * n1)
    return -(-(40 + math.ceil(math.log2(pairs))) // 8)


def item_hashes(store: EncodedItems) -> np.ndarray:
    """(n, 2) uint64: BLAKE2b-128 (person ``pet-kkrt-item``) of each item's encoding, read
    from the store's buffer (items in store order, after de-duplication)."""
    n = len(store)
    out = np.zeros((n, 16), dtype=np.uint8)
    if n:
        offsets = store._offsets if store._offsets is not None else np.zeros(0, dtype=np.uint32)
        rows = store.rows_of(np.arange(n, dtype=np.int64))
        kkrt_kernels.blake2b_many(store._view, offsets, store._width, rows,
                                  kkrt_kernels.blake2b_init(16, person=_ITEM_PERSON), out)
    return out.view("<u8").astype(np.uint64, copy=False).reshape(n, 2)


def _code_inputs(h: np.ndarray, items: np.ndarray, which: np.ndarray) -> np.ndarray:
    """The code inputs ``h(x) ^ i`` (i in the high word) of the pairs (items, which)."""
    x = h[items]
    x[:, 1] ^= which.astype(np.uint64)
    return x


class _Window:
    """Run per-chunk kernels (numba, ``nogil``) in worker threads while the calling thread
    receives and extends the next chunk; at most ``2 * workers`` chunks in flight (bounded
    memory). ``workers == 1`` runs them inline."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = None
        self._pending = []
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pet-kkrt")

    def submit(self, fn, *args) -> None:
        if self._pool is None:
            fn(*args)
            return
        self._pending.append(self._pool.submit(fn, *args))
        while len(self._pending) > 2 * self.workers:
            self._pending.pop(0).result()

    def drain(self) -> None:
        while self._pending:
            self._pending.pop(0).result()

    def close(self) -> None:
        if self._pool is not None:
            for f in self._pending:
                f.cancel()
            self._pool.shutdown(wait=True)


def _check_header(mine: dict, peer) -> dict:
    if isinstance(peer, dict) and peer.get("proto") == "pet.psi.ecdh":
        raise protocol_mismatch("kkrt", "ecdh")
    if not isinstance(peer, dict) or peer.get("proto") != _PROTO:
        raise ProtocolError(f"the peer is not running pet KKRT-PSI (got {str(peer)[:80]!r})")
    if peer.get("v") != _VERSION:
        raise ProtocolError(f"KKRT-PSI version mismatch: ours {_VERSION}, peer {peer.get('v')!r}")
    if peer.get("party") != 1 - mine["party"]:
        raise ProtocolError(f"both sides claim party {mine['party']}: one must be party 0 and the other party 1")
    for key, what in (("op", "operation"), ("mode", "reveal mode"), ("arity", "number of key columns")):
        if peer.get(key) != mine[key]:
            raise ProtocolError(f"the parties disagree on the {what}: ours {mine[key]!r}, peer {peer.get(key)!r}")
    n, chunk, nonce = peer.get("n"), peer.get("chunk"), peer.get("nonce")
    if not (isinstance(n, int) and 0 <= n < 2**40 and isinstance(chunk, int) and chunk >= 64 and chunk % 64 == 0
            and isinstance(nonce, bytes) and len(nonce) == 32 and nonce != mine["nonce"]):
        raise ProtocolError(f"malformed KKRT-PSI header from the peer: n={n!r}, chunk={chunk!r}")
    return peer


def receiver_party(mode: str, n0: int, n1: int) -> int:
    """The OPRF receiver: party ``r`` for ``reveal=r``; for ``"both"`` the smaller set (0 on a tie)."""
    if mode in ("0", "1"):
        return int(mode)
    return 0 if n0 <= n1 else 1


def _table_size(n_r: int, attempt: int, sizes) -> int:
    if sizes is not None and attempt < len(sizes):
        return int(sizes[attempt])
    return cuckoo.bin_count(n_r)


def run_protocol(channel, store: EncodedItems, *, party: int, op: str, mode: str, arity: int = 1,
                 chunk_size: int = DEFAULT_CHUNK, workers=None, _table_sizes=None) -> dict:
    """The two-party protocol on a store of encoded items. Returns a dict with
    ``peer_size``, ``attempt`` (cuckoo attempts used; receiver and sender), and, when this
    party learns it, ``matched`` (positions in ``store``, joint order). ``_table_sizes``
    (tests only, both parties alike) overrides the number of bins per attempt."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 64 or chunk_size % 64:
        raise InputError(f"chunk_size must be a positive multiple of 64 (bins per message), got {chunk_size!r}")
    n = len(store)
    header = {"proto": _PROTO, "v": _VERSION, "op": op, "party": party, "mode": mode, "arity": arity, "n": n,
              "chunk": chunk_size, "nonce": os.urandom(32)}
    peer = _check_header(header, channel.exchange(header))
    nonces = (header["nonce"], peer["nonce"]) if party == 0 else (peer["nonce"], header["nonce"])
    hid = hashlib.sha256(b"pet.psi.kkrt/hash-functions\x00" + nonces[0] + nonces[1]).digest()
    n_peer = peer["n"]
    chunk = min(chunk_size, peer["chunk"])
    n0, n1 = (n, n_peer) if party == 0 else (n_peer, n)
    learns = mode == "both" or mode == str(party)
    result = {"peer_size": n_peer, "attempt": 0}
    if n == 0 or n_peer == 0:
        if learns:
            result["matched"] = np.zeros(0, dtype=np.int64)
        return result
    ell = mask_bytes(n0, n1)
    window = _Window(resolve_workers(workers, n + n_peer))
    try:
        if receiver_party(mode, n0, n1) == party:
            matched, positions, attempt = _receive(channel, store, party, n_peer, ell, chunk, _table_sizes, window, hid)
            if mode == "both":
                channel.send(positions)
        else:
            perm, attempt = _send(channel, store, party, n_peer, ell, chunk, _table_sizes, window, hid)
            matched = _sender_result(channel, perm, n_peer) if mode == "both" else None
    finally:
        window.close()
    result["attempt"] = attempt
    if learns:
        result["matched"] = matched
    return result


def _receive(channel, store, party, n_s, ell, chunk, sizes, window, hid):
    """Receiver steps 1-5: returns (matched own positions, their list positions ``p``,
    both in the joint order; the cuckoo attempt used)."""
    h = item_hashes(store)
    n_r = h.shape[0]
    table = None
    for attempt in range(MAX_ATTEMPTS):
        table = cuckoo.build(h, _table_size(n_r, attempt, sizes), cuckoo.seed_key(hid, attempt))
        if table is not None:
            break
    sid, pairs = base_ots_one_way(channel, party, ot_sender=False)
    if table is None:
        channel.send({"attempt": -1})
        raise ProtocolError(f"KKRT-PSI: cuckoo hashing of {n_r} items failed {MAX_ATTEMPTS} times with fresh hash "
                            "functions (expected probability < 2^-40 each): no item was dropped; rerun the PSI")
    channel.send({"attempt": attempt})
    code = PseudorandomCode(sid)
    ot = KkrtReceiver(pairs)
    h0 = kkrt_kernels.blake2b_init(ell, salt=sid[:16], person=_OPRF_PERSON)
    vals = np.zeros((n_r, ell), dtype=np.uint8)
    m = table.m
    for lo in range(0, m, chunk):
        hi = min(m, lo + chunk)
        occupant = table.bin_item[lo:hi]
        full = np.flatnonzero(occupant >= 0)
        items = occupant[full]
        codes = np.zeros((4, hi - lo, 2), dtype=np.uint64)
        codes[:, full] = code.encode(_code_inputs(h, items, table.item_hash[items]))
        u, t = ot.extend(codes)
        channel.send(u)
        window.submit(kkrt_kernels.receiver_values, t, lo, table.bin_item, h0, vals)
    window.drain()
    slot, keys = kkrt_kernels.value_table(vals, table.item_hash)
    found = np.full(n_r, -1, dtype=np.int64)
    counts = []
    for i in range(cuckoo.HASHES):  # list i is matched while list i + 1 is on the wire
        masks = _as_masks(channel.recv(), n_s, ell, i)
        window.submit(lambda *a: counts.append(kkrt_kernels.match_list(*a)), slot, keys, vals, table.item_hash,
                      masks, i, found)
    window.drain()
    if any(c < 0 for c in counts):
        raise ProtocolError("KKRT-PSI: an OPRF value matches two of the peer's masks (probability < 2^-40); "
                            "rerun the PSI")
    items = np.flatnonzero(found >= 0)
    positions = found[items]
    order = np.argsort(positions, kind="stable")
    return items[order], positions[order], attempt


def _as_masks(msg, n_s: int, ell: int, i: int) -> np.ndarray:
    if not (isinstance(msg, np.ndarray) and msg.dtype == np.uint8 and msg.shape == (n_s, ell)):
        raise ProtocolError(f"KKRT-PSI: expected mask list {i} as a uint8 array of shape ({n_s}, {ell}), got "
                            f"{type(msg).__name__} {getattr(msg, 'shape', None)}")
    return msg


def _send(channel, store, party, n_r, ell, chunk, sizes, window, hid):
    """Sender steps 1-4: returns (the permutation ``pi`` of the mask lists, attempt)."""
    h = item_hashes(store)
    sid, choices, keys = base_ots_one_way(channel, party, ot_sender=True)
    n_s = h.shape[0]
    perm = secure_permutation(n_s)
    pos = np.empty(n_s, dtype=np.int64)
    pos[perm] = np.arange(n_s, dtype=np.int64)
    msg = channel.recv()
    attempt = msg.get("attempt") if isinstance(msg, dict) else None
    if attempt == -1:
        raise ProtocolError("KKRT-PSI: the peer could not place its items in a cuckoo table (a < 2^-40 event, "
                            f"{MAX_ATTEMPTS} times); rerun the PSI")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt < MAX_ATTEMPTS:
        raise ProtocolError(f"KKRT-PSI: malformed cuckoo attempt number from the peer ({str(msg)[:40]!r})")
    m = _table_size(n_r, attempt, sizes)
    bins = cuckoo.hash_bins(h, m, cuckoo.seed_key(hid, attempt))
    flat = bins.ravel()
    n_chunks = -(-m // chunk)
    chunk_of = (flat // chunk).astype(np.uint32 if n_chunks >= 1 << 16 else np.uint16)
    order = np.argsort(chunk_of, kind="stable")  # a radix sort of small ints: pairs grouped by chunk
    chunk_of = chunk_of[order]
    pair_item = order // cuckoo.HASHES
    pair_hash = (order % cuckoo.HASHES).astype(np.int8)
    pair_bin = flat[order]
    del order, bins, flat
    code = PseudorandomCode(sid)
    ot = KkrtSender(choices, keys)
    h0 = kkrt_kernels.blake2b_init(ell, salt=sid[:16], person=_OPRF_PERSON)
    masks = np.zeros((cuckoo.HASHES, n_s, ell), dtype=np.uint8)
    for k in range(n_chunks):
        lo = k * chunk
        u = channel.recv()
        words = (min(m, lo + chunk) - lo) // 64
        if not (isinstance(u, np.ndarray) and u.dtype == np.uint64 and u.shape == (CODE_BITS, words)):
            raise ProtocolError(f"KKRT-PSI: the peer's OT matrix {k} is not a ({CODE_BITS}, {words}) uint64 array")
        q = ot.extend(u)
        a, b = np.searchsorted(chunk_of, (k, k + 1))  # the pairs of this chunk
        window.submit(_chunk_masks, q, lo, h, code, pair_item[a:b], pair_hash[a:b], pair_bin[a:b], ot.s, pos, h0,
                      masks)
    window.drain()
    for i in range(cuckoo.HASHES):
        channel.send(masks[i])
    return perm, attempt


def _chunk_masks(q, lo, h, code, items, which, bins, s, pos, h0, masks) -> None:
    """Sender step 4 for one chunk: the codewords of its (item, function) pairs and their
    OPRF outputs, written to ``masks`` at the items' shuffled positions."""
    codes = code.encode(_code_inputs(h, items, which))
    kkrt_kernels.sender_masks(q, lo, items, which, bins, codes, s, pos, h0, masks)


def _sender_result(channel, perm: np.ndarray, n_r: int) -> np.ndarray:
    """``reveal="both"``: the receiver's sorted list positions -> own positions, joint order."""
    got = channel.recv()
    n_s = perm.shape[0]
    if not (isinstance(got, np.ndarray) and got.dtype == np.int64 and got.ndim == 1
            and got.size <= min(n_r, n_s)):
        raise ProtocolError("KKRT-PSI: the peer's result is not a 1-D int64 array of at most min(n0, n1) positions")
    if got.size and (got[0] < 0 or got[-1] >= n_s or np.any(got[1:] <= got[:-1])):
        raise ProtocolError("KKRT-PSI: the peer's result positions are out of range or not strictly increasing")
    return perm[got]


def kkrt_psi(channel, items, *, party, reveal=NOT_GIVEN, reveal_to=NOT_GIVEN, dedupe: bool = False,
             chunk_size: int = DEFAULT_CHUNK, workers=None) -> PsiResult:
    """Private set intersection of this party's ``items`` with the peer's, by KKRT16
    (OT-extension OPRF; see the module docstring for the protocol and what each party
    learns). The contract of :func:`~pet.psi.ecdh_psi`: the same items (sequences of str,
    bytes, int, tuples, or an :class:`~pet.psi.store.EncodedItems` store), ``party``,
    ``reveal`` / ``reveal_to``, ``dedupe``; returns a :class:`~pet.psi.PsiResult` with
    ``.items`` in this party's input order and ``.indices`` in a joint order identical
    at both parties. ``chunk_size``: cuckoo bins per message (a multiple of 64; 64 bytes
    per bin). ``workers``: threads for the per-chunk hashing (default: all cores from
    20,000 items, else inline)."""
    check_channel(channel)
    party = check_party(party)
    mode = check_reveal(reveal, reveal_to)
    values, store = prepare(items, dedupe=dedupe)
    before = channel.stats.snapshot()
    resolve_workers(workers, 0)
    out = run_protocol(channel, store, party=party, op="psi", mode=mode, chunk_size=chunk_size, workers=workers)
    stats = channel.stats.snapshot() - before
    if "matched" not in out:
        return PsiResult(None, None, None, out["peer_size"], stats)
    indices = store.rows_of(out["matched"])
    own_order = np.sort(out["matched"])
    if values is None:
        found = store.items(own_order)
    else:
        found = [values[i] for i in store.rows_of(own_order).tolist()]
    return PsiResult(found, indices, int(indices.size), out["peer_size"], stats)


def align_store(channel, store: EncodedItems, path, output, *, party: int, mode: str, arity: int, dedupe: bool,
                header: bool, chunk_size: int = DEFAULT_CHUNK) -> int | None:
    """:func:`pet.psi.files.align_store` by KKRT: the protocol on the keys of ``path``
    already encoded in ``store``, then the matching rows written to ``output`` in the
    joint order (streaming, :func:`~pet.psi.write_rows`). Returns the rows written, or
    None at a party that does not learn the intersection."""
    from pet.psi.ecdh import drop_duplicates
    from pet.psi.files import write_rows

    n_rows = store.n_rows
    store, _ = drop_duplicates(store, dedupe=dedupe, name=store.name)
    out = run_protocol(channel, store, party=party, op="align", mode=mode, arity=arity, chunk_size=chunk_size)
    if "matched" not in out:
        return None
    rows = store.rows_of(out["matched"])
    del store, out
    return write_rows(path, rows, output, header=header, total_rows=n_rows)
