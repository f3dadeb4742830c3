"""ECDH private set intersection on Curve25519 (semi-honest).

Protocol (party ``P`` holds items ``X``, peer holds ``Y``; ``H`` is the RFC 9380 Elligator 2
encoding of the item's canonical bytes, :mod:`pet.psi.encoding`, with DST
``pet-psi-v1-with-curve25519_XMD:SHA-512_ELL2_<suite>``):

0. Both exchange a header: protocol, mode, hash suite, set size ``n``, party number (and the
   number of key columns for :func:`~pet.psi.align`); any mismatch is a
   :class:`~pet.errors.ProtocolError`. The digest length ``ell`` follows from both sizes.
1. Each party draws a secret X25519 scalar ``k`` (``secrets``), shuffles its items with a
   CSPRNG permutation, and sends ``x(k * H(x))`` for each (32 bytes per item), in chunks.
2. Each party computes ``D(y) = BLAKE2b_ell(x(k * (k' * H(y))))`` for every point the peer
   sent (``k * k' = k' * k``: the scalar multiplications commute).
3. Return step, by mode:

   - ``reveal="both"``: each sends the peer the digests of the peer's items, in the
     peer's (shuffled) order. Each matches its own digests against the peer's.
   - ``reveal=r``: only the party ``1 - r`` sends the digests of ``r``'s items; party ``r``
     matches, party ``1 - r`` receives nothing more and returns an empty result.
   - cardinality: each sends the digests of the peer's items in a *fresh* random order, so
     the peer can count matches but not tell which of its items matched.

What each party learns (beyond its own input and output):

- ``reveal="both"``: the intersection and the peer's set size, both parties.
- ``reveal=r``: party ``r`` learns the intersection and the peer's set size; the other
  party learns only party ``r``'s set size (it receives one header and ``n_r`` points
  ``k_r * H(x)``, pseudo-random under the decisional Diffie-Hellman assumption).
- :func:`psi_cardinality`: both learn the intersection size and the peer's set size.

Digest length: with ``N = n0 * n1 + C(n0, 2) + C(n1, 2)`` pairs that must not collide,
``ell = ceil((40 + ceil(log2 N)) / 8)`` bytes (at least 5, at most 32), so the probability
of a false match (or an ambiguous one) is at most ``N * 2^(-8 ell) <= 2^-40``.
For 2^20 x 2^20 this is 11 bytes.

Joint order: the matching items are sorted by their doubly-blinded digest, which both
parties hold identically, so ``indices[i]`` of party 0 and of party 1 are the same item.

Communication: ``32 + ell`` bytes per item in each direction (``32`` in the direction of a
non-receiving party), plus one small header and per-chunk frame headers.
Memory (a party's process; worker threads hold only their chunks). The items are held as an
:class:`~pet.psi.store.EncodedItems` store -- their canonical encodings back to back, no
Python object per item -- read a chunk at a time by shuffled position. Per own item: the
encoding (``1 +`` UTF-8 length for a str) ``+ 4`` bytes of offset unless all encodings have
the same length ``(+ 8`` row number with ``dedupe``), ``8`` (the permutation) and ``ell``
(own digests); per peer item ``ell`` (twice while the chunks are joined); plus ``2 *
workers`` chunks in flight (``chunk_size`` items of ~100 bytes each). The final matching
(:func:`match_digests`: one sort of both digest sets together) is the peak: about 80 bytes
per item more at 2^20 x 2^20 for a moment (80 MiB traced; 1.0 s).
``pet psi`` at 2^20 x 2^20 (15-byte keys, read from CSV): 292 B per item above the
interpreter and libraries, against 441 B when the table and a list of encodings were held
(docs/psi.md). :func:`ecdh_psi` also keeps the caller's list of values (``.items``)
unless ``items`` is already a store (:func:`~pet.psi.encode_chunks`,
:func:`~pet.psi.encode_file`); the items are then decoded from their encodings.

Hash suite: ``"NU"`` (encode_to_curve, default) needs one inversion and one Legendre symbol
per item; ``"RO"`` (hash_to_curve, indistinguishable from a random oracle) adds two square
roots and a point addition, about +60 us per item here -- more than a scalar
multiplication. Both are RFC 9380 suites checked against the RFC test vectors.
"""

from __future__ import annotations

import math
import secrets
import warnings
from dataclasses import dataclass, field

import numpy as np

from pet._random import secure_permutation
from pet._validate import NOT_GIVEN, check_party, check_receiver
from pet.errors import InputError, PetTypeError, ProtocolError
from pet.psi import _kernels
from pet.psi._parallel import OrderedWindow, Pool, Progress, resolve_workers
from pet.psi.encoding import to_list
from pet.psi.store import EncodedItems, store_from_values
from pet.transport.channel import Channel, ChannelStats

__all__ = ["PsiResult", "digest_bytes", "dst_for", "ecdh_psi", "match_digests", "psi_cardinality", "run_protocol"]

_PROTO = "pet.psi.ecdh"
_VERSION = 1
_MIN_CHUNK = 256


def dst_for(suite: str) -> bytes:
    """The domain-separation tag of pet's PSI hash for ``suite`` ("NU" or "RO")."""
    return f"pet-psi-v1-with-curve25519_XMD:SHA-512_ELL2_{suite}_".encode()


def digest_bytes(n0: int, n1: int) -> int:
    """Bytes of the doubly-blinded digest for set sizes ``n0`` and ``n1`` (see module doc)."""
    pairs = n0 * n1 + n0 * (n0 - 1) // 2 + n1 * (n1 - 1) // 2
    bits = 40 + max(0, math.ceil(math.log2(pairs))) if pairs > 1 else 40
    return min(32, max(5, -(-bits // 8)))


@dataclass(frozen=True)
class PsiResult:
    """Result of one PSI run for one party.

    items : the intersecting items, in this party's own input order (None if this party
        was not to learn the intersection).
    indices : int64 array of positions in this party's input, in the joint order shared
        with the peer: ``items_0[indices_0[i]]`` matches ``items_1[indices_1[i]]``.
    size : number of intersecting items (None if not learned).
    peer_size : the peer's set size (always learned).
    stats : channel traffic of this run (bytes and messages each way).
    """

    items: list | None
    indices: np.ndarray | None
    size: int | None
    peer_size: int
    stats: ChannelStats = field(repr=False, default_factory=ChannelStats)

    def __len__(self) -> int:
        return self.size or 0


def check_reveal(reveal=NOT_GIVEN, reveal_to=NOT_GIVEN, *, deprecated_reveal: bool = False) -> str:
    """The internal mode string (``"both"``, ``"0"``, ``"1"``) of who learns a PSI result.

    ``reveal_to`` (None: both, 0 or 1) is the spelling shared with :mod:`pet.mpc` and
    :mod:`pet.sql`; ``reveal`` (``"both"``, 0 or 1) is :func:`ecdh_psi`'s fixed spelling,
    accepted silently there and with a DeprecationWarning where ``deprecated_reveal``.
    """
    if reveal is not NOT_GIVEN and reveal_to is not NOT_GIVEN:
        raise InputError("pass reveal_to= or reveal=, not both")
    if reveal_to is not NOT_GIVEN:
        to = check_receiver(reveal_to, "reveal_to")
        return "both" if to is None else str(to)
    if reveal is NOT_GIVEN:
        return "both"
    if deprecated_reveal:
        warnings.warn("reveal= is deprecated here: pass reveal_to= (None for both parties, 0 or 1)",
                      DeprecationWarning, stacklevel=3)
    if isinstance(reveal, bool) or reveal not in ("both", 0, 1):
        raise InputError(f"reveal must be 'both', 0 or 1, got {reveal!r}")
    return str(reveal)


def check_channel(channel) -> None:
    """PetTypeError unless ``channel`` is a :class:`pet.transport.Channel`."""
    if not isinstance(channel, Channel):
        raise PetTypeError(f"channel must be a pet.transport.Channel, got {type(channel).__name__}")


def check_options(suite, chunk_size, workers=None, progress=None) -> None:
    """Validate the hashing/batching options shared by the PSI entry points."""
    if suite not in ("NU", "RO"):
        raise InputError(f"hash_suite must be 'NU' or 'RO', got {suite!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < _MIN_CHUNK:
        raise InputError(f"chunk_size must be an int >= {_MIN_CHUNK}, got {chunk_size!r}")
    resolve_workers(workers, 0)
    if not (progress in (None, False, True) or callable(progress)):
        raise InputError(f"progress must be a bool or a callable(done, total), got {progress!r}")


def drop_duplicates(store: EncodedItems, *, dedupe: bool, name: str) -> tuple[EncodedItems, np.ndarray]:
    """``(store, positions)``: raise on duplicates unless ``dedupe``, which keeps first
    occurrences; ``positions`` maps each kept item back to its input row."""
    if store.duplicates and not dedupe:
        raise InputError(
            f"{name}: {store.duplicates} duplicate item(s) (rows repeating an earlier item); PSI needs "
            "distinct items -- pass dedupe=True to keep the first occurrence of each"
        )
    kept = store.deduplicated()
    return kept, kept.positions


def prepare(items, *, dedupe: bool, name: str = "items") -> tuple[list | None, EncodedItems]:
    """Validate and encode ``items`` into a compact store: ``(values, store)``, where
    ``values`` is the items as a list (None when ``items`` already is an
    :class:`~pet.psi.store.EncodedItems` store) and ``store`` holds the items to run on
    (first occurrences only with ``dedupe``; ``store.rows_of`` maps back to input rows)."""
    if isinstance(items, EncodedItems):
        values, store = None, items
    else:
        values = to_list(items, name)
        store = store_from_values(values, name)
    store, _ = drop_duplicates(store, dedupe=dedupe, name=name)
    return values, store


def _take(encoded, idx: np.ndarray) -> list[bytes]:
    """The encodings at positions ``idx`` of a list or an :class:`EncodedItems` store."""
    if isinstance(encoded, EncodedItems):
        return encoded.take(idx)
    return [encoded[i] for i in idx.tolist()]


def protocol_mismatch(ours: str, peer: str) -> ProtocolError:
    """The error both parties raise when their PSI headers name different protocols."""
    return ProtocolError(f"the parties chose different PSI protocols: this party {ours!r} ({ours.upper()}-PSI), "
                         f"the peer {peer!r} ({peer.upper()}-PSI); "
                         "both must pass the same one (pet sql --psi-protocol, pet psi --protocol, the job "
                         "parameter protocol, or protocol= in align / sql psi_options)")


def _check_header(mine: dict, peer) -> dict:
    if isinstance(peer, dict) and peer.get("proto") == "pet.psi.kkrt":
        raise protocol_mismatch("ecdh", "kkrt")
    if not isinstance(peer, dict) or peer.get("proto") != _PROTO:
        raise ProtocolError(f"the peer is not running pet ECDH-PSI (got {str(peer)[:80]!r})")
    if peer.get("v") != _VERSION:
        raise ProtocolError(f"PSI protocol version mismatch: ours {_VERSION}, peer {peer.get('v')!r}")
    if peer.get("party") != 1 - mine["party"]:
        raise ProtocolError(
            f"both sides claim party {mine['party']}: one must be party 0 and the other party 1"
        )
    for key, what in (("op", "operation"), ("mode", "reveal mode"), ("suite", "hash suite"),
                      ("arity", "number of key columns")):
        if peer.get(key) != mine[key]:
            raise ProtocolError(f"the parties disagree on the {what}: ours {mine[key]!r}, peer {peer.get(key)!r}")
    n, chunk = peer.get("n"), peer.get("chunk")
    if not (isinstance(n, int) and n >= 0 and isinstance(chunk, int) and chunk >= _MIN_CHUNK):
        raise ProtocolError(f"malformed PSI header from the peer: n={n!r}, chunk={chunk!r}")
    return peer


def _as_rows(msg, rows: int, width: int, what: str) -> bytes:
    if not (isinstance(msg, np.ndarray) and msg.dtype == np.uint8 and msg.ndim == 2
            and msg.shape == (rows, width)):
        shape = getattr(msg, "shape", None)
        raise ProtocolError(f"expected {what} as a uint8 array of shape ({rows}, {width}), got "
                            f"{type(msg).__name__} {shape}")
    return msg.tobytes()


def run_protocol(channel, encoded, *, party: int, op: str, mode: str, suite: str = "NU",
                 arity: int = 1, workers=None, chunk_size: int = 1 << 14, progress=None,
                 key: bytes | None = None) -> dict:
    """The two-party protocol on encoded items (a list of ``bytes``, or an
    :class:`~pet.psi.store.EncodedItems` store read a chunk at a time by shuffled position).
    Returns a dict with ``peer_size``, and (when this party learns it) ``matched``
    (positions in ``encoded``, joint order) or ``count``. ``key`` is for tests only
    (default: a fresh CSPRNG scalar)."""
    n = len(encoded)
    header = {"proto": _PROTO, "v": _VERSION, "op": op, "party": party, "mode": mode, "suite": suite,
              "arity": arity, "n": n, "chunk": chunk_size}
    peer = _check_header(header, channel.exchange(header))
    n_peer = peer["n"]
    chunk = min(chunk_size, peer["chunk"])
    ell = digest_bytes(*((n, n_peer) if party == 0 else (n_peer, n)))
    key = secrets.token_bytes(32) if key is None else key
    dst = dst_for(suite)

    perm = secure_permutation(n)
    own_chunks, peer_chunks = -(-n // chunk), -(-n_peer // chunk)
    n_workers = resolve_workers(workers, n + n_peer)
    bar = Progress(progress, n + n_peer, f"PSI party {party}")
    peer_digests: list[bytes] = []
    try:
        with Pool(n_workers) as pool:
            own, theirs = OrderedWindow(pool), OrderedWindow(pool)
            limit = 2 * n_workers
            next_own = 0
            for r in range(max(own_chunks, peer_chunks)):
                while next_own < own_chunks and len(own) < limit:
                    msgs = _take(encoded, perm[next_own * chunk:(next_own + 1) * chunk])
                    own.submit(_kernels.blind, key, msgs, dst, suite)
                    del msgs
                    next_own += 1
                if r < own_chunks:
                    mine = own.pop()
                    bar.update(len(mine) // 32)
                else:
                    mine = b""
                got = channel.exchange(np.frombuffer(mine, dtype=np.uint8).reshape(-1, 32))
                rows = max(0, min(chunk, n_peer - r * chunk))
                points = _as_rows(got, rows, 32, f"blinded points (round {r})")
                if rows:
                    theirs.submit(_kernels.reblind, key, points, ell)
                while len(theirs) > limit:
                    d = theirs.pop()
                    peer_digests.append(d)
                    bar.update(len(d) // ell)
            while len(theirs):
                d = theirs.pop()
                peer_digests.append(d)
                bar.update(len(d) // ell)
    finally:
        bar.close()
    peer_d = np.frombuffer(b"".join(peer_digests), dtype=np.uint8).reshape(-1, ell)
    del peer_digests

    learns = mode in ("both", "cardinality") or mode == str(party)
    sends = mode in ("both", "cardinality") or mode == str(1 - party)
    if mode == "cardinality":
        peer_d = peer_d[secure_permutation(n_peer)]
    if sends and learns:
        got = channel.exchange(peer_d)
    elif sends:
        channel.send(peer_d)
        got = None
    else:
        got = channel.recv()
    result = {"peer_size": n_peer}
    if not learns:
        return result
    own_d = np.frombuffer(_as_rows(got, n, ell, "doubly-blinded digests"), dtype=np.uint8).reshape(n, ell)
    pos = match_digests(own_d, peer_d)
    if mode == "cardinality":
        result["count"] = int(pos.size)
        return result
    result["matched"] = perm[pos]
    return result


def match_digests(own: np.ndarray, peer: np.ndarray) -> np.ndarray:
    """Rows of ``own`` whose digest is also a row of ``peer``, in increasing digest order.

    One sort of both sets together: equal digests end up adjacent. A digest repeated within
    one side means a collision (probability < 2^-40 with :func:`digest_bytes`), which would
    make the match ambiguous, so it raises :class:`~pet.errors.ProtocolError`.
    """
    n, ell = own.shape
    both = np.concatenate([own, peer]).view(f"S{ell}").ravel()
    order = np.argsort(both, kind="stable")
    ranked = both[order]
    same = np.flatnonzero(ranked[1:] == ranked[:-1])
    first, second = order[same], order[same + 1]
    if np.any((first < n) == (second < n)) or np.any(same[1:] == same[:-1] + 1):
        raise ProtocolError("doubly-blinded digests collide; rerun the PSI (fresh keys)")
    return np.minimum(first, second).astype(np.int64)


def ecdh_psi(channel, items, *, party, reveal=NOT_GIVEN, reveal_to=NOT_GIVEN, dedupe: bool = False,
             hash_suite: str = "NU", workers=None, chunk_size: int = 1 << 14, progress=None) -> PsiResult:
    """Private set intersection of this party's ``items`` with the peer's.

    Both parties call it with their own channel end, items and party number (0 or 1) and the
    same ``reveal``. See the module docstring for the protocol and what each party learns.

    Parameters
    ----------
    channel : :class:`pet.transport.Channel` to the peer.
    items : sequence of str, bytes or int (list, tuple, numpy array, pandas Series/Index),
        or an :class:`~pet.psi.store.EncodedItems` store built chunk by chunk
        (:func:`~pet.psi.encode_chunks`, :func:`~pet.psi.encode_file`) for large inputs.
        Encoding: :mod:`pet.psi.encoding` (``123`` and ``"123"`` do not match).
    party : 0 or 1.
    reveal_to : ``None`` (both, default), ``0`` or ``1`` -- who learns the intersection
        (the receiver spelling shared by every package).
    reveal : the same as ``"both"``, ``0`` or ``1`` (the original spelling, kept).
    dedupe : duplicates raise :class:`~pet.errors.InputError` unless True, which keeps the
        first occurrence of each item.
    hash_suite : ``"NU"`` (RFC 9380 encode_to_curve, default) or ``"RO"`` (hash_to_curve).
    workers : threads for hashing and scalar multiplication (default: all cores for
        20,000+ items, else inline).
    chunk_size : items per message and per work unit (bounded memory).
    progress : True for a tqdm bar, or a callable ``f(done, total)``.

    Returns
    -------
    :class:`PsiResult`. A party that does not learn the intersection gets
    ``items = indices = size = None`` and only ``peer_size``.
    """
    check_channel(channel)
    party = check_party(party)
    mode = check_reveal(reveal, reveal_to)
    check_options(hash_suite, chunk_size, workers, progress)
    values, store = prepare(items, dedupe=dedupe)
    before = channel.stats.snapshot()
    out = run_protocol(channel, store, party=party, op="psi", mode=mode, suite=hash_suite,
                       workers=workers, chunk_size=chunk_size, progress=progress)
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


def psi_cardinality(channel, items, *, party, dedupe: bool = False, hash_suite: str = "NU",
                    workers=None, chunk_size: int = 1 << 14, progress=None) -> int:
    """The size of the intersection, learned by both parties -- and nothing else about it.

    Same protocol as :func:`ecdh_psi`, except that each party returns the doubly-blinded
    digests of the peer's items in a fresh random order, so neither can tell which of its
    items matched. Each party learns the intersection size and the peer's set size.
    """
    check_channel(channel)
    party = check_party(party)
    check_options(hash_suite, chunk_size, workers, progress)
    _, store = prepare(items, dedupe=dedupe)
    out = run_protocol(channel, store, party=party, op="cardinality", mode="cardinality",
                       suite=hash_suite, workers=workers, chunk_size=chunk_size, progress=progress)
    return out["count"]
