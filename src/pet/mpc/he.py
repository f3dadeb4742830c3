"""Matrix-product correlations from homomorphic encryption (BFV, Microsoft SEAL via ``seal-python``).

Used by :class:`pet.mpc.ot.source.OTSource` for the matrix kinds (``matmul`` triples and
the private-matrix ``reuse_mul``) when both parties have the optional ``pet[he]`` extra;
without it the source falls back to the OT path (correct, O(m k n) OTs).

One product :class:`HEProduct` ``X (m, k) @ Y (k, n)``: one party (the *encryptor*) holds
``Y`` (if it holds ``X`` the product is transposed, ``C^T = Y^T X^T``), the other (the
*evaluator*) holds ``X``. The message space is ``Z_2^64`` itself, scaled into the ciphertext
modulus ``Q`` as Cheetah does (``v -> round(Q v / 2^64)``; SEAL's own plaintext modulus is
never used), so one pass gives the product mod 2^64 (no CRT over plaintext primes):

1. (once per session) each party sends its BFV public key (rerandomisation only);
2. encryptor -> evaluator: fresh symmetric encryptions of zero (SEAL) plus the scaled blocks
   of ``Y`` (entries mod 2^64), coefficient-encoded (Cheetah: ``Y[l, j]`` at
   ``x^(j kb + kb - 1 - l)``; no rotations, no key switching);
3. evaluator: multiplies by its plaintext blocks of ``X`` (entries as signed 64-bit integers,
   ``X[i, l]`` at ``x^(i kb nb + l)``, NTT form), so coefficient ``i kb nb + j kb + kb - 1``
   of the sum over the ``l`` blocks encrypts ``V = sum_l X[i, l] Y[l, j] mod 2^64``; adds a
   fresh public-key encryption of zero; then sends ``c1`` whole and ``c0`` only at the
   target coefficients, each plus the scaled mask ``R`` (uniform mod 2^64) and uniform
   flooding noise in ``[-2^F, 2^F)`` (steps 2 and 3 are pipelined over the products of a
   request, one per direction per exchange: 2 exchanges for a triple);
4. encryptor: computes ``c0 + c1 s`` at the targets and decodes ``round(2^64 v / Q)`` =
   ``V + R mod 2^64``; the evaluator keeps ``-R mod 2^64``. The two sum to ``X @ Y mod 2^64``.

What each party learns: the evaluator sees only fresh RLWE ciphertexts (128-bit security);
the encryptor sees ``V + R`` (uniform mod 2^64: perfectly masked), an RLWE-pseudorandom
``c1``, no other coefficient of ``c0``, and a noise term flooded so that its distribution is
within ``2^-41`` of one independent of ``X``. Parameters and the argument: ``docs/mpc.md``
("Matrix products from homomorphic encryption"). Semi-honest security.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pet.errors import InputError, ProtocolError
from pet.mpc.prg import PRG

try:  # the optional extra pet[he]
    import seal as _seal
except ImportError:  # pragma: no cover - depends on the environment
    _seal = None

__all__ = ["HE_AVAILABLE", "HEProduct", "HEBackend", "POLY_DEGREE", "plan_blocks"]

#: True when ``seal-python`` is importable (``pip install pet[he]``).
HE_AVAILABLE = _seal is not None

#: BFV ring degree N; the ciphertext modulus: four 60-bit primes (data level, Q ~ 2^240) and a
#: 30-bit special prime (SEAL's public-key encryption only) = 270 bits, within the HE
#: standard's 438-bit bound for 128-bit security at N = 16384.
POLY_DEGREE = 16384
COEFF_BITS = (60, 60, 60, 60, 30)
#: data-level primes (all but SEAL's special prime)
DATA_PRIMES = len(COEFF_BITS) - 1
#: SEAL needs a plaintext modulus to build a BFV context; messages never use it (they are
#: mod 2^64, scaled into Q by :func:`pet.mpc.he_kernels.encode_scaled`).
_SEAL_PLAIN = 1 << 20
#: ciphertext bytes of one product piece sent up (longer ``k`` is split; bounds memory and frames)
MAX_PIECE_BYTES = 256 << 20
#: statistical security (bits) of the encryptor's view of one product (flooding).
STAT_BITS = 40
#: largest |coefficient| of SEAL's error distribution (centered binomial, sigma 3.2) + the
#: encoding's rounding (1/2).
_ERR_MAX = 21.5
#: bound (bits) on the rerandomising public-key encryption's noise (42 N + 21 before SEAL
#: divides it by the special prime)
_PK_NOISE_BITS = 20
#: decryption is correct while |noise| < Q / 2^66 (a quarter of the rounding interval);
#: log2 Q > 239.99, so 2^(F+1) with F <= 170 leaves room for everything else.
_FLOOD_MAX_BITS = 170


def _require():
    if _seal is None:
        raise InputError("HE matrix products need the optional extra: pip install 'pet[he]' (seal-python)")


@dataclass
class HEProduct:
    """Shares of ``X (m, k) @ Y (k, n)``; ``encryptor`` holds ``Y``, the other party ``X``
    (``value`` is this party's operand). The result ``share`` is (m, n) uint64."""

    m: int
    k: int
    n: int
    encryptor: int
    value: np.ndarray
    blocks: tuple = field(default=())


def _signed(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.uint64).view(np.int64)


def plan_blocks(m: int, k: int, n: int, N: int = POLY_DEGREE) -> tuple:
    """Block shape ``(mb, kb, nb)`` with ``mb kb nb <= N`` minimising a cost model measured
    with seal-python 4.4 at N = 16384 (unit: one plaintext NTT, ~2 ms): ``nm nk`` plaintext
    blocks, 0.15 per ciphertext-plaintext product (``nm nk nn``, numba), 7 per ciphertext sent
    up (``nk nn``: encryption, scaling, transfer, NTT) and 11 per ciphertext sent back
    (``nm nn``: rerandomisation, inverse NTT, masking and flooding of the targets, transfer,
    ``c1 s``)."""
    best = None
    for mb in range(1, min(m, N) + 1):
        nm = -(-m // mb)
        if mb > 1 and -(-m // (mb - 1)) == nm:
            continue  # same block count with a smaller block: dominated
        for kb in range(1, min(k, N // mb) + 1):
            nk = -(-k // kb)
            if kb > 1 and -(-k // (kb - 1)) == nk:
                continue
            nb = min(n, N // (mb * kb))
            nn = -(-n // nb)
            cost = nm * nk + 0.15 * nm * nk * nn + 7 * nk * nn + 11 * nm * nn
            if best is None or cost < best[0]:
                best = (cost, (mb, kb, nb))
    return best[1]


def _kernels():
    from pet.mpc import he_kernels
    return he_kernels


# -- raw (de)serialisation of SEAL objects --------------------------------------------

class _Ctx:
    """The BFV context, this party's keys, and raw-word views of SEAL's objects."""

    def __init__(self):
        parms = _seal.EncryptionParameters(_seal.scheme_type.bfv)
        parms.set_poly_modulus_degree(POLY_DEGREE)
        parms.set_coeff_modulus(_seal.CoeffModulus.Create(POLY_DEGREE, list(COEFF_BITS)))
        parms.set_plain_modulus(_SEAL_PLAIN)
        self.ctx = _seal.SEALContext(parms, True, _seal.sec_level_type.tc128)
        if not self.ctx.parameters_set():
            raise ProtocolError(f"SEAL rejected the HE parameters: {self.ctx.parameter_error_message()}")
        data = self.ctx.first_context_data().parms()
        self.q = np.array([mod.value() for mod in data.coeff_modulus()], dtype=np.uint64)
        self.L = len(self.q)
        if self.L != DATA_PRIMES or not all((1 << 60) - (1 << 30) < int(q) < (1 << 60) for q in self.q):
            raise ProtocolError("unexpected SEAL ciphertext primes")  # lift() and the budget assume them
        self.parms_id = self.ctx.first_parms_id()
        keygen = _seal.KeyGenerator(self.ctx)
        self.secret = keygen.secret_key()
        self.public = keygen.create_public_key()
        self.encryptor = _seal.Encryptor(self.ctx, self.secret)
        self.evaluator = _seal.Evaluator(self.ctx)
        self.peer_encryptor = None  # with the peer's public key (rerandomisation)
        self.zero = _seal.Plaintext(POLY_DEGREE)
        self._words = self.L * POLY_DEGREE
        ct = self.encryptor.encrypt_symmetric(self.zero)
        cb = ct.to_string()
        self._ct_prefix = cb[:len(cb) - 2 * 8 * self._words]
        self.evaluator.transform_to_ntt_inplace(ct)
        cb = ct.to_string()
        self._ntt_ct_prefix = cb[:len(cb) - 2 * 8 * self._words]
        pt = _seal.Plaintext("1")
        self.evaluator.transform_to_ntt_inplace(pt, self.parms_id)
        pb = pt.to_bytes()
        self._ntt_pt_prefix = pb[:len(pb) - 8 * self._words]
        # the secret key s in NTT form at the key level (data primes first, then the special one)
        sb = self.secret.to_string()
        key_words = (self.L + 1) * POLY_DEGREE
        s = np.frombuffer(sb, dtype=np.uint64, count=key_words, offset=len(sb) - 8 * key_words)
        self.s_plain = self.plain_ntt(s[:self._words].reshape(self.L, POLY_DEGREE))
        self.consts, self.rho = _kernels().scaled_consts(self.q)
        self.mont = _kernels().mont_consts(self.q)

    def plain_ntt(self, words: np.ndarray):
        """An NTT-form plaintext at the data level from its words (L, N), each < q_i."""
        pt = _seal.Plaintext()
        pt.load_bytes(self.ctx, self._ntt_pt_prefix + np.ascontiguousarray(words, dtype=np.uint64).tobytes())
        return pt

    def raw(self, ct) -> np.ndarray:
        """The ciphertext's data (2, L, N) uint64 (a read-only view of its serialisation)."""
        b = ct.to_string()
        if len(b) != len(self._ct_prefix) + 16 * self._words:
            raise ProtocolError("unexpected SEAL ciphertext layout")
        return np.frombuffer(b, dtype=np.uint64, offset=len(self._ct_prefix)).reshape(2, self.L, POLY_DEGREE)

    def cipher(self, c0: np.ndarray, c1: np.ndarray, ntt: bool = False):
        """A ciphertext (coefficient or NTT form) from its two polynomials (L, N), words
        already reduced mod their primes (wire words: :meth:`reduce` first)."""
        ct = _seal.Ciphertext()
        ct.load_bytes(self.ctx, b"".join([self._ntt_ct_prefix if ntt else self._ct_prefix,
                                          np.ascontiguousarray(c0, dtype=np.uint64).tobytes(),
                                          np.ascontiguousarray(c1, dtype=np.uint64).tobytes()]))
        return ct

    def ntt_pair(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """NTTs (2, L, N) of two polynomials (L, N) in RNS form (one SEAL call for both)."""
        ct = self.cipher(a, b)
        self.evaluator.transform_to_ntt_inplace(ct)
        return self.raw(ct)

    def times_secret(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a s`` and ``b s`` (2, L, N) (coefficient form) for two polynomials (L, N)."""
        ct = self.cipher(a, b)
        ev = self.evaluator
        ev.transform_to_ntt_inplace(ct)
        ev.multiply_plain_inplace(ct, self.s_plain)
        ev.transform_from_ntt_inplace(ct)
        return self.raw(ct)

    def lift(self, data: np.ndarray, prg) -> np.ndarray:
        """Wire form of RNS words (..., L, M), in place: each residue ``c`` mod ``q_i`` sent
        as ``c + q_i r`` with ``r`` uniform in ``[0, 16)``, a uniform 64-bit word up to
        ``16 (2^60 - q_i) / 2^64 < 2^-30`` (so the bytes on the wire carry no structure).
        Returns ``data`` (a numba kernel: no temporaries of the array's size)."""
        shape = data.shape
        flat = data.reshape(-1, shape[-2], shape[-1])
        rnd = np.frombuffer(prg.bytes(data.size), dtype=np.uint8).reshape(flat.shape)
        _kernels().lift_inplace(flat, rnd, self.q)
        return data

    def reduce(self, data: np.ndarray) -> np.ndarray:
        """Wire words (..., L, M) back to residues mod ``q_i`` (a new array)."""
        shape = data.shape
        src = np.ascontiguousarray(data, dtype=np.uint64).reshape(-1, shape[-2], shape[-1])
        out = np.empty(src.shape, dtype=np.uint64)
        _kernels().reduce_into(src, self.q, out)
        return out.reshape(shape)


# -- encodings --------------------------------------------------------------------------

def _encode_right(Y: np.ndarray, kb: int, nb: int) -> np.ndarray:
    """Blocks of ``Y`` (k, n) uint64 -> (nk, nn, N) coefficients (mod 2^64): ``Y[l, j]`` at
    ``j kb + kb - 1 - l``."""
    k, n = Y.shape
    nk, nn = -(-k // kb), -(-n // nb)
    pad = np.zeros((nk * kb, nn * nb), dtype=np.uint64)
    pad[:k, :n] = Y
    blk = pad.reshape(nk, kb, nn, nb).transpose(0, 2, 3, 1)[..., ::-1]  # (nk, nn, nb, kb) with l reversed
    out = np.zeros((nk, nn, POLY_DEGREE), dtype=np.uint64)
    out[..., :kb * nb] = blk.reshape(nk, nn, kb * nb)
    return out


def _encode_left_row(Xs: np.ndarray, q: np.ndarray, mb: int, kb: int, nb: int) -> np.ndarray:
    """One row block of signed ``X`` (<= mb, k) -> (nk, L, N) coefficients mod each ``q_i``:
    ``X[i, l]`` at ``i kb nb + l``."""
    rows, k = Xs.shape
    nk = -(-k // kb)
    pad = np.zeros((mb, nk * kb), dtype=np.int64)
    pad[:rows, :k] = Xs
    blk = pad.reshape(mb, nk, kb).transpose(1, 0, 2)  # (nk, mb, kb)
    tmp = np.zeros((nk, len(q), mb, kb * nb), dtype=np.uint64)
    tmp[..., :kb] = np.mod(blk[:, None], q.astype(np.int64)[None, :, None, None]).astype(np.uint64)
    res = np.zeros((nk, len(q), POLY_DEGREE), dtype=np.uint64)
    res[:, :, :mb * kb * nb] = tmp.reshape(nk, len(q), mb * kb * nb)
    return res


def _targets(mb: int, kb: int, nb: int) -> np.ndarray:
    """Coefficient index of output (i, j) of a block: ``i kb nb + j kb + kb - 1`` (mb, nb)."""
    i = np.arange(mb)[:, None]
    j = np.arange(nb)[None, :]
    return i * kb * nb + j * kb + kb - 1


# -- the protocol -----------------------------------------------------------------------

class HEBackend:
    """Per-session HE state of one party: the context (created on first use, keys included)
    and the peer's public key. ``exchange(msg)`` is the source's checked channel."""

    def __init__(self, exchange, party: int):
        _require()
        self.exchange = exchange
        self.party = party
        self.ctx: _Ctx | None = None
        self.bytes_sent = 0
        self.prg = PRG()  # AES-CTR seeded from os.urandom: masks, flooding, wire lifts

    def _context(self) -> _Ctx:
        """The context; creating it costs one exchange of public keys."""
        if self.ctx is not None:
            return self.ctx
        c = _Ctx()
        got = self.exchange([c.public.to_string()])
        if not isinstance(got, list) or len(got) != 1 or not isinstance(got[0], bytes):
            raise ProtocolError("the peer sent a malformed HE public key")
        try:
            c.peer_encryptor = _seal.Encryptor(c.ctx, c.ctx.from_public_str(got[0]))
        except Exception:  # noqa: BLE001 - SEAL's own validation failed
            raise ProtocolError("the peer sent an invalid HE public key") from None
        self.ctx = c
        return c

    def run(self, products: list) -> list:
        """Shares (m, n) uint64 of every product (same list at both parties): two
        exchanges (ciphertexts of ``Y`` both ways, masked results both ways). A product
        whose inner dimension is too long for the noise budget or the piece size is split
        into several along ``k`` (shares summed); empty products cost nothing."""
        if not products:
            return []
        parts, owner = [], []
        for idx, p in enumerate(products):
            if p.m * p.k * p.n == 0:
                continue
            for lo, hi in _k_ranges(p.m, p.k, p.n):
                sub = p.value.reshape(p.m, p.k)[:, lo:hi] if p.encryptor != self.party else \
                    p.value.reshape(p.k, p.n)[lo:hi]
                parts.append(HEProduct(p.m, hi - lo, p.n, p.encryptor, sub, plan_blocks(p.m, hi - lo, p.n)))
                owner.append(idx)
        out = [np.zeros((p.m, p.n), dtype=np.uint64) for p in products]
        if parts:
            for idx, share in zip(owner, self._run(parts)):
                out[idx] += share
        return out

    def _run(self, products: list) -> list:
        """Pipelined, one product (piece) per direction per exchange, so memory and frames
        stay bounded: round ``r`` sends ``[ciphertexts of my r-th product, results of the
        peer's (r-1)-th]``; ``max(mine, theirs) + 1`` exchanges (2 for a triple)."""
        c = self._context()
        mine = [i for i, p in enumerate(products) if p.encryptor == self.party]
        theirs = [i for i, p in enumerate(products) if p.encryptor != self.party]
        shares, pending = {}, None
        for r in range(max(len(mine), len(theirs)) + 1):
            up = self._encrypt(products[mine[r]], c) if r < len(mine) else None
            down = None
            if 1 <= r <= len(theirs):
                i = theirs[r - 1]
                shares[i], down = self._evaluate(products[i], c, pending)
            got = self.exchange([up, down])
            if not (isinstance(got, list) and len(got) == 2
                    and (got[0] is None) == (r >= len(theirs)) and (got[1] is None) == (not 1 <= r <= len(mine))):
                raise ProtocolError("the peer sent a malformed HE message")
            pending = got[0]
            if 1 <= r <= len(mine):
                i = mine[r - 1]
                shares[i] = self._decrypt(products[i], c, got[1])
        return [shares[i] for i in range(len(products))]

    # encryptor
    def _encrypt(self, p: HEProduct, c: _Ctx) -> np.ndarray:
        """(nk, nn, 2, L, N) wire words: per block a SEAL symmetric encryption of zero with
        ``round(Q y / 2^64)`` added to ``c0``."""
        mb, kb, nb = p.blocks
        coeffs = _encode_right(np.ascontiguousarray(p.value, dtype=np.uint64).reshape(p.k, p.n), kb, nb)
        nk, nn = coeffs.shape[:2]
        kern = _kernels()
        scaled = kern.encode_scaled(coeffs, c.q, c.consts, c.rho).reshape(c.L, nk, nn, POLY_DEGREE)
        arr = np.empty((nk, nn, 2, c.L, POLY_DEGREE), dtype=np.uint64)
        for a in range(nk):
            for b in range(nn):
                arr[a, b] = c.raw(c.encryptor.encrypt_symmetric(c.zero))
                kern.add_mod_inplace(arr[a, b, 0], np.ascontiguousarray(scaled[:, a, b]), c.q)
        self.bytes_sent += arr.nbytes
        return c.lift(arr, self.prg)

    # evaluator
    def _evaluate(self, p: HEProduct, c: _Ctx, cts) -> tuple:
        """This party's share ``-R`` and the wire results ``[c0 at the targets (nm, nn, L,
        mb nb), c1 (nm, nn, L, N)]``."""
        mb, kb, nb = p.blocks
        m, k, n = p.m, p.k, p.n
        nm, nk, nn = -(-m // mb), -(-k // kb), -(-n // nb)
        if not isinstance(cts, np.ndarray) or cts.dtype != np.uint64 or \
                cts.shape != (nk, nn, 2, c.L, POLY_DEGREE):
            raise ProtocolError("the peer sent HE ciphertexts of the wrong shape")
        kern = _kernels()
        ev = c.evaluator
        Xs = _signed(p.value).reshape(m, k)
        T = mb * nb
        # the mask R (uniform mod 2^64) of every target coefficient, padding included
        R = self.prg.words((nm, mb, nn, nb))
        share = (np.uint64(0) - R.reshape(nm * mb, nn * nb)[:m, :n]).copy()
        R_scaled = kern.encode_scaled(R.transpose(0, 2, 1, 3), c.q, c.consts, c.rho).reshape(c.L, nm, nn, T)
        flood_bits = _flood_bits(nk * mb * kb, nm * nn * T)
        _noise_ok(flood_bits)
        cin = np.empty((nn, nk, 2, c.L, POLY_DEGREE), dtype=np.uint64)  # NTT form, per column block
        for a in range(nk):
            for b in range(nn):
                ct = c.cipher(*c.reduce(cts[a, b]))
                ev.transform_to_ntt_inplace(ct)
                cin[b, a] = c.raw(ct)
        tgt = _targets(mb, kb, nb).reshape(-1)
        q = c.q[:, None]
        out0 = np.empty((nm, nn, c.L, T), dtype=np.uint64)
        out1 = np.empty((nm, nn, c.L, POLY_DEGREE), dtype=np.uint64)
        acc = np.empty((2, c.L, POLY_DEGREE), dtype=np.uint64)
        for ib in range(nm):
            pts, live = self._plaintexts(c, Xs[ib * mb:(ib + 1) * mb], mb, kb, nb)
            for b in range(nn):
                if live.any():
                    kern.ntt_mac(cin[b], pts, live, c.q, c.mont, acc)
                    res = c.cipher(acc[0], acc[1], ntt=True)
                    ev.transform_from_ntt_inplace(res)
                    ev.add_inplace(res, c.peer_encryptor.encrypt_zero())
                else:  # an all-zero row block: the result is a fresh encryption of 0
                    res = c.peer_encryptor.encrypt_zero()
                raw = c.raw(res)
                c0 = raw[0][:, tgt]
                c0 += R_scaled[:, ib, b]
                c0 %= q
                kern.add_flood(c0, c.q, flood_bits, self.prg.words((3, T)))
                out0[ib, b] = c0
                out1[ib, b] = raw[1]
        self.bytes_sent += out0.nbytes + out1.nbytes
        return share, [c.lift(out0, self.prg), c.lift(out1, self.prg)]

    @staticmethod
    def _plaintexts(c: _Ctx, rows: np.ndarray, mb: int, kb: int, nb: int) -> tuple:
        """NTT-form words (nk, L, N) of one row block of ``X``'s plaintexts, in Montgomery
        form for :func:`~pet.mpc.he_kernels.ntt_mac`, and which are nonzero (nk,) (two NTTs
        per SEAL call; SEAL refuses a zero ``c1``, so zero blocks are skipped)."""
        coeffs = _encode_left_row(rows, c.q, mb, kb, nb)
        live = coeffs.reshape(coeffs.shape[0], -1).any(axis=1)
        idx = np.flatnonzero(live)
        for e in range(0, len(idx), 2):
            pair = [idx[e], idx[min(e + 1, len(idx) - 1)]]
            coeffs[pair] = c.ntt_pair(coeffs[pair[0]], coeffs[pair[1]])
        _kernels().to_montgomery(coeffs, c.q, c.mont)
        return coeffs, live

    # encryptor, after the evaluator's answer
    def _decrypt(self, p: HEProduct, c: _Ctx, res) -> np.ndarray:
        """``V + R mod 2^64`` (m, n): ``c0 + c1 s`` at the targets, decoded."""
        mb, kb, nb = p.blocks
        m, n = p.m, p.n
        nm, nn = -(-m // mb), -(-n // nb)
        T = mb * nb
        if not (isinstance(res, list) and len(res) == 2 and all(isinstance(x, np.ndarray) and x.dtype == np.uint64
                                                                for x in res)
                and res[0].shape == (nm, nn, c.L, T) and res[1].shape == (nm, nn, c.L, POLY_DEGREE)):
            raise ProtocolError("the peer sent HE results of the wrong shape")
        tgt = _targets(mb, kb, nb).reshape(-1)
        c0 = c.reduce(res[0].reshape(nm * nn, c.L, T))
        c1 = c.reduce(res[1].reshape(nm * nn, c.L, POLY_DEGREE))
        cnt = nm * nn
        v = np.empty((c.L, cnt, T), dtype=np.uint64)
        for e in range(0, cnt, 2):
            try:
                prod = c.times_secret(c1[e], c1[min(e + 1, cnt - 1)])
            except (RuntimeError, ValueError):  # SEAL refused it (e.g. a zero c1: not rerandomised)
                raise ProtocolError("the peer sent an invalid HE result") from None
            for d in range(min(2, cnt - e)):
                v[:, e + d] = (prod[d][:, tgt] + c0[e + d]) % c.q[:, None]
        vals = _kernels().decode_scaled(v.reshape(c.L, -1), c.q, c.consts)
        out = vals.reshape(nm, nn, mb, nb).transpose(0, 2, 1, 3).reshape(nm * mb, nn * nb)
        return np.ascontiguousarray(out[:m, :n])


def _flood_bits(P: int, n_out: int) -> int:
    """Flooding width F (noise uniform in [-2^F, 2^F)): the noise that depends on ``X`` is
    at most ``E = _ERR_MAX P 2^63`` per target coefficient (``P`` signed 64-bit plaintext
    coefficients times the encryption error and the encoding's rounding); ``n_out`` revealed
    coefficients differ from the flooded-only distribution by at most
    ``n_out E / 2^(F+1) <= 2^-(STAT_BITS+1)``."""
    e_bits = math.log2(_ERR_MAX * P) + 63
    return math.ceil(e_bits + math.log2(n_out) + STAT_BITS + 1)


def _fits(m: int, k: int, n: int) -> bool:
    """A product whose blocks fit the noise budget and send at most :data:`MAX_PIECE_BYTES`
    of ciphertexts (or ``k == 1``, which cannot be split further)."""
    mb, kb, nb = plan_blocks(m, k, n)
    nk, nm, nn = -(-k // kb), -(-m // mb), -(-n // nb)
    up_bytes = nk * nn * 2 * DATA_PRIMES * 8 * POLY_DEGREE
    return _flood_bits(nk * mb * kb, nm * nn * mb * nb) <= _FLOOD_MAX_BITS and (up_bytes <= MAX_PIECE_BYTES or k == 1)


def _k_ranges(m: int, k: int, n: int) -> list:
    """Split ``range(k)`` into the fewest equal pieces (the last one shorter) that all fit
    (:func:`_fits`)."""
    for pieces in range(1, k + 1):
        step = -(-k // pieces)
        ranges = [(lo, min(k, lo + step)) for lo in range(0, k, step)]
        if all(_fits(m, length, n) for length in {hi - lo for lo, hi in ranges}):
            return ranges
    raise InputError("HE product does not fit the noise budget")


def _noise_ok(flood_bits: int) -> None:
    """Decryption stays correct: flooding + product noise + public-key noise < Q / 2^66."""
    if flood_bits > _FLOOD_MAX_BITS:
        raise InputError("HE product too large for the noise budget: split it")
