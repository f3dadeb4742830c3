"""Matrix-product correlations from homomorphic encryption (BFV, Microsoft SEAL via ``seal-python``).

Used by :class:`pet.mpc.ot.source.OTSource` for the matrix kinds (``matmul`` triples and
the private-matrix ``reuse_mul``) when both parties have the optional ``pet[he]`` extra;
without it the source falls back to the OT path (correct, O(m k n) OTs).

One product :class:`HEProduct` ``X (m, k) @ Y (k, n)``: one party (the *encryptor*) holds
``Y`` (if it holds ``X`` the product is transposed, ``C^T = Y^T X^T``), the other (the
*evaluator*) holds ``X``. Protocol, for each of ``L`` BFV contexts with plaintext moduli
``t_1 .. t_L`` (CRT, ``Q = prod t_j``):

1. (once per session) each party sends its BFV public keys (rerandomisation only);
2. encryptor -> evaluator: fresh symmetric encryptions of the blocks of ``Y`` (entries as
   signed 64-bit integers mod ``t_j``), coefficient-encoded (Cheetah: ``Y[l, j]`` at
   ``x^(j kb + kb - 1 - l)``; no rotations, no key switching);
3. evaluator: multiplies by its plaintext blocks of ``X`` (``X[i, l]`` at
   ``x^(i kb nb + l)``), so coefficient ``i kb nb + j kb + kb - 1`` of the sum over the
   ``l`` blocks is ``sum_l X[i, l] Y[l, j]``; adds a mask polynomial ``R`` (its target
   coefficients an integer ``R in [B, B + 2^b)``, all others uniform mod ``t_j``), a fresh
   public-key encryption of zero, and uniform flooding noise in ``[-2^F, 2^F)`` to ``c0``;
   sends the result (steps 2 and 3 are pipelined over the products of a request, one per
   direction per exchange: 2 exchanges for a triple);
4. encryptor: decrypts, CRT-combines (Garner) the target coefficients into the integer
   ``V + R`` where ``V = sum_l x_il y_lj`` exactly (|V| < B = K 2^126, so no wrap mod Q),
   and keeps ``V + R mod 2^64``; the evaluator keeps ``-R mod 2^64``. The two sum to
   ``X @ Y mod 2^64``.

What each party learns: the evaluator sees only fresh RLWE ciphertexts (128-bit security);
the encryptor sees ``V + R`` (statistically close to ``R``: distance <= 2B / 2^b per
element), uniform values elsewhere, and a noise term flooded so that its distribution is
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

#: BFV ring degree N; the ciphertext modulus: three 60-bit primes (data level) and a
#: 38-bit special prime = 218 bits, the HE standard's bound for 128-bit security at N = 8192.
POLY_DEGREE = 8192
COEFF_BITS = (60, 60, 60, 38)
#: plaintext moduli: primes of this many bits (distinct, coprime with the ciphertext primes).
PLAIN_BITS = 46
MAX_PLAIN_MODULI = 8
#: ciphertext bytes of one product piece sent up (longer ``k`` is split; bounds memory and frames)
MAX_PIECE_BYTES = 256 << 20
#: statistical security (bits) of the whole view of one request (masks + flooding).
STAT_BITS = 40
#: largest |coefficient| of SEAL's error distribution (centered binomial, sigma 3.2) + rounding.
_ERR_MAX = 21.5
_FLOOD_MAX_BITS = 130  # flooding well below q / (2 t) ~ 2^133: see _noise_ok


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
    with seal-python 4.4 (unit: one plaintext NTT): ``nm nk`` plaintext blocks, 0.4 per
    ciphertext-plaintext product (``nm nk nn``), 6 per ciphertext sent up (``nk nn``:
    encryption, transfer, NTT) and 10 per ciphertext sent back (``nm nn``: masking,
    rerandomisation, flooding, transfer, decryption)."""
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
            cost = nm * nk + 0.4 * nm * nk * nn + 6 * nk * nn + 10 * nm * nn
            if best is None or cost < best[0]:
                best = (cost, (mb, kb, nb))
    return best[1]


def _mask_bits(m: int, k: int, n: int) -> int:
    """Width b of the evaluator's masks ``R in [B, B + 2^b)``: ``2B m n / 2^b <= 2^-(STAT_BITS+1)``
    with ``B = k 2^126`` (the bound on ``|sum_l x_il y_lj|`` for signed 64-bit entries)."""
    return 127 + math.ceil(math.log2(max(k, 1))) + math.ceil(math.log2(max(m * n, 1))) + STAT_BITS + 1


def _plain_count(m: int, k: int, n: int) -> int:
    """Number of plaintext moduli so that ``Q > 2^(b+1) >= 2B + 2^b`` (no wrap mod Q)."""
    count = math.ceil((_mask_bits(m, k, n) + 2) / (PLAIN_BITS - 1))
    if count > MAX_PLAIN_MODULI:
        raise InputError(f"HE product too large ({m} x {k} x {n}): split it")
    return count


# -- numba kernels: small modular arithmetic -------------------------------------------

def _kernels():
    from pet.mpc import he_kernels
    return he_kernels


# -- raw (de)serialisation of SEAL objects --------------------------------------------

class _Ctx:
    """One BFV context (plaintext modulus ``t``) and this party's keys."""

    def __init__(self, t: int):
        parms = _seal.EncryptionParameters(_seal.scheme_type.bfv)
        parms.set_poly_modulus_degree(POLY_DEGREE)
        parms.set_coeff_modulus(_seal.CoeffModulus.Create(POLY_DEGREE, list(COEFF_BITS)))
        parms.set_plain_modulus(t)
        self.ctx = _seal.SEALContext(parms, True, _seal.sec_level_type.tc128)
        if not self.ctx.parameters_set():
            raise ProtocolError(f"SEAL rejected the HE parameters: {self.ctx.parameter_error_message()}")
        self.t = int(t)
        data = self.ctx.first_context_data().parms()
        self.q = np.array([mod.value() for mod in data.coeff_modulus()], dtype=np.uint64)
        self.L = len(self.q)
        if not all((1 << 60) - (1 << 30) < int(q) < (1 << 60) for q in self.q):
            raise ProtocolError("unexpected SEAL ciphertext primes")  # lift() assumes 60-bit primes
        self.parms_id = self.ctx.first_parms_id()
        keygen = _seal.KeyGenerator(self.ctx)
        self.secret = keygen.secret_key()
        self.public = keygen.create_public_key()
        self.encryptor = _seal.Encryptor(self.ctx, self.secret)
        self.decryptor = _seal.Decryptor(self.ctx, self.secret)
        self.evaluator = _seal.Evaluator(self.ctx)
        self.peer_encryptor = None  # with the peer's public key (rerandomisation)
        zero = _seal.Plaintext(POLY_DEGREE)
        zb = zero.to_bytes()
        self._pt_prefix = zb[:len(zb) - 8 * POLY_DEGREE]
        ct = self.encryptor.encrypt_symmetric(zero)
        cb = ct.to_string()
        self._ct_bytes = 2 * self.L * POLY_DEGREE * 8
        self._ct_prefix = cb[:len(cb) - self._ct_bytes]

    def plain(self, coeffs: np.ndarray):
        """A SEAL plaintext with these N coefficients (uint64, each < t)."""
        pt = _seal.Plaintext()
        pt.load_bytes(self.ctx, self._pt_prefix + np.ascontiguousarray(coeffs, dtype=np.uint64).tobytes())
        return pt

    def raw(self, ct) -> np.ndarray:
        """The ciphertext's data (2, L, N) uint64 (coefficient form)."""
        b = ct.to_string()
        if len(b) != len(self._ct_prefix) + self._ct_bytes:
            raise ProtocolError("unexpected SEAL ciphertext layout")
        return np.frombuffer(b, dtype=np.uint64, offset=len(self._ct_prefix)).reshape(2, self.L, POLY_DEGREE).copy()

    def cipher(self, data: np.ndarray):
        """A ciphertext from wire data (2, L, N): each word reduced mod its prime (see :meth:`lift`)."""
        if data.shape != (2, self.L, POLY_DEGREE) or data.dtype != np.uint64:
            raise ProtocolError("HE ciphertext of the wrong shape")
        ct = _seal.Ciphertext()
        ct.load_bytes(self.ctx, self._ct_prefix + (data % self.q[None, :, None]).tobytes())
        return ct

    def lift(self, data: np.ndarray, prg) -> np.ndarray:
        """Wire form of ciphertext data (..., 2, L, N): each residue ``c`` mod ``q_i`` sent as
        ``c + q_i r`` with ``r`` uniform in ``[0, 16)``, a uniform 64-bit word up to
        ``16 (2^60 - q_i) / 2^64 < 2^-30`` (so the bytes on the wire carry no structure)."""
        r = prg.words((data.size + 15) // 16)  # 4 bits per word
        r = np.stack([(r >> np.uint64(4 * i)) & np.uint64(15) for i in range(16)], axis=1).reshape(-1)
        return data + r[:data.size].reshape(data.shape) * self.q[:, None]

    def decrypt_coeffs(self, ct) -> np.ndarray:
        pt = self.decryptor.decrypt(ct)
        b = pt.to_bytes()
        count = int(np.frombuffer(b, dtype=np.uint64, count=1, offset=len(self._pt_prefix) - 8)[0])
        out = np.zeros(POLY_DEGREE, dtype=np.uint64)
        out[:count] = np.frombuffer(b, dtype=np.uint64, count=count, offset=len(self._pt_prefix))
        return out


def _plain_moduli(count: int) -> list:
    return [m.value() for m in _seal.PlainModulus.Batching(POLY_DEGREE, [PLAIN_BITS] * count)]


# -- encodings --------------------------------------------------------------------------

def _encode_right(Ys: np.ndarray, t: int, kb: int, nb: int) -> np.ndarray:
    """Blocks of signed ``Y`` (k, n) -> (nk, nn, N) coefficients mod t: ``Y[l, j]`` at
    ``j kb + kb - 1 - l``."""
    k, n = Ys.shape
    nk, nn = -(-k // kb), -(-n // nb)
    pad = np.zeros((nk * kb, nn * nb), dtype=np.int64)
    pad[:k, :n] = Ys
    blk = pad.reshape(nk, kb, nn, nb).transpose(0, 2, 3, 1)[..., ::-1]  # (nk, nn, nb, kb) with l reversed
    out = np.zeros((nk, nn, POLY_DEGREE), dtype=np.uint64)
    out[..., :kb * nb] = (blk.reshape(nk, nn, kb * nb) % t).astype(np.uint64)
    return out


def _encode_left_row(Xs: np.ndarray, t: int, mb: int, kb: int, nb: int) -> np.ndarray:
    """One row block of signed ``X`` (<= mb, k) -> (nk, N) coefficients mod t:
    ``X[i, l]`` at ``i kb nb + l``."""
    rows, k = Xs.shape
    nk = -(-k // kb)
    pad = np.zeros((mb, nk * kb), dtype=np.int64)
    pad[:rows, :k] = Xs
    blk = pad.reshape(mb, nk, kb).transpose(1, 0, 2)  # (nk, mb, kb)
    out = np.zeros((nk, mb, kb * nb), dtype=np.uint64)
    out[:, :, :kb] = (blk % t).astype(np.uint64)
    res = np.zeros((nk, POLY_DEGREE), dtype=np.uint64)
    res[:, :mb * kb * nb] = out.reshape(nk, mb * kb * nb)
    return res


def _targets(mb: int, kb: int, nb: int) -> np.ndarray:
    """Coefficient index of output (i, j) of a block: ``i kb nb + j kb + kb - 1`` (mb, nb)."""
    i = np.arange(mb)[:, None]
    j = np.arange(nb)[None, :]
    return i * kb * nb + j * kb + kb - 1


# -- the protocol -----------------------------------------------------------------------

class HEBackend:
    """Per-session HE state of one party: contexts (created on first use, keys included)
    and the peer's public keys. ``exchange(msg)`` is the source's checked channel."""

    def __init__(self, exchange, party: int):
        _require()
        self.exchange = exchange
        self.party = party
        self.ctxs: list = []
        self.bytes_sent = 0
        self.prg = PRG()  # AES-CTR seeded from os.urandom: masks, flooding, wire lifts

    def _contexts(self, count: int) -> list:
        """The first ``count`` contexts; new ones cost one exchange of public keys."""
        if len(self.ctxs) >= count:
            return self.ctxs[:count]
        moduli = _plain_moduli(count)
        new = [_Ctx(t) for t in moduli[len(self.ctxs):]]
        got = self.exchange([c.public.to_string() for c in new])
        if not isinstance(got, list) or len(got) != len(new) or not all(isinstance(b, bytes) for b in got):
            raise ProtocolError("the peer sent malformed HE public keys")
        for c, b in zip(new, got):
            try:
                c.peer_encryptor = _seal.Encryptor(c.ctx, c.ctx.from_public_str(b))
            except Exception:  # noqa: BLE001 - SEAL's own validation failed
                raise ProtocolError("the peer sent an invalid HE public key") from None
        self.ctxs.extend(new)
        return self.ctxs[:count]

    def run(self, products: list) -> list:
        """Shares (m, n) uint64 of every product (same list at both parties): two
        exchanges (ciphertexts of ``Y`` both ways, masked results both ways). A product
        whose inner dimension is too long for the noise budget is split into several
        along ``k`` (shares summed); empty products cost nothing."""
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
        count = max(_plain_count(p.m, p.k, p.n) for p in products)
        ctxs = self._contexts(count)
        mine = [i for i, p in enumerate(products) if p.encryptor == self.party]
        theirs = [i for i, p in enumerate(products) if p.encryptor != self.party]
        shares, pending = {}, None
        for r in range(max(len(mine), len(theirs)) + 1):
            up = self._encrypt(products[mine[r]], ctxs) if r < len(mine) else None
            down = None
            if 1 <= r <= len(theirs):
                i = theirs[r - 1]
                shares[i], down = self._evaluate(products[i], ctxs, pending)
            got = self.exchange([up, down])
            if not (isinstance(got, list) and len(got) == 2
                    and (got[0] is None) == (r >= len(theirs)) and (got[1] is None) == (not 1 <= r <= len(mine))):
                raise ProtocolError("the peer sent a malformed HE message")
            pending = got[0]
            if 1 <= r <= len(mine):
                i = mine[r - 1]
                shares[i] = self._decrypt(products[i], ctxs, got[1])
        return [shares[i] for i in range(len(products))]

    # encryptor
    def _encrypt(self, p: HEProduct, ctxs: list) -> list:
        mb, kb, nb = p.blocks
        Ys = _signed(p.value).reshape(p.k, p.n)
        out = []
        for c in ctxs:
            coeffs = _encode_right(Ys, c.t, kb, nb)
            nk, nn = coeffs.shape[:2]
            arr = np.empty((nk, nn, 2, c.L, POLY_DEGREE), dtype=np.uint64)
            for a in range(nk):
                for b in range(nn):
                    arr[a, b] = c.raw(c.encryptor.encrypt_symmetric(c.plain(coeffs[a, b])))
            self.bytes_sent += arr.nbytes
            out.append(c.lift(arr, self.prg))
        return out

    # evaluator
    def _evaluate(self, p: HEProduct, ctxs: list, cts) -> tuple:
        mb, kb, nb = p.blocks
        m, k, n = p.m, p.k, p.n
        nm, nk, nn = -(-m // mb), -(-k // kb), -(-n // nb)
        if not isinstance(cts, list) or len(cts) != len(ctxs):
            raise ProtocolError("the peer sent a malformed HE message")
        kern = _kernels()
        Xs = _signed(p.value).reshape(m, k)
        # the mask R in [B, B + 2^b) per output element, as 16-bit limbs (low first)
        b_bits = _mask_bits(m, k, n)
        if b_bits + 1 > sum(math.log2(c.t) for c in ctxs):
            raise ProtocolError("HE: too few plaintext moduli for the mask")
        B = k << 126
        limbs = -(-b_bits // 16)
        words = self.prg.words(-(-limbs * m * n // 4)).view(np.uint16)[:limbs * m * n].reshape(limbs, m * n)
        words = words.astype(np.uint64)
        top = b_bits - 16 * (limbs - 1)
        words[-1] &= np.uint64((1 << top) - 1)
        share = -(kern.limbs_mod64(words) + np.uint64(B % (1 << 64)))
        P = nk * mb * kb  # plaintext coefficients summed into one output coefficient (bound)
        n_out = nm * nn * len(ctxs)
        flood_bits = _flood_bits(P, n_out)
        tgt = _targets(mb, kb, nb)
        res = []
        for c, data in zip(ctxs, cts):
            if not isinstance(data, np.ndarray) or data.shape != (nk, nn, 2, c.L, POLY_DEGREE):
                raise ProtocolError("the peer sent HE ciphertexts of the wrong shape")
            _noise_ok(c, flood_bits)
            ev = c.evaluator
            cin = [[None] * nn for _ in range(nk)]
            for a in range(nk):
                for b in range(nn):
                    ct = c.cipher(data[a, b])
                    ev.transform_to_ntt_inplace(ct)
                    cin[a][b] = ct
            r_mod = kern.limbs_mod(words, np.uint64(c.t), np.uint64(B % c.t)).reshape(m, n)
            out = np.empty((nm, nn, 2, c.L, POLY_DEGREE), dtype=np.uint64)
            for ib in range(nm):
                rows = Xs[ib * mb:(ib + 1) * mb]
                pts = []
                for coeffs in _encode_left_row(rows, c.t, mb, kb, nb):
                    if not coeffs.any():  # SEAL refuses a product with the zero plaintext
                        pts.append(None)
                        continue
                    pt = c.plain(coeffs)
                    ev.transform_to_ntt_inplace(pt, c.parms_id)
                    pts.append(pt)
                for b in range(nn):
                    acc = None
                    for a in range(nk):
                        if pts[a] is None:
                            continue
                        if acc is None:
                            acc = ev.multiply_plain(cin[a][b], pts[a])
                        else:
                            ev.add_inplace(acc, ev.multiply_plain(cin[a][b], pts[a]))
                    if acc is None:  # an all-zero row block: the result is a fresh encryption of 0
                        acc = c.peer_encryptor.encrypt_zero()
                    else:
                        ev.transform_from_ntt_inplace(acc)
                    mask = kern.uniform_mod(self.prg.words((2, POLY_DEGREE)), np.uint64(c.t))
                    blk = r_mod[ib * mb:(ib + 1) * mb, b * nb:(b + 1) * nb]
                    mask[tgt[:blk.shape[0], :blk.shape[1]]] = blk
                    ev.add_plain_inplace(acc, c.plain(mask))
                    ev.add_inplace(acc, c.peer_encryptor.encrypt_zero())
                    raw = c.raw(acc)
                    kern.add_flood(raw[0], c.q, flood_bits, self.prg.words((3, POLY_DEGREE)))
                    out[ib, b] = raw
            res.append(c.lift(out, self.prg))
            self.bytes_sent += out.nbytes
        return share.reshape(m, n), res

    # encryptor, after the evaluator's answer
    def _decrypt(self, p: HEProduct, ctxs: list, res) -> np.ndarray:
        mb, kb, nb = p.blocks
        m, n = p.m, p.n
        nm, nn = -(-m // mb), -(-n // nb)
        if not isinstance(res, list) or len(res) != len(ctxs):
            raise ProtocolError("the peer sent a malformed HE message")
        tgt = _targets(mb, kb, nb).reshape(-1)
        residues = np.empty((len(ctxs), nm * mb, nn * nb), dtype=np.uint64)
        for j, (c, data) in enumerate(zip(ctxs, res)):
            if not isinstance(data, np.ndarray) or data.shape != (nm, nn, 2, c.L, POLY_DEGREE):
                raise ProtocolError("the peer sent HE results of the wrong shape")
            for ib in range(nm):
                for b in range(nn):
                    coeffs = c.decrypt_coeffs(c.cipher(data[ib, b]))
                    residues[j, ib * mb:(ib + 1) * mb, b * nb:(b + 1) * nb] = coeffs[tgt].reshape(mb, nb)
        residues = np.ascontiguousarray(residues[:, :m, :n]).reshape(len(ctxs), -1)
        ts = np.array([c.t for c in ctxs], dtype=np.uint64)
        return _kernels().garner_mod64(residues, ts).reshape(m, n)


def _flood_bits(P: int, n_out: int) -> int:
    """Flooding width F (noise uniform in [-2^F, 2^F)): the evaluator-dependent noise is
    at most ``E = _ERR_MAX * P * t / 2`` per coefficient; ``n_out`` ciphertexts of N
    coefficients each differ from the flooded-only distribution by at most
    ``n_out N E / 2^(F+1) <= 2^-(STAT_BITS+1)``."""
    e_bits = math.log2(_ERR_MAX * P) + PLAIN_BITS - 1
    return math.ceil(e_bits + math.log2(n_out * POLY_DEGREE) + STAT_BITS + 1)


def _k_ranges(m: int, k: int, n: int) -> list:
    """Split ``range(k)`` into the fewest equal pieces whose products fit the noise budget
    and send at most :data:`MAX_PIECE_BYTES` of ciphertexts each."""
    for pieces in range(1, k + 1):
        step = -(-k // pieces)
        mb, kb, nb = plan_blocks(m, step, n)
        nk = -(-step // kb)
        n_out = -(-m // mb) * -(-n // nb) * _plain_count(m, step, n)
        up_bytes = nk * -(-n // nb) * _plain_count(m, step, n) * 2 * 3 * 8 * POLY_DEGREE
        if _flood_bits(nk * mb * kb, n_out) <= _FLOOD_MAX_BITS and (up_bytes <= MAX_PIECE_BYTES or step == 1):
            return [(lo, min(k, lo + step)) for lo in range(0, k, step)]
    raise InputError("HE product does not fit the noise budget")


def _noise_ok(c: _Ctx, flood_bits: int) -> None:
    """Decryption stays correct: flooding + product noise + public-key noise < q / (2t)."""
    qbits = sum(math.log2(int(q)) for q in c.q)
    if flood_bits > _FLOOD_MAX_BITS or flood_bits + 2 > qbits - math.log2(c.t) - 1:
        raise InputError("HE product too large for the noise budget: split it")
