"""ECDH-PSI against Python's set intersection (the oracle), with Hypothesis."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pet.errors import InputError, PetTypeError, ProtocolError
from pet.psi import digest_bytes, ecdh_psi, psi_cardinality
from pet.transport import run_parties

texts = st.text(max_size=12)  # full unicode, incl. surrogates-free astral characters
blobs = st.binary(max_size=12)
big_ints = st.integers(min_value=-(2**130), max_value=2**130)
elements = st.one_of(texts, blobs, big_ints)


@st.composite
def two_sets(draw, elem=elements, max_size=25):
    common = draw(st.sets(elem, max_size=max_size))
    only0 = draw(st.sets(elem, max_size=max_size))
    only1 = draw(st.sets(elem, max_size=max_size))
    a = list(common | only0)
    b = list(common | (only1 - only0))
    a = draw(st.permutations(a))
    b = draw(st.permutations(b))
    return a, b


def run_psi(a, b, **kw):
    return run_parties(lambda ch: ecdh_psi(ch, a, party=0, **kw),
                       lambda ch: ecdh_psi(ch, b, party=1, **kw), timeout=120)


def check_against_oracle(a, b, r0, r1):
    oracle = set(a) & set(b)
    assert r0.size == r1.size == len(oracle)
    assert r0.items == [x for x in a if x in oracle]  # own input order
    assert r1.items == [x for x in b if x in oracle]
    assert r0.peer_size == len(b) and r1.peer_size == len(a)
    # joint order: row i of party 0 matches row i of party 1
    assert [a[i] for i in r0.indices] == [b[j] for j in r1.indices]
    assert sorted(r0.indices.tolist()) == sorted(a.index(x) for x in oracle)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_sets())
def test_matches_set_intersection(ab):
    a, b = ab
    r0, r1 = run_psi(a, b)
    check_against_oracle(a, b, r0, r1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_sets(elem=st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=6)))
def test_unicode_strings(ab):
    a, b = ab
    check_against_oracle(a, b, *run_psi(a, b))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_sets(elem=st.integers(min_value=-(2**300), max_value=2**300)))
def test_large_ints(ab):
    a, b = ab
    check_against_oracle(a, b, *run_psi(a, b))


@pytest.mark.parametrize("n0", [0, 1, 2])
@pytest.mark.parametrize("n1", [0, 1, 2])
def test_tiny_sizes(n0, n1):
    a = ["x", "y"][:n0]
    b = ["y", "x"][:n1]
    check_against_oracle(a, b, *run_psi(a, b))


def test_reveal_to_one_party_both_orders():
    a, b = ["1", "2", "3"], ["2", "3"]
    for r in (0, 1):
        r0, r1 = run_psi(a, b, reveal=r)
        learner, other = (r0, r1) if r == 0 else (r1, r0)
        own = a if r == 0 else b
        assert learner.items == [x for x in own if x in {"2", "3"}]
        assert other.items is None and other.indices is None and other.size is None
        assert other.peer_size == len(own)


def test_small_vectors_from_reference():
    # tiktok-pet.md case 3: {"0".."9"} vs {"5".."14"} -> {"5".."9"}
    a = [str(i) for i in range(10)]
    b = [str(i) for i in range(5, 15)]
    r0, r1 = run_psi(a, b)
    assert r0.items == r1.items == [str(i) for i in range(5, 10)]


def test_int_and_str_do_not_match():
    r0, r1 = run_psi([123, "abc", b"abc"], ["123", "abc"])
    assert r0.items == ["abc"] and r1.items == ["abc"]


def test_numpy_and_pandas_inputs():
    import numpy as np
    import pandas as pd

    a = np.arange(0, 40, dtype=np.int64)
    b = pd.Series(list(range(30, 60)), dtype="int64")
    r0, r1 = run_psi(a, b)
    assert r0.items == list(range(30, 40)) and r1.items == list(range(30, 40))
    s = pd.Series(["a", "b", "c"], dtype="string")
    r0, r1 = run_psi(s, np.array(["c", "a"]))
    assert r0.items == ["a", "c"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_sets())
def test_cardinality(ab):
    a, b = ab
    c0, c1 = run_parties(lambda ch: psi_cardinality(ch, a, party=0),
                         lambda ch: psi_cardinality(ch, b, party=1), timeout=120)
    assert c0 == c1 == len(set(a) & set(b))


def test_pool_chunked_path_with_progress():
    """Several chunks, uneven sizes, two worker threads, progress callback."""
    a = list(range(3000))
    b = [str(i) for i in range(1000)] + list(range(2500, 4100))
    seen = {0: [], 1: []}

    def party(k, items):
        def f(ch):
            return ecdh_psi(ch, items, party=k, workers=2, chunk_size=512,
                            progress=lambda done, total: seen[k].append((done, total)))
        return f

    r0, r1 = run_parties(party(0, a), party(1, b), timeout=300)
    check_against_oracle(a, b, r0, r1)
    assert seen[0][-1] == (len(a) + len(b), len(a) + len(b))
    assert seen[1][-1] == (len(a) + len(b), len(a) + len(b))
    # bytes per item: 32-byte points plus ell-byte digests, each way (+ small headers)
    ell = digest_bytes(len(a), len(b))
    assert r0.stats.bytes_sent < 32 * len(a) + ell * len(b) + 4096
    assert r0.stats.bytes_sent >= 32 * len(a) + ell * len(b)


def test_pool_with_the_batched_x25519_kernel():
    """Chunks of >= BATCH_MIN points (the numba kernel) in two worker threads, the last
    chunk of each side below it (the per-call path): equal to the set intersection."""
    from pet.psi._kernels import BATCH_MIN

    a = [f"k{i}" for i in range(3 * BATCH_MIN + 100)]
    b = [f"k{i}" for i in range(2 * BATCH_MIN, 5 * BATCH_MIN + 7)]

    def party(k, items):
        return lambda ch: ecdh_psi(ch, items, party=k, workers=2, chunk_size=BATCH_MIN)

    r0, r1 = run_parties(party(0, a), party(1, b), timeout=300)
    check_against_oracle(a, b, r0, r1)


def test_ro_suite():
    a, b = ["a", "b", "c"], ["c", "d", "a"]
    check_against_oracle(a, b, *run_psi(a, b, hash_suite="RO"))


# -- validation --------------------------------------------------------------------------

def solo(items, **kw):
    """Errors raised before any message: one party is enough (the peer is never reached)."""
    from pet.transport import local_pair

    ch0, _ = local_pair(timeout=5)
    return ecdh_psi(ch0, items, party=0, **kw)


def test_duplicates_rejected_with_count():
    with pytest.raises(InputError, match=r"2 duplicate item\(s\).*dedupe=True"):
        solo(["a", "b", "a", "c", "b"])


def test_dedupe_keeps_first_occurrence():
    a = ["a", "b", "a", "c", "b"]
    r0, r1 = run_parties(lambda ch: ecdh_psi(ch, a, party=0, dedupe=True),
                         lambda ch: ecdh_psi(ch, ["b", "z"], party=1), timeout=60)
    assert r0.items == ["b"] and r0.indices.tolist() == [1]


@pytest.mark.parametrize("bad,row", [(["a", None, "b"], 1), ([1, 2, float("nan")], 2)])
def test_missing_values_name_the_row(bad, row):
    with pytest.raises(InputError, match=f"row {row}"):
        solo(bad)


def test_pandas_na_names_the_row():
    import pandas as pd

    with pytest.raises(InputError, match="row 2"):
        solo(pd.Series([1, 2, None, 4], dtype="Int64"))


@pytest.mark.parametrize("bad,exc", [([1.5], PetTypeError), ([True], PetTypeError), ([object()], PetTypeError),
                                     ("abc", PetTypeError), (5, PetTypeError)])
def test_bad_items(bad, exc):
    with pytest.raises(exc):
        solo(bad)


@pytest.mark.parametrize("kw", [{"party": 2}, {"party": True}, {"reveal": "none"}, {"reveal": 2},
                                {"hash_suite": "XX"}, {"chunk_size": 3}, {"workers": 0}, {"progress": "yes"}])
def test_bad_arguments(kw):
    from pet.transport import local_pair

    ch0, _ = local_pair(timeout=5)
    args = {"party": 0, **kw}
    with pytest.raises(InputError):
        ecdh_psi(ch0, ["a"], **args)


def test_not_a_channel():
    with pytest.raises(PetTypeError):
        ecdh_psi(object(), ["a"], party=0)


@pytest.mark.parametrize("kw0,kw1,match", [
    ({"party": 0}, {"party": 0}, "both sides claim party 0"),
    ({"party": 0, "reveal": 0}, {"party": 1, "reveal": "both"}, "reveal mode"),
    ({"party": 0, "hash_suite": "RO"}, {"party": 1}, "hash suite"),
])
def test_mismatched_parameters(kw0, kw1, match):
    with pytest.raises(ProtocolError, match=match):
        run_parties(lambda ch: ecdh_psi(ch, ["a"], **kw0), lambda ch: ecdh_psi(ch, ["a"], **kw1), timeout=30)


def test_psi_vs_cardinality_mismatch():
    with pytest.raises(ProtocolError, match="operation"):
        run_parties(lambda ch: ecdh_psi(ch, ["a"], party=0), lambda ch: psi_cardinality(ch, ["a"], party=1),
                    timeout=30)


@pytest.mark.parametrize("n0,n1", [(0, 0), (1, 1), (10, 3), (2**16, 2**16), (2**20, 2**20), (2**30, 5)])
def test_digest_length_formula(n0, n1):
    from fractions import Fraction

    ell = digest_bytes(n0, n1)
    pairs = n0 * n1 + n0 * (n0 - 1) // 2 + n1 * (n1 - 1) // 2
    assert Fraction(pairs, 2 ** (8 * ell)) <= Fraction(1, 2**40)  # false-match bound
    assert ell == 5 or Fraction(pairs, 2 ** (8 * (ell - 1))) > Fraction(1, 2**40)  # shortest such


def test_match_digests_equals_set_intersection_in_digest_order():
    from pet.psi.ecdh import match_digests

    rng = np.random.default_rng(7)
    for n_own, n_peer, ell in [(0, 0, 5), (1, 0, 5), (0, 3, 5), (500, 300, 5), (2000, 2000, 11)]:
        pool = np.unique(rng.integers(0, 256, size=(3 * (n_own + n_peer) + 1, ell), dtype=np.uint8), axis=0)
        rng.shuffle(pool)
        own = pool[:n_own]
        peer = np.concatenate([own[rng.random(n_own) < 0.4], pool[n_own:n_own + n_peer]])[:n_peer]
        rng.shuffle(peer)
        peer_set = {bytes(r) for r in peer}
        want = sorted((bytes(r), i) for i, r in enumerate(own) if bytes(r) in peer_set)
        got = match_digests(np.ascontiguousarray(own), np.ascontiguousarray(peer))
        assert got.tolist() == [i for _, i in want]


def test_match_digests_refuses_collisions():
    from pet.psi.ecdh import match_digests

    a, b, c = (np.full((1, 6), v, dtype=np.uint8) for v in (1, 2, 3))
    for own, peer in [(np.concatenate([a, a]), b), (a, np.concatenate([c, c])),
                      (np.concatenate([a, b, a]), np.concatenate([a, c]))]:
        with pytest.raises(ProtocolError, match="collide"):
            match_digests(own, peer)
