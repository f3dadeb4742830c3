"""Dealer-free correlated randomness for two parties: an oblivious-transfer engine.

* :mod:`pet.mpc.ot.base` -- semi-honest base OTs over Curve25519 (X25519 and RFC 9380
  hash-to-curve for the obliviously sampled key);
* :mod:`pet.mpc.ot.aes` -- AES-CTR seed streams and the TCCR hash;
* :mod:`pet.mpc.ot.engine` -- :class:`OTEngine`: IKNP extension in both directions, many
  requests of mixed kinds served with one message each way per chunk;
* :mod:`pet.mpc.ot.requests` -- the request kinds (random OT, Gilboa products, bit
  products);
* :mod:`pet.mpc.ot.correlations` -- Beaver triples, AND triples, B2A bits, truncation pairs
  and comparison masks with the dealer's field names (:func:`generate`).

Security: semi-honest (passive) only; no malicious-security check is implemented.
"""

from pet.mpc.ot.engine import DEFAULT_CHUNK, OTEngine
from pet.mpc.ot.requests import BitProduct, GilboaProduct, OTRequest, RandomOT

__all__ = ["OTEngine", "DEFAULT_CHUNK", "OTRequest", "RandomOT", "GilboaProduct", "BitProduct"]
