"""128-bit Gilboa products for the wide ring (:mod:`pet.mpc.ring128`) on the OT engine.

:class:`Gilboa128` is an :class:`~pet.mpc.ot.requests.OTRequest`: additive shares of
``a * b mod 2^128`` for ``n`` pairs, ``a`` (128 bits) held by the sender and ``b`` by the
receiver. OT ``128 e + i`` carries bit ``i`` of ``b[e]`` with the correlation
``x1 = x0 + a[e]`` (mod 2^128): the sender sends ``x0 + a - H(q ^ s)`` (two words, not
packed) and keeps ``-sum_i 2^i x0``; the receiver keeps ``sum_i 2^i (H(t) + b_i d)``.
128 OTs per product: 2048 bytes of IKNP columns plus 2048 bytes of corrections per
product and direction (the 64-bit :class:`~pet.mpc.ot.requests.GilboaProduct`: 1024 +
260). What a party learns: uniformly masked OT messages only.
"""

from __future__ import annotations

import numpy as np

from pet.errors import InputError
from pet.mpc import _kernels128
from pet.mpc.ot.requests import OTRequest

__all__ = ["Gilboa128"]


class Gilboa128(OTRequest):
    """Shares of ``a * b mod 2^128`` (``value``: the sender's ``a`` or the receiver's
    ``b``, shape ``(n, 2)`` uint64 limbs)."""

    kind = "gilboa128"
    needs_correction = True

    def __init__(self, n: int, sender: int, value):
        super().__init__(128 * int(n), sender)
        self.n = int(n)
        arr = np.ascontiguousarray(value, dtype=np.uint64).reshape(-1, 2)
        if arr.shape[0] != self.n:
            raise InputError(f"value must have {self.n} 128-bit elements, got {arr.shape[0]}")
        self.value = arr
        self.share = np.zeros((self.n, 2), dtype=np.uint64)

    def choice_words(self):
        return self.value.reshape(-1)  # OT 128 e + i: bit i % 64 of word 2 e + i // 64

    def corr_words(self, lo, hi):
        return 2 * (hi - lo)

    def on_sender(self, lo, hi, h0, h1):
        corr = np.empty(self.corr_words(lo, hi), dtype=np.uint64)
        _kernels128.gilboa_send(h0, h1, lo, self.value, corr, self.share)
        return corr

    def on_receiver(self, lo, hi, ht, corr):
        _kernels128.gilboa_recv(ht, lo, self.value, corr, self.share)

    def result(self):
        return {"share": self.share}
