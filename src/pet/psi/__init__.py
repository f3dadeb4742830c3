"""Private set intersection and table alignment.

- :func:`ecdh_psi` ``(channel, items, *, party, reveal="both") -> PsiResult`` -- ECDH-PSI on
  Curve25519 (X25519 scalar multiplication, RFC 9380 Elligator 2 hash-to-curve).
  ``PsiResult.items`` is the intersection in the party's own input order, ``.indices`` the
  positions of the matching rows in a *joint* order identical on both sides, ``.size``.
- :func:`kkrt_psi` -- the same contract by KKRT16 (OPRF from OT extension, cuckoo hashing):
  an order of magnitude faster than ECDH for large sets (:mod:`pet.psi.kkrt`).
- :func:`psi_cardinality` -- only the intersection size, to both parties.
- :func:`align` ``(channel, df, on, *, party) -> DataFrame`` -- the rows of ``df`` whose key
  (one column or several) is in the intersection, in the joint order: row ``i`` of party 0's
  result matches row ``i`` of party 1's.

Large inputs (bounded memory per item, :mod:`pet.psi.store`, :mod:`pet.psi.files`):
:func:`encode_file` (key column(s) of a CSV/Parquet file, read in batches) or
:func:`encode_chunks` (an iterable of chunks) build an :class:`EncodedItems` store that
:func:`ecdh_psi` and :func:`psi_cardinality` accept as ``items``; :func:`align_file` is
:func:`align` from file to file (``pet psi``), and :func:`write_rows` writes selected
rows of a file in a given order, both streaming.

Scale-out (:mod:`pet.psi.bucketed`, needs ``pet[dask]``): :func:`align_dataset` is
:func:`align_file` in ``B`` buckets keyed by a per-run hash, one PSI per bucket pair run as
Dask tasks on each party's own cluster, resumable bucket by bucket.

Item encoding (what matches what): :mod:`pet.psi.encoding`. Protocol, leakage and sizes:
:mod:`pet.psi.ecdh`. The RFC 9380 map: :mod:`pet.psi.hash_to_curve`. Batched X25519
(one scalar, many points; vectorized, equal bytes to ``cryptography``'s): :mod:`pet.psi.x25519`.
"""

from pet.psi.align import align
from pet.psi.bucketed import BucketedResult, BucketedRunFailed, align_dataset
from pet.psi.ecdh import PsiResult, digest_bytes, ecdh_psi, psi_cardinality
from pet.psi.files import align_file, encode_file, write_rows
from pet.psi.kkrt import kkrt_psi
from pet.psi.store import EncodedItems, encode_chunks

__all__ = ["BucketedResult", "BucketedRunFailed", "EncodedItems", "PsiResult", "align", "align_dataset", "align_file",
           "digest_bytes", "ecdh_psi", "encode_chunks", "encode_file", "kkrt_psi", "psi_cardinality",
           "write_rows"]
