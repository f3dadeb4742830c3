"""The kinds of OT an :class:`~pet.mpc.ot.engine.OTEngine` extends, as request objects.

Both parties build the same list of requests (same kinds, senders and sizes, in the same
order), each with its own inputs: the *sender* of a request passes the sender-side values,
the *receiver* its choice values. The engine processes each request's OTs chunk by chunk
and the request turns the hashed OT pads into its outputs at once (fused), so memory is
bounded by the outputs, never by one array per OT.

Every request's OT count is a multiple of 64, so each request starts on a word of the
packed choice vector. Per OT ``k`` of a request, the sender holds ``h0 = H(q_k)`` and
``h1 = H(q_k ^ s)``, the receiver ``ht = H(t_k)`` which equals ``h1`` if its choice bit is
1 and ``h0`` otherwise (``H`` is the engine's tweaked hash, 128 bits).

=====================  ==============================  =========================================
request                sender gets                     receiver gets
=====================  ==============================  =========================================
:class:`RandomOT`      ``m0``, ``m1`` (bits, W) rows   ``choices`` (W,), ``m`` = chosen rows
:class:`GilboaProduct`  ``share`` (n,)                 ``share`` (n,): the two sum to ``a * b``
:class:`ChosenBitProduct` ``share`` (n,)               ``share`` (n,): the two sum to ``c * a`` (``c`` a bit)
:class:`BitProduct`    ``out`` (K, n)                  ``out`` (K, n): sum to ``sum_p C[q,p] s_p r_p``
=====================  ==============================  =========================================

Bytes: the receiver sends 16 bytes per OT (the IKNP ``u`` column); random OTs need
nothing else; a Gilboa product sends ``sum_{i<64} (64 - i) = 2080`` bits (260 bytes) of
corrections per product, a bit product ``w_p`` bits per OT (its width, see below).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from pet.errors import InputError
from pet.mpc.ot import _kernels

__all__ = ["OTRequest", "RandomOT", "GilboaProduct", "ChosenBitProduct", "BitProduct"]

_GILBOA_BITS = 2080  # sum_{i=0}^{63} (64 - i)


def _words(a, n: int, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=np.uint64).reshape(-1)
    if arr.size != n:
        raise InputError(f"{name} must have {n} uint64 elements, got {arr.size}")
    return arr


def random_words(n: int) -> np.ndarray:
    """``n`` uniform uint64 words from the operating system's CSPRNG."""
    return np.frombuffer(os.urandom(8 * n), dtype=np.uint64).copy() if n else np.zeros(0, dtype=np.uint64)


class OTRequest:
    """One batch of OTs of one kind and direction (see the module doc).

    ``sender`` is the party that is the OT sender. The engine sets ``role`` to
    ``"sender"`` or ``"receiver"`` before processing.
    """

    kind = "abstract"
    needs_correction = False

    def __init__(self, count: int, sender: int):
        if sender not in (0, 1):
            raise InputError(f"sender must be 0 or 1, got {sender!r}")
        if count < 0 or count % 64:
            raise InputError(f"an OT request's count must be a non-negative multiple of 64, got {count}")
        self.count = int(count)
        self.sender = int(sender)
        self.role = None

    def describe(self) -> tuple:
        """What both parties must agree on (hashed into the first extension message)."""
        return (self.kind, self.sender, self.count)

    # receiver side
    def choice_words(self) -> np.ndarray:
        raise NotImplementedError

    def corr_words(self, lo: int, hi: int) -> int:
        """uint64 words of sender corrections for this request's OTs ``lo .. hi``."""
        return 0

    def on_sender(self, lo: int, hi: int, h0: np.ndarray, h1: np.ndarray):
        """Sender: consume the pads of OTs ``lo .. hi``; return correction words or None."""
        raise NotImplementedError

    def on_receiver(self, lo: int, hi: int, ht: np.ndarray, corr) -> None:
        raise NotImplementedError

    def result(self) -> dict:
        raise NotImplementedError


class RandomOT(OTRequest):
    """``count`` random OTs with ``bits``-bit messages (1..128), no corrections.

    Outputs are bit rows: bit ``k % 64`` of word ``[j, k // 64]`` is bit ``j`` of OT
    ``k``'s message, so with ``bits = nb`` row ``j`` packs bit ``j`` of every message --
    the layout an AND-triple family wants. The receiver's ``choices`` default to uniform.
    """

    kind = "rot"

    def __init__(self, count: int, sender: int, bits: int = 128, choices=None):
        super().__init__(count, sender)
        if not 1 <= int(bits) <= 128:
            raise InputError(f"bits must be in 1..128, got {bits}")
        self.bits = int(bits)
        self._choices = None if choices is None else _words(choices, count // 64, "choices")

    def describe(self):
        return super().describe() + (self.bits,)

    def choice_words(self):
        if self._choices is None:
            self._choices = random_words(self.count // 64)
        return self._choices

    def _rows(self, h):
        rows = np.empty((self.bits, h.shape[0] // 64), dtype=np.uint64)
        _kernels.transpose_ots_to_rows(h, rows, self.bits)
        return rows

    def _alloc(self, names):
        if not hasattr(self, "_out"):
            self._out = {k: np.empty((self.bits, self.count // 64), dtype=np.uint64) for k in names}

    def on_sender(self, lo, hi, h0, h1):
        self._alloc(("m0", "m1"))
        self._out["m0"][:, lo // 64:hi // 64] = self._rows(h0)
        self._out["m1"][:, lo // 64:hi // 64] = self._rows(h1)
        return None

    def on_receiver(self, lo, hi, ht, corr):
        self._alloc(("m",))
        self._out["m"][:, lo // 64:hi // 64] = self._rows(ht)

    def result(self):
        self._alloc(("m0", "m1") if self.role == "sender" else ("m",))
        out = dict(self._out)
        if self.role == "receiver":
            out["choices"] = self.choice_words()
        return out


class GilboaProduct(OTRequest):
    """Additive shares of ``a * b mod 2^64`` for ``n`` pairs, ``a`` held by the sender and
    ``b`` by the receiver (Gilboa): 64 correlated OTs per product, OT ``(e, i)`` with
    choice bit ``i`` of ``b[e]`` and correlation ``x1 = x0 + a[e] mod 2^(64-i)`` (a
    ``64 - i``-bit message: the term is multiplied by ``2^i``). The sender's share is
    ``-sum_i 2^i x0``, the receiver's ``sum_i 2^i x_{b_i}``. 1024 + 260 bytes per product.
    """

    kind = "gilboa"
    needs_correction = True

    def __init__(self, n: int, sender: int, value):
        super().__init__(64 * int(n), sender)
        self.n = int(n)
        self.value = _words(value, self.n, "value")
        self.share = np.zeros(self.n, dtype=np.uint64)

    def choice_words(self):
        return self.value

    def corr_words(self, lo, hi):
        return -(-((hi - lo) // 64) * _GILBOA_BITS // 64)

    def on_sender(self, lo, hi, h0, h1):
        corr = np.zeros(self.corr_words(lo, hi), dtype=np.uint64)
        _kernels.gilboa_send(h0, h1, self.value[lo // 64:hi // 64], corr, self.share[lo // 64:hi // 64])
        return corr

    def on_receiver(self, lo, hi, ht, corr):
        _kernels.gilboa_recv(ht, self.value[lo // 64:hi // 64], corr, self.share[lo // 64:hi // 64])

    def result(self):
        return {"share": self.share}


class ChosenBitProduct(OTRequest):
    """Additive shares of ``c[e] * a[e] mod 2^64`` for ``n`` elements, ``a`` a word of the
    sender's and ``c`` a *bit* of the receiver's: one correlated OT per element with choice
    ``c[e]`` and correlation ``x1 = x0 + a[e]`` (the sender keeps ``-x0``, the receiver
    ``x_c``), where a :class:`GilboaProduct` would spend 64 OTs on a one-bit factor. 16 bytes
    (the IKNP column) + 8 bytes of correction per element. ``value`` is the sender's words,
    or the receiver's bits (0/1 words). OTs past ``n`` (padding to 64) are unused.
    """

    kind = "chosenbit"
    needs_correction = True

    def __init__(self, n: int, sender: int, value):
        self.n = int(n)
        super().__init__(-(-self.n // 64) * 64, sender)
        self.value = _words(value, self.n, "value")
        self.share = np.zeros(self.count, dtype=np.uint64)

    def describe(self):
        return super().describe() + (self.n,)

    def choice_words(self):
        bits = np.zeros(self.count, dtype=np.uint8)
        bits[:self.n] = (self.value & np.uint64(1)).astype(np.uint8)
        return np.packbits(bits, bitorder="little").view(np.uint64).copy()

    def corr_words(self, lo, hi):
        return hi - lo

    def _padded(self, lo, hi):
        a = np.zeros(hi - lo, dtype=np.uint64)
        top = min(hi, self.n)
        if top > lo:
            a[:top - lo] = self.value[lo:top]
        return a

    def on_sender(self, lo, hi, h0, h1):
        x0 = np.ascontiguousarray(h0[:, 0])
        self.share[lo:hi] = np.uint64(0) - x0
        return x0 + self._padded(lo, hi) - h1[:, 0]

    def on_receiver(self, lo, hi, ht, corr):
        c = self._padded(lo, hi) & np.uint64(1)
        self.share[lo:hi] = ht[:, 0] + c * np.asarray(corr, dtype=np.uint64)[:hi - lo]

    def result(self):
        return {"share": self.share[:self.n]}


def _two_adic(v: int) -> int:
    v %= 1 << 64
    return 64 if v == 0 else (v & -v).bit_length() - 1


class BitProduct(OTRequest):
    """Additive shares of ``sum_p C[q, p] * s_p * r_p`` (mod 2^64) for ``n`` elements,
    where ``s_p`` / ``r_p`` is bit ``positions[p]`` of the sender's / receiver's word and
    ``C`` a public (K, P) coefficient matrix: one correlated OT per (position, element)
    with correlation ``x1 = x0 + s_p mod 2^w_p``; the width ``w_p = 64 - min_q v2(C[q,p])``
    is the fewest bits that keep every ``C[q, p] * x`` exact mod 2^64 (0: no message).

    OTs are position-major (``p * npad + e``, ``npad`` = ``n`` rounded up to 64, padding
    OTs unused), so any chunk boundary works.
    """

    kind = "bitprod"
    needs_correction = True

    def __init__(self, n: int, sender: int, positions, coeffs, value):
        self.n = int(n)
        self.npad = -(-self.n // 64) * 64
        self.positions = np.array([int(p) for p in positions], dtype=np.int64)
        if self.positions.size and not (0 <= self.positions.min() and self.positions.max() < 64):
            raise InputError("positions must be bit positions 0..63")
        coeffs = [[int(v) % (1 << 64) for v in row] for row in coeffs]
        if not coeffs or any(len(row) != self.positions.size for row in coeffs):
            raise InputError("coeffs must be a non-empty (K, len(positions)) matrix")
        self.coeffs = np.array(coeffs, dtype=np.uint64)
        self.widths = np.array([64 - min(_two_adic(row[p]) for row in coeffs) for p in range(self.positions.size)],
                               dtype=np.int64)
        super().__init__(self.positions.size * self.npad, sender)
        self.value = _words(value, self.n, "value")
        self.out = np.zeros((self.coeffs.shape[0], self.n), dtype=np.uint64)
        self._packed = None

    def describe(self):
        digest = hashlib.sha256(self.positions.tobytes() + self.coeffs.tobytes()).hexdigest()[:16]
        return super().describe() + (self.n, digest)

    def _bits(self):
        if self._packed is None:
            self._packed = np.zeros(self.count // 64, dtype=np.uint64)
            _kernels.gather_bits(self.value, self.positions, self.npad, self._packed)
        return self._packed

    def choice_words(self):
        return self._bits()

    def corr_words(self, lo, hi):
        bits = 0
        for p in range(lo // self.npad, -(-hi // self.npad)):
            a, b = max(lo, p * self.npad), min(hi, p * self.npad + self.n)
            if b > a:
                bits += (b - a) * int(self.widths[p])
        return -(-bits // 64)

    def on_sender(self, lo, hi, h0, h1):
        corr = np.zeros(self.corr_words(lo, hi), dtype=np.uint64)
        _kernels.bitprod_send(h0, h1, lo, self.npad, self.n, self._bits(), self.widths, self.coeffs, corr, self.out)
        return corr

    def on_receiver(self, lo, hi, ht, corr):
        _kernels.bitprod_recv(ht, lo, self.npad, self.n, self._bits(), self.widths, self.coeffs, corr, self.out)

    def result(self):
        return {"out": self.out}


class MatrixProduct(OTRequest):
    """Additive shares of ``X @ Y`` (mod 2^64) for a sender's ``X`` (m, k) and a
    receiver's ``Y`` (k, n): Gilboa with vector messages, one correlated OT per bit of
    every ``Y`` element (``64 k n`` OTs, OT ``64 e + i`` = bit ``i`` of ``Y.flat[e]``) whose
    correlation is the column ``X[:, l]`` (``m`` words). Each OT's 128-bit pads are
    expanded to ``m`` words with the tweakable hash ``expander`` (a
    :class:`~pet.mpc.ot.aes.TCCRHash` of its own key) and the unique tweaks
    ``tweak + m2 * (OT index) + block`` (``m2 = ceil(m / 2)`` blocks per OT), so the
    expanded pads are as good as fresh random OT messages of ``64 m`` bits.

    Bytes: 16 (the IKNP column) + ``8 m`` (the correction) per OT, i.e.
    ``64 k n (16 + 8 m)`` for the product: ``O(m k n)``, fine for small shapes only.
    """

    kind = "matprod"
    needs_correction = True
    _SUB_BLOCKS = 1 << 15  # expanded 128-bit blocks per pass (bounds the temporaries)

    def __init__(self, m: int, k: int, n: int, sender: int, expander, tweak: int, value):
        self.m, self.k, self.n = int(m), int(k), int(n)
        super().__init__(64 * self.k * self.n, sender)
        self.m2 = max(1, -(-self.m // 2))
        self.expander = expander
        self.tweak = int(tweak)
        self.value = value  # sender: X (m, k); receiver: Y (k, n)
        self.share = np.zeros((self.n, self.m), dtype=np.uint64)

    def describe(self):
        return super().describe() + (self.m, self.k, self.n, self.tweak)

    def choice_words(self):
        return _words(self.value, self.k * self.n, "value")

    def corr_words(self, lo, hi):
        return (hi - lo) * self.m

    def _expand(self, h, lo):
        rep = np.repeat(np.ascontiguousarray(h), self.m2, axis=0)
        out = self.expander.hash(rep, self.tweak + self.m2 * lo)
        return out.reshape(h.shape[0], 2 * self.m2)

    def _steps(self, lo, hi):
        step = max(1, self._SUB_BLOCKS // self.m2)
        for a in range(lo, hi, step):
            yield a, min(hi, a + step)

    def on_sender(self, lo, hi, h0, h1):
        xt = np.ascontiguousarray(np.asarray(self.value, dtype=np.uint64).reshape(self.m, self.k).T)
        corr = np.empty((hi - lo, self.m), dtype=np.uint64)
        for a, b in self._steps(lo, hi):
            e0 = self._expand(h0[a - lo:b - lo], a)
            e1 = self._expand(h1[a - lo:b - lo], a)
            _kernels.vgilboa_send(e0, e1, a, self.n, xt, corr[a - lo:b - lo], self.share)
        return corr.reshape(-1)

    def on_receiver(self, lo, hi, ht, corr):
        y = self.choice_words()
        corr = corr.reshape(hi - lo, self.m)
        for a, b in self._steps(lo, hi):
            et = self._expand(ht[a - lo:b - lo], a)
            _kernels.vgilboa_recv(et, a, self.n, y, corr[a - lo:b - lo], self.share)

    def result(self):
        return {"share": np.ascontiguousarray(self.share.T)}
