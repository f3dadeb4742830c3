"""Matrix-product correlations from homomorphic encryption (pet.mpc.he, served by OTSource):
exact mod 2^64 against Python integers over random and edge shapes (1 x k, k x 1, k above
the polynomial degree, empty), `@` / PrivateMatrix / XGBoost dealer-free against numpy and
the dealer, the OT fallback, and each party's view (fresh ciphertexts; masked, flooded
results)."""

import math
import threading

import numpy as np
import pytest

import pet.mpc as mpc
from pet.mpc import he, he_kernels
from pet.mpc.correlated import MatmulTriple, ReuseMul, ReuseSetup
from pet.mpc.ot.source import OTSource
from pet.transport import run_parties

from .conftest import DataRNG, both

R = 1 << 64
# the pet[he] extra is part of pet[dev]: without it these tests fail rather than skip


def _pymatmul(A, B):
    n = np.asarray(B).shape[1]
    A = [[int(v) for v in row] for row in np.asarray(A)]
    B = [[int(v) for v in row] for row in np.asarray(B)]
    return [[sum(A[i][l] * B[l][j] for l in range(len(B))) % R for j in range(n)] for i in range(len(A))]


def _ints(M):
    return [[int(v) for v in row] for row in np.asarray(M)]


def _pipe():
    """Two ``exchange`` functions joined in memory (each message recorded)."""
    import queue

    qs = [queue.Queue(), queue.Queue()]
    seen = [[], []]

    def make(p):
        def exchange(msg):
            seen[p].append(msg)
            qs[1 - p].put(msg)
            return qs[p].get(timeout=120)
        return exchange

    return make(0), make(1), seen


def _he_products(products_of_party):
    """Run HEBackend.run at both parties in two threads; products_of_party(p) -> list."""
    e0, e1, seen = _pipe()
    out, backends, errors = [None, None], [None, None], []

    def go(p, ex):
        try:
            backends[p] = he.HEBackend(ex, p)
            out[p] = backends[p].run(products_of_party(p))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(p, e)) for p, e in ((0, e0), (1, e1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    assert not errors, errors
    return out, backends, seen


def _edge(shape, kind, rng):
    if kind == "random":
        return rng.integers(0, R, size=shape, dtype=np.uint64)
    value = {"max": R - 1, "min_signed": 1 << 63, "max_signed": (1 << 63) - 1, "zero": 0}[kind]
    return np.full(shape, value, dtype=np.uint64)


@pytest.mark.parametrize("m,k,n,xkind,ykind,enc", [
    (1, 1, 1, "random", "random", 1),
    (1, 1, 1, "min_signed", "min_signed", 0),
    (3, 5, 2, "random", "random", 1),
    (1, 37, 1, "max", "max", 1),  # 1 x k times k x 1
    (1, 19, 6, "max_signed", "min_signed", 0),  # 1 x k
    (9, 1, 4, "random", "max", 1),  # k x 1 operands (outer product)
    (5, 4, 3, "zero", "random", 1),  # all-zero plaintext blocks (SEAL refuses their product)
    (17, 33, 9, "random", "random", 0),  # no multiple of any block size
    (2, 9000, 3, "random", "random", 1),  # k above 8192 (the former N): several k blocks
    (2, 16500, 2, "random", "max", 0),  # k above the polynomial degree N = 16384
])
def test_products_are_exact_mod_2_64(m, k, n, xkind, ykind, enc):
    rng = np.random.default_rng(m * 1000 + k + n)
    X, Y = _edge((m, k), xkind, rng), _edge((k, n), ykind, rng)
    ((s0,), (s1,)), _, _ = _he_products(lambda p: [he.HEProduct(m, k, n, enc, Y if p == enc else X)])
    assert s0.shape == s1.shape == (m, n) and s0.dtype == np.uint64
    assert _ints(s0 + s1) == _pymatmul(X, Y)


def test_several_products_and_empty_ones_in_one_run_take_two_messages_each_way():
    rng = np.random.default_rng(7)
    shapes = [(4, 6, 3, 0), (0, 5, 2, 1), (3, 0, 2, 0), (2, 7, 5, 1)]
    ops = [(rng.integers(0, R, (m, k), dtype=np.uint64), rng.integers(0, R, (k, n), dtype=np.uint64))
           for m, k, n, _ in shapes]

    def prods(p):
        return [he.HEProduct(m, k, n, e, ops[i][1] if p == e else ops[i][0]) for i, (m, k, n, e) in enumerate(shapes)]

    (s0, s1), _, seen = _he_products(prods)
    for (X, Y), a, b in zip(ops, s0, s1):
        assert _ints(a + b) == _pymatmul(X, Y)
    assert len(seen[0]) == len(seen[1]) == 3  # public keys once, ciphertexts, results


def test_k_is_split_when_the_pieces_would_be_too_large():
    ranges = he._k_ranges(256, 200_000, 64)
    assert len(ranges) > 1 and ranges[0][0] == 0 and ranges[-1][1] == 200_000
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    for lo, hi in ranges:  # each piece within the noise budget and the piece size
        mb, kb, nb = he.plan_blocks(256, hi - lo, 64)
        nk, nm, nn = -(-(hi - lo) // kb), -(-256 // mb), -(-64 // nb)
        assert he._flood_bits(nk * mb * kb, nm * nn * mb * nb) <= he._FLOOD_MAX_BITS
        assert nk * nn * 2 * he.DATA_PRIMES * 8 * he.POLY_DEGREE <= he.MAX_PIECE_BYTES


# the data-level primes of he.COEFF_BITS at N = 16384 (seal.CoeffModulus.Create)
_Q4 = np.array([1152921504605962241, 1152921504606584833, 1152921504606683137, 1152921504606748673],
               dtype=np.uint64)


def test_flooding_adds_one_integer_in_range_consistently_across_the_primes():
    q = _Q4
    rng = np.random.default_rng(3)
    c0 = (rng.integers(0, 1 << 60, (4, 64), dtype=np.uint64) % q[:, None]).astype(np.uint64)
    rnd = rng.integers(0, R, (3, 64), dtype=np.uint64)
    F = he._FLOOD_MAX_BITS
    out = c0.copy()
    he_kernels.add_flood(out, q, F, rnd)
    Q = math.prod(int(x) for x in q)
    for j in range(64):
        diffs = [(int(out[i, j]) - int(c0[i, j])) % int(q[i]) for i in range(4)]
        # CRT: the one integer f mod Q with these residues, centred
        f = sum(d * (Q // int(qi)) * pow(Q // int(qi), -1, int(qi)) for d, qi in zip(diffs, q)) % Q
        f = f - Q if f > Q // 2 else f
        assert -(1 << F) <= f < (1 << F)


def _edge_words(rng, count):
    return [int(v) for v in rng.integers(0, R, count, dtype=np.uint64)] + [0, 1, R - 1, 1 << 63, (1 << 63) - 1]


def test_encode_scaled_is_round_Q_v_over_2_64_mod_each_prime():
    rng = np.random.default_rng(4)
    Q = math.prod(int(x) for x in _Q4)
    consts, rho = he_kernels.scaled_consts(_Q4)
    vals = _edge_words(rng, 300)
    got = he_kernels.encode_scaled(np.array(vals, dtype=np.uint64), _Q4, consts, rho)
    for j, v in enumerate(vals):
        want = (Q * v + (1 << 63)) >> 64  # round(Q v / 2^64)
        assert [int(got[i, j]) for i in range(4)] == [want % int(x) for x in _Q4]


def test_decode_scaled_recovers_the_message_under_the_noise_bound():
    """round(2^64 w / Q) mod 2^64 for w = round(Q v / 2^64) + noise, |noise| up to Q / 2^66
    (the bound the flooding budget keeps), and the same value from Python integers."""
    rng = np.random.default_rng(6)
    Q = math.prod(int(x) for x in _Q4)
    consts, _ = he_kernels.scaled_consts(_Q4)
    vals = _edge_words(rng, 200)
    bound = Q >> 66
    noises = [int.from_bytes(rng.bytes(24), "little") % (2 * bound + 1) - bound for _ in vals[:-4]] + \
        [bound, -bound, bound, -bound]
    ws = [(((Q * v + (1 << 63)) >> 64) + e) % Q for v, e in zip(vals, noises)]
    res = np.array([[w % int(x) for w in ws] for x in _Q4], dtype=np.uint64)
    got = [int(x) for x in he_kernels.decode_scaled(res, _Q4, consts)]
    assert got == vals
    assert got == [((w << 64) + Q // 2) // Q % R for w in ws]


def test_ntt_mac_is_the_sum_of_pointwise_products_mod_each_prime():
    """The evaluator's products in the NTT domain (Montgomery form, skipping zero blocks)
    against Python integers, edge words (q_i - 1) included."""
    rng = np.random.default_rng(8)
    nk, N = 3, 48
    mc = he_kernels.mont_consts(_Q4)
    cts = (rng.integers(0, R, (nk, 2, 4, N), dtype=np.uint64) % _Q4[:, None]).astype(np.uint64)
    pts = (rng.integers(0, R, (nk, 4, N), dtype=np.uint64) % _Q4[:, None]).astype(np.uint64)
    cts[..., :2] = (_Q4 - 1)[:, None]
    pts[..., :3] = (_Q4 - 1)[:, None]
    live = np.array([True, False, True])
    want = [[[sum(int(cts[a, c, i, j]) * int(pts[a, i, j]) for a in range(nk) if live[a]) % int(_Q4[i])
              for j in range(N)] for i in range(4)] for c in range(2)]
    mont = pts.copy()
    he_kernels.to_montgomery(mont, _Q4, mc)
    acc = np.empty((2, 4, N), dtype=np.uint64)
    he_kernels.ntt_mac(cts, mont, live, _Q4, mc, acc)
    assert acc.tolist() == want


def test_parameters_meet_the_stated_bounds():
    # HE standard, 128-bit classical, ternary secret: log q <= 438 at N = 16384
    assert sum(he.COEFF_BITS) <= 438 and he.POLY_DEGREE == 16384
    c = he._Ctx()
    logQ = sum(math.log2(int(x)) for x in c.q)
    assert len(c.q) == he.DATA_PRIMES == 4 and logQ > 239.99
    # correctness: flooding + everything else below Q / 2^66 (a quarter of the rounding step)
    assert he._FLOOD_MAX_BITS + 2 <= logQ - 66
    for m, k, n in [(1, 1, 1), (256, 256, 256), (512, 512, 512), (320, 10_000, 64), (2, 9000, 3)]:
        for lo, hi in he._k_ranges(m, k, n):
            mb, kb, nb = he.plan_blocks(m, hi - lo, n)
            nk = -(-(hi - lo) // kb)
            F = he._flood_bits(nk * mb * kb, -(-m // mb) * -(-n // nb) * mb * nb)
            assert F <= he._FLOOD_MAX_BITS
            # the X-dependent noise E is 2^-(40 + log2 revealed) of the flooding width
            assert math.log2(he._ERR_MAX * nk * mb * kb) + 63 + math.log2(m * n) + 40 < F


# -- OTSource: typed specs -----------------------------------------------------------

def _get(specs, offer=(True, True)):
    def party(p):
        def f(ch):
            src = OTSource(ch, p, he_products=offer[p])
            return src.get(specs), src.matrix_backend
        return f

    return run_parties(party(0), party(1), timeout=900)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 8193, 2), (6, 4, 1), (1, 5, 7), (0, 3, 2)])
def test_matmul_triples_from_he(m, k, n):
    ((f0,), b0), ((f1,), b1) = _get([MatmulTriple(m, k, n)])
    assert b0 == b1 == "he"
    a, b, c = (f0[x] + f1[x] for x in "abc")
    assert _ints(c) == _pymatmul(a, b)


def test_the_ot_path_serves_matrix_kinds_when_one_party_does_not_offer_he():
    with pytest.warns(RuntimeWarning, match="OT path"):
        ((f0, g0), b0), ((f1, g1), b1) = _get([MatmulTriple(2, 3, 2), ReuseSetup(0, 2, 3, 5)], offer=(True, False))
    assert b0 == b1 == "ot"
    a, b, c = (f0[x] + f1[x] for x in "abc")
    assert _ints(c) == _pymatmul(a, b)


def test_reuse_products_from_he_share_one_private_mask():
    specs = [ReuseSetup(1, 4, 6, 9), ReuseMul(9, 1, 4, 6, 3), ReuseMul(9, 1, 4, 6, 2)]
    (m0, b0), (m1, b1) = _get(specs)
    assert b0 == b1 == "he"
    A = m1[0]["A"]
    for i in (1, 2):
        assert _ints(m0[i]["s"] + m1[i]["s"]) == _pymatmul(A, m0[i]["b"])


# -- callers dealer-free ---------------------------------------------------------------

def test_shared_matmul_and_private_matrix_dealer_free_match_numpy():
    rng = DataRNG(21)
    A, B = rng.uniform(-3, 3, (5, 9)), rng.uniform(-3, 3, (9, 4))
    M, V = rng.uniform(-2, 2, (6, 9)), rng.uniform(-2, 2, (9, 3))

    def prog(s):
        a = s.share(A if s.party == 0 else None, owner=0)
        b = s.share(B if s.party == 1 else None, owner=1)
        pm = s.private_matrix(M if s.party == 1 else None, owner=1)
        v = s.share(V if s.party == 0 else None, owner=0)
        prep = mpc.PreparedProducts([pm], 3)
        return [s.reveal(a @ b), s.reveal(pm @ v), s.reveal(prep.matmul(v)), s.source.matrix_backend]

    got = both(prog, correlations="ot")
    assert got[3] == "he"
    np.testing.assert_allclose(got[0], A @ B, atol=1e-2)
    np.testing.assert_allclose(got[1], M @ V, atol=1e-3)
    np.testing.assert_allclose(got[2], M @ V, atol=1e-3)


def test_xgboost_dealer_free_with_he_gives_the_dealers_trees():
    from sklearn.datasets import load_diabetes

    from pet.ml import VerticalXGBRegressor

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:100], y[:100]
    parts = [X[:, :2], X[:, 2:4]]

    def prog(s):
        est = VerticalXGBRegressor(s, n_estimators=2, max_depth=2, learning_rate=0.5, max_bin=8)
        est.fit(parts[s.party], y if s.party == 0 else None)
        return est.predict(parts[s.party]), est.model_["owner"], getattr(s.source, "matrix_backend", None)

    (o0, _), (d0, _) = mpc.run_local(prog, correlations="ot", timeout=900), mpc.run_local(prog, timeout=900)
    assert o0[2] == "he"
    np.testing.assert_array_equal(o0[1], d0[1])  # same split owners
    np.testing.assert_allclose(o0[0], d0[0], rtol=1e-3, atol=0.5)
    assert np.sqrt(np.mean((o0[0] - y) ** 2)) < np.std(y)


# -- views -------------------------------------------------------------------------------

def test_each_partys_view_is_masked():
    """Evaluator: the ciphertexts it receives are fresh (two encryptions of the same Y share
    nothing). Encryptor: it receives ``c0`` only at the target coefficients, and what it
    decrypts there does not depend on X -- the noise is the flooded one (about 2^F) whether
    X is zero or not (without flooding, X = 0 would leave a noise of about 2^20), and the
    decoded values are V + R with R uniform mod 2^64."""
    m, k, n = 4, 6, 5
    rng = np.random.default_rng(11)
    Y = rng.integers(0, R, (k, n), dtype=np.uint64)
    captured = {"noise_bits": [], "values": []}
    orig = he.HEBackend._decrypt

    def spy(self, p, c, res):
        mb, kb, nb = p.blocks
        assert res[0].shape[-1] == mb * nb < he.POLY_DEGREE  # only the targets of c0
        q = [int(x) for x in c.q]
        Q = math.prod(q)
        tgt = he._targets(mb, kb, nb).reshape(-1)
        c0, c1 = c.reduce(res[0][0, 0]), c.reduce(res[1][0, 0])
        v = (c.times_secret(c1, c1)[0][:, tgt] + c0) % c.q[:, None]
        for j in range(v.shape[1]):
            w = sum(int(v[i, j]) * (Q // qi) * pow(Q // qi, -1, qi) for i, qi in enumerate(q)) % Q
            W = ((w << 64) + Q // 2) // Q % R
            eta = (w - ((Q * W + (1 << 63)) >> 64)) % Q
            eta = eta - Q if eta > Q // 2 else eta
            captured["noise_bits"].append(abs(eta).bit_length())
            captured["values"].append(W)
        captured["F"] = he._flood_bits(-(-p.k // kb) * mb * kb, -(-p.m // mb) * -(-p.n // nb) * mb * nb)
        return orig(self, p, c, res)

    he.HEBackend._decrypt = spy
    try:
        views, bits = [], []
        for X in (np.zeros((m, k), dtype=np.uint64), rng.integers(0, R, (m, k), dtype=np.uint64)):
            captured["noise_bits"] = []
            ((s0,), (s1,)), _, seen = _he_products(lambda p, X=X: [he.HEProduct(m, k, n, 1, Y if p == 1 else X)])
            assert _ints(s0 + s1) == _pymatmul(X, Y)
            views.append(seen[1][1][0])  # party 1's ciphertexts of Y
            bits.append(captured["noise_bits"])
    finally:
        he.HEBackend._decrypt = orig
    # fresh encryptions of the same Y: no coefficient of c1 (or c0) repeats between the two
    assert views[0].shape == views[1].shape
    assert np.mean(views[0] == views[1]) < 1e-3
    # the noise at the targets is the flooding's (about 2^F) for X = 0 as for a random X
    F = captured["F"]
    for b in bits:
        assert max(b) <= F + 1 and np.median(b) >= F - 2
    # for X = 0 the decoded values are R itself: uniform 64-bit words
    zero_vals = np.array(captured["values"][:len(bits[0])], dtype=np.float64) / R
    assert len(set(captured["values"])) == len(captured["values"]) and 0.3 < zero_vals.mean() < 0.7


def test_pet_imports_and_falls_back_to_ot_without_seal_python():
    import subprocess
    import sys

    code = ("import sys, warnings; sys.modules['seal'] = None\n"
            "import numpy as np, pet, pet.mpc as mpc\n"
            "from pet.mpc import he\n"
            "assert not he.HE_AVAILABLE\n"
            "def prog(s):\n"
            "    a = s.share(np.eye(2) if s.party == 0 else None, owner=0)\n"
            "    b = s.share(np.full((2, 2), 3.0) if s.party == 1 else None, owner=1)\n"
            "    return s.reveal(a @ b), s.source.matrix_backend\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    (r, backend), _ = mpc.run_local(prog, correlations='ot', timeout=300)\n"
            "assert backend == 'ot' and np.allclose(r, 3.0), (backend, r)\n"
            "assert any('pet[he]' in str(x.message) for x in w)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_pieces_and_several_products_one_way_are_pipelined_and_exact(monkeypatch):
    monkeypatch.setattr(he, "MAX_PIECE_BYTES", 1)  # every piece one row of k
    rng = np.random.default_rng(9)
    shapes = [(3, 4, 2), (2, 3, 3), (4, 2, 1)]
    ops = [(rng.integers(0, R, (m, k), dtype=np.uint64), rng.integers(0, R, (k, n), dtype=np.uint64))
           for m, k, n in shapes]
    assert he._k_ranges(3, 4, 2) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    (s0, s1), _, seen = _he_products(lambda p: [he.HEProduct(m, k, n, 0, ops[i][1] if p == 0 else ops[i][0])
                                                for i, (m, k, n) in enumerate(shapes)])
    for (X, Y), a, b in zip(ops, s0, s1):
        assert _ints(a + b) == _pymatmul(X, Y)
    assert len(seen[0]) > 3  # keys + one exchange per piece + the last results
