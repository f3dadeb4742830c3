"""Private set intersection and table alignment.

Will hold ``ecdh_psi(channel, items, *, party, reveal="both") -> PsiResult`` (ECDH-PSI on
Curve25519 with an RFC 9380 hash-to-curve), ``psi_cardinality`` and
``align(channel, df, on, *, party)``, which returns the intersecting rows of a DataFrame in a
joint order identical on both sides.
"""
