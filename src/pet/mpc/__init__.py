"""Two-party additive secret sharing over Z_2^64 with fixed-point arithmetic.

Will hold ``Session``, ``Shared``, ``run_local`` and the protocols (Beaver multiplication,
matrix products, truncation, comparison, division, sigmoid, argmax), with correlated
randomness from a dealer behind its own interface.
"""
