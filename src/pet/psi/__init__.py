"""Private set intersection and table alignment.

- :func:`ecdh_psi` ``(channel, items, *, party, reveal="both") -> PsiResult`` -- ECDH-PSI on
  Curve25519 (X25519 scalar multiplication, RFC 9380 Elligator 2 hash-to-curve).
  ``PsiResult.items`` is the intersection in the party's own input order, ``.indices`` the
  positions of the matching rows in a *joint* order identical on both sides, ``.size``.
- :func:`psi_cardinality` -- only the intersection size, to both parties.
- :func:`align` ``(channel, df, on, *, party) -> DataFrame`` -- the rows of ``df`` whose key
  (one column or several) is in the intersection, in the joint order: row ``i`` of party 0's
  result matches row ``i`` of party 1's.

Item encoding (what matches what): :mod:`pet.psi.encoding`. Protocol, leakage and sizes:
:mod:`pet.psi.ecdh`. The RFC 9380 map: :mod:`pet.psi.hash_to_curve`.
"""

from pet.psi.align import align
from pet.psi.ecdh import PsiResult, digest_bytes, ecdh_psi, psi_cardinality

__all__ = ["ecdh_psi", "psi_cardinality", "align", "PsiResult", "digest_bytes"]
