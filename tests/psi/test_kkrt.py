"""KKRT-PSI: against Python's set intersection and ecdh_psi (the oracles), reveal modes,
duplicates, cuckoo failure and retry, a peer that stops, and the building blocks
(BLAKE2b kernel vs hashlib, the 512-wide OT extension, cuckoo placement)."""

import hashlib
import os
import random
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pet.errors import InputError, PeerDisconnected, ProtocolError, TransportError
from pet.psi import cuckoo, ecdh_psi, encode_chunks, kkrt, kkrt_kernels, kkrt_psi
from pet.psi.ecdh import prepare
from pet.transport import local_pair, run_parties


def run_kkrt(a, b, **kw):
    return run_parties(lambda ch: kkrt_psi(ch, a, party=0, **kw),
                       lambda ch: kkrt_psi(ch, b, party=1, **kw), timeout=300)


def check_against_oracle(a, b, r0, r1):
    oracle = set(a) & set(b)
    assert r0.size == r1.size == len(oracle)
    assert r0.items == [x for x in a if x in oracle]  # own input order
    assert r1.items == [x for x in b if x in oracle]
    assert r0.peer_size == len(b) and r1.peer_size == len(a)
    # joint order: row i of party 0 matches row i of party 1
    assert [a[i] for i in r0.indices] == [b[j] for j in r1.indices]
    assert sorted(r0.indices.tolist()) == sorted(a.index(x) for x in oracle)


def two_sets(n0, n1, common, make=lambda i: f"id-{i}", seed=0):
    rng = random.Random(seed)
    pool = rng.sample(range(10 * (n0 + n1) + 10), n0 + n1 - common)
    shared, rest = pool[:common], pool[common:]
    a = [make(i) for i in shared + rest[:n0 - common]]
    b = [make(i) for i in shared + rest[n0 - common:]]
    rng.shuffle(a)
    rng.shuffle(b)
    return a, b


# -- against the oracles ------------------------------------------------------------------


@pytest.mark.parametrize("n0,n1,common", [(0, 0, 0), (0, 7, 0), (9, 0, 0), (1, 1, 1), (1, 1, 0), (3, 50, 2),
                                          (200, 37, 30), (1000, 1000, 500), (5000, 300, 300)])
def test_random_sets_match_set_intersection(n0, n1, common):
    a, b = two_sets(n0, n1, common, seed=n0 * 7 + n1)
    check_against_oracle(a, b, *run_kkrt(a, b))


def test_large_unequal_sets_full_table():
    """One side above 2^16, the other smaller. With reveal=0 the large side is the OPRF
    receiver (a full-size cuckoo table of ~1.5 n bins, several messages); with "both"
    the smaller side is."""
    a, b = two_sets((1 << 16) + 1234, 3000, 1700, seed=3)
    r0, r1 = run_kkrt(a, b, reveal=0)
    oracle = set(a) & set(b)
    assert r0.size == len(oracle) and r0.items == [x for x in a if x in oracle] and r1.items is None
    check_against_oracle(a, b, *run_kkrt(a, b))
    b2, a2 = two_sets((1 << 16) + 77, 1 << 12, 999, seed=4)
    check_against_oracle(a2, b2, *run_kkrt(a2, b2, chunk_size=4096))


texts = st.text(max_size=10)
blobs = st.binary(max_size=10)
big_ints = st.integers(min_value=-(2**130), max_value=2**130)
elements = st.one_of(texts, blobs, big_ints, st.tuples(st.integers(-3, 3), st.text(alphabet="ab", max_size=2)))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(elements, max_size=20), st.sets(elements, max_size=20), st.sets(elements, max_size=20))
def test_agrees_with_ecdh_on_every_input_type(common, only0, only1):
    a = list(common | only0)
    b = list(common | (only1 - only0))
    rk0, rk1 = run_kkrt(a, b)
    re0, re1 = run_parties(lambda ch: ecdh_psi(ch, a, party=0), lambda ch: ecdh_psi(ch, b, party=1), timeout=120)
    check_against_oracle(a, b, rk0, rk1)
    assert rk0.items == re0.items and rk1.items == re1.items
    assert sorted(rk0.indices.tolist()) == sorted(re0.indices.tolist())


def test_encoding_rules_as_ecdh():
    """123 and '123' do not match; numpy ints equal Python ints; composite keys; bytes."""
    a = [123, "0123", b"\x00", (1, "x"), np.int64(7), "é"]
    b = ["123", "123", b"\x00", (1, "x"), 7, "e\u0301"][1:] + [5]
    r0, r1 = run_kkrt(a, b)
    e0, e1 = run_parties(lambda ch: ecdh_psi(ch, a, party=0), lambda ch: ecdh_psi(ch, b, party=1), timeout=60)
    assert r0.items == e0.items == [b"\x00", (1, "x"), np.int64(7)]
    assert r1.items == e1.items


def test_store_input_streams_like_ecdh():
    a, b = two_sets(3000, 2000, 1200, seed=9)
    sa = encode_chunks([a[i:i + 700] for i in range(0, len(a), 700)])
    r0, r1 = run_parties(lambda ch: kkrt_psi(ch, sa, party=0), lambda ch: kkrt_psi(ch, b, party=1), timeout=120)
    check_against_oracle(a, b, r0, r1)


@pytest.mark.parametrize("reveal", ["both", 0, 1])
@pytest.mark.parametrize("sizes", [(400, 900), (900, 400)])
def test_reveal_modes(reveal, sizes):
    a, b = two_sets(*sizes, 150, seed=sizes[0])
    r0, r1 = run_kkrt(a, b, reveal=reveal)
    oracle = set(a) & set(b)
    for party, r, own in ((0, r0, a), (1, r1, b)):
        assert r.peer_size == len(b if party == 0 else a)
        if reveal in ("both", party):
            assert r.size == len(oracle) and r.items == [x for x in own if x in oracle]
        else:
            assert r.items is None and r.indices is None and r.size is None
            assert r.stats.bytes_received < 200_000  # no result message, only the protocol's own


def test_reveal_to_spelling():
    a, b = two_sets(50, 60, 20, seed=1)
    r0, r1 = run_parties(lambda ch: kkrt_psi(ch, a, party=0, reveal_to=None),
                         lambda ch: kkrt_psi(ch, b, party=1, reveal_to=None), timeout=60)
    check_against_oracle(a, b, r0, r1)


def test_duplicates_rejected_and_dedupe():
    a = ["x", "y", "x", "z", "y"]
    with pytest.raises(InputError, match=r"2 duplicate item\(s\).*dedupe=True"):
        run_kkrt(a, ["x"])
    r0, r1 = run_kkrt(a, ["y", "q"], dedupe=True)
    assert r0.items == ["y"] and r0.indices.tolist() == [1] and r1.indices.tolist() == [0]


@pytest.mark.parametrize("kw0,kw1,match", [
    ({"party": 0}, {"party": 0}, "both sides claim party 0"),
    ({"party": 0, "reveal": 0}, {"party": 1, "reveal": "both"}, "reveal mode"),
])
def test_mismatched_parameters(kw0, kw1, match):
    with pytest.raises(ProtocolError, match=match):
        run_parties(lambda ch: kkrt_psi(ch, ["a"], **kw0), lambda ch: kkrt_psi(ch, ["a"], **kw1), timeout=30)


def test_kkrt_against_ecdh_peer_refused():
    with pytest.raises(ProtocolError, match="KKRT|ECDH"):
        run_parties(lambda ch: kkrt_psi(ch, ["a"], party=0), lambda ch: ecdh_psi(ch, ["a"], party=1), timeout=30)


# -- cuckoo failure: detected, retried with fresh functions, never dropped ------------------


def _run_protocol(a, b, sizes, mode="both"):
    def party(p, items):
        def fn(ch):
            _, store = prepare(items, dedupe=False)
            return store, kkrt.run_protocol(ch, store, party=p, op="psi", mode=mode, _table_sizes=sizes)
        return fn
    return run_parties(party(0, a), party(1, b), timeout=120)


def test_cuckoo_failure_is_retried_with_new_seeds():
    """Attempt 0 gets a table smaller than the set (placement must fail); attempt 1 the
    normal size. Every item is still found."""
    a, b = two_sets(1000, 1500, 600, seed=11)  # party 0 (smaller) is the receiver
    (s0, o0), (s1, o1) = _run_protocol(a, b, sizes=(960,))
    assert o0["attempt"] == o1["attempt"] == 1
    got0 = [a[i] for i in s0.rows_of(o0["matched"])]
    got1 = [b[i] for i in s1.rows_of(o1["matched"])]
    assert got0 == got1 and set(got0) == set(a) & set(b)


def test_cuckoo_overfull_table_detected_by_the_walk():
    """Load 0.98 with 3 functions is above the 3-ary threshold (~0.918): the random walk
    runs out of evictions and reports failure rather than leaving an item out."""
    h = np.frombuffer(os.urandom(16 * 1000), dtype=np.uint64).reshape(1000, 2)
    for attempt in range(3):
        assert cuckoo.build(h, 1024, cuckoo.seed_key(b"s" * 32, attempt)) is None


def test_cuckoo_failing_every_attempt_stops_both_parties():
    a, b = two_sets(1000, 1500, 600, seed=12)
    with pytest.raises(ProtocolError, match="cuckoo"):
        _run_protocol(a, b, sizes=(960,) * kkrt.MAX_ATTEMPTS)


def test_cuckoo_places_every_item_in_one_of_its_bins():
    n = 20000
    h = np.frombuffer(os.urandom(16 * n), dtype=np.uint64).reshape(n, 2)
    m = cuckoo.bin_count(n)
    t = cuckoo.build(h, m, cuckoo.seed_key(b"x" * 32, 0))
    assert t is not None and t.m == m and m % 64 == 0
    assert (t.bin_item[t.bins[np.arange(n), t.item_hash]] == np.arange(n)).all()
    assert np.sort(t.bin_item[t.bin_item >= 0]).tolist() == list(range(n))


def test_bin_count_follows_the_fitted_law():
    assert cuckoo.bin_count(0) == 0
    assert 1.50 < cuckoo.expansion(1 << 16) < 1.52 and 1.53 < cuckoo.expansion(1 << 20) < 1.55
    for n in (1, 2, 10, 100, 1000, 1 << 16):
        assert cuckoo.bin_count(n) >= n * cuckoo.expansion(n) and cuckoo.bin_count(n) % 64 == 0


def test_mask_length():
    assert kkrt.mask_bytes(1 << 20, 1 << 20) == 10  # 40 + 40 bits
    assert kkrt.mask_bytes(1, 1) == 6  # 40 + 1 bits
    assert kkrt.mask_bytes(1 << 16, 1 << 16) == 9  # 72 bits


# -- a peer that stops mid-protocol: an error, not a hang ---------------------------------


def _stopping_peer(stop_after: str, party: int = 1, n: int = 500):
    """A peer that runs the header (and the base OTs) and then closes its channel."""
    from pet.mpc.ot.kkrt_ext import base_ots_one_way

    def fn(ch):
        items = [f"id-{i}" for i in range(n)]
        header = {"proto": "pet.psi.kkrt", "v": 1, "op": "psi", "party": party, "mode": "both", "arity": 1,
                  "n": len(items), "chunk": kkrt.DEFAULT_CHUNK, "nonce": os.urandom(32)}
        ch.exchange(header)
        if stop_after == "base":
            base_ots_one_way(ch, party, ot_sender=True)  # party 0 has the smaller set: the receiver
        if stop_after == "first-chunk":
            base_ots_one_way(ch, party, ot_sender=True)
            ch.recv()  # the attempt number
            ch.recv()  # one u chunk
        ch.close()
        return None
    return fn


@pytest.mark.parametrize("stop_after", ["header", "base", "first-chunk"])
def test_peer_stops_mid_protocol(stop_after):
    items = [f"id-{i}" for i in range(100)]
    a, b = local_pair(timeout=30)
    out = {}

    def me():
        try:
            kkrt_psi(a, items, party=0, chunk_size=64)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            out["exc"] = exc

    t = threading.Thread(target=me, daemon=True)
    t.start()
    _stopping_peer(stop_after)(b)
    t.join(60)
    assert not t.is_alive(), "kkrt_psi hung after the peer stopped"
    assert isinstance(out.get("exc"), (PeerDisconnected, ProtocolError, TransportError))


# -- building blocks --------------------------------------------------------------------


@pytest.mark.parametrize("digest,salt,person", [(16, b"", b""), (10, b"0123456789abcdef", b"pet-kkrt-oprf"),
                                                (64, b"ab", b""), (1, b"", b"p")])
def test_blake2b_kernel_matches_hashlib(digest, salt, person):
    msgs = [os.urandom(n) for n in range(0, 300)] + [os.urandom(1000)]
    buf = np.frombuffer(b"".join(msgs), dtype=np.uint8)
    offsets = np.zeros(len(msgs) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([len(m) for m in msgs])
    out = np.zeros((len(msgs), digest), dtype=np.uint8)
    kkrt_kernels.blake2b_many(buf, offsets, 0, np.arange(len(msgs)), kkrt_kernels.blake2b_init(digest, salt, person),
                              out)
    for m, o in zip(msgs, out):
        assert o.tobytes() == hashlib.blake2b(m, digest_size=digest, salt=salt, person=person).digest()


def test_pseudorandom_code_is_aes_under_four_keys():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from pet.mpc.ot.kkrt_ext import PseudorandomCode

    code = PseudorandomCode(os.urandom(32))
    x = np.frombuffer(os.urandom(16 * 5), dtype=np.uint64).reshape(5, 2)
    out = code.encode(x)
    for i, key in enumerate(code.keys):
        enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - the reference AES-ECB
        assert out[i].tobytes() == enc.update(x.tobytes())


def test_oprf_hash_is_blake2b_of_value_and_bin():
    sid = os.urandom(32)
    h0 = kkrt_kernels.blake2b_init(10, salt=sid[:16], person=b"pet-kkrt-oprf")
    t = np.frombuffer(os.urandom(64 * 128), dtype=np.uint64).reshape(128, 8).copy()
    bin_item = np.full(200, -1, dtype=np.int64)  # other bins empty
    bin_item[69], bin_item[150] = 3, 0
    vals = np.zeros((6, 10), dtype=np.uint8)
    kkrt_kernels.receiver_values(t, 64, bin_item, h0, vals)
    for b, item in ((69, 3), (150, 0)):
        want = hashlib.blake2b(t[b - 64].tobytes() + b.to_bytes(8, "little"), digest_size=10, salt=sid[:16],
                               person=b"pet-kkrt-oprf").digest()
        assert vals[item].tobytes() == want
    assert not vals[[1, 2, 4, 5]].any()


def test_wide_ot_extension_gives_the_kkrt_correlation():
    from pet.mpc.ot.kkrt_ext import KkrtReceiver, KkrtSender, base_ots_one_way

    codes = np.frombuffer(os.urandom(64 * 640), dtype=np.uint64).reshape(640, 8).copy()

    def receiver(ch):
        _, pairs = base_ots_one_way(ch, 0, ot_sender=False)
        ot = KkrtReceiver(pairs)
        ts = []
        key_major = np.ascontiguousarray(codes.reshape(-1, 4, 2).transpose(1, 0, 2))
        for lo, hi in ((0, 512), (512, 640)):
            u, t = ot.extend(key_major[:, lo:hi])
            ch.send(u)
            ts.append(t)
        return np.concatenate(ts)

    def sender(ch):
        _, choices, keys = base_ots_one_way(ch, 1, ot_sender=True)
        ot = KkrtSender(choices, keys)
        return ot.s, np.concatenate([ot.extend(ch.recv()) for _ in range(2)])

    t, (s, q) = run_parties(receiver, sender, timeout=60)
    assert (q ^ (codes & s) == t).all()  # q_b = t_b ^ (C(y_b) & s)
    wrong = np.roll(codes, 1, axis=0)
    differing = np.unpackbits((q ^ (wrong & s) ^ t).view(np.uint8), axis=1).sum(axis=1)
    assert differing.min() > 64  # another codeword gives an unrelated value (~128 bits differ)
    assert 200 < np.unpackbits(s.view(np.uint8)).sum() < 312  # s: random choice bits


# -- the CLI: pet psi --protocol kkrt ------------------------------------------------------


def test_cli_protocol_kkrt_matches_ecdh(tmp_path):
    import pandas as pd

    from pet.data import reference_path
    from tests.helpers import free_port, pet_process

    data = reference_path()
    outs = {}
    for proto in ("kkrt", "ecdh"):
        port = free_port()
        o0, o1 = tmp_path / f"{proto}0.csv", tmp_path / f"{proto}1.parquet"
        p0 = pet_process("psi", "--party", 0, "--listen", f"127.0.0.1:{port}", "--protocol", proto, "--input",
                         data / "PETML/breast_hetero_mini_server.csv", "--column", "id", "--output", o0)
        p1 = pet_process("psi", "--party", 1, "--connect", f"127.0.0.1:{port}", "--protocol", proto, "--input",
                         data / "PETML/breast_hetero_mini_client.parquet", "--column", "id", "--output", o1)
        r0, r1 = p0.communicate(timeout=180), p1.communicate(timeout=180)
        assert p0.returncode == 0 and p1.returncode == 0, (r0, r1)
        outs[proto] = pd.read_csv(o0), pd.read_parquet(o1)
    k0, k1 = outs["kkrt"]
    e0, _ = outs["ecdh"]
    assert k0["id"].tolist() == k1["id"].tolist()  # joint order
    assert sorted(k0["id"]) == sorted(e0["id"]) and len(k0) == 569
    assert k0.sort_values("id").reset_index(drop=True).equals(e0.sort_values("id").reset_index(drop=True))


def test_cli_protocol_kkrt_refuses_cardinality(tmp_path):
    from pet.data import reference_path
    from tests.helpers import free_port, pet_process

    p = pet_process("psi", "--party", 0, "--listen", f"127.0.0.1:{free_port()}", "--protocol", "kkrt",
                    "--cardinality", "--input", reference_path() / "PETML/breast_hetero_mini_server.csv",
                    "--column", "id", "--wait", "1")
    _, err = p.communicate(timeout=60)
    assert p.returncode != 0 and "--protocol kkrt" in err


def test_match_finds_positions_and_refuses_an_ambiguous_value():
    rng = np.random.default_rng(5)
    vals = rng.integers(0, 256, size=(50, 10), dtype=np.uint8)
    hidx = (np.arange(50) % 3).astype(np.int8)
    slot, keys = kkrt_kernels.value_table(vals, hidx)
    masks = rng.integers(0, 256, size=(40, 10), dtype=np.uint8)
    masks[7], masks[30] = vals[4], vals[5]  # item 4 has function 1, item 5 function 2
    found = np.full(50, -1, dtype=np.int64)
    assert kkrt_kernels.match_list(slot, keys, vals, hidx, masks, 1, found) == 1
    assert found[4] == 7 and (np.delete(found, 4) == -1).all()  # item 5 is not looked up in list 1
    masks[12] = vals[4]  # the same value twice in one list: ambiguous
    found[:] = -1
    assert kkrt_kernels.match_list(slot, keys, vals, hidx, masks, 1, found) == -1


def test_joint_order_is_the_senders_shuffle():
    """The joint order is the order of the sender's shuffled lists: neither party's input
    order (a sender sending its masks in input order would give ascending indices)."""
    a = [f"k{i}" for i in range(600)]  # party 0: smaller set, the OPRF receiver
    b = [f"k{i}" for i in range(100, 800)]
    r0, r1 = run_kkrt(a, b)
    check_against_oracle(a, b, r0, r1)
    assert r1.indices.tolist() != sorted(r1.indices.tolist())
    assert r0.indices.tolist() != sorted(r0.indices.tolist())
    r0b, _ = run_kkrt(a, b)
    assert r0b.indices.tolist() != r0.indices.tolist()  # a fresh permutation per run


def test_align_protocol_kkrt_matches_ecdh():
    import pandas as pd

    from pet.psi import align

    d0 = pd.DataFrame({"k": [3, 1, 4, 5, 9, 2, 6], "z": list("abcdefg"), "v": range(7)})
    d1 = pd.DataFrame({"key": [9, 2, 7, 1, 8], "zz": list("ekcbe"), "w": range(5)})
    out = {}
    for proto in ("kkrt", "ecdh"):
        out[proto] = run_parties(lambda ch, p=proto: align(ch, d0, ["k", "z"], party=0, protocol=p),
                                 lambda ch, p=proto: align(ch, d1, ["key", "zz"], party=1, protocol=p), timeout=60)
    (k0, k1), (e0, _) = out["kkrt"], out["ecdh"]
    assert k0["k"].tolist() == k1["key"].tolist() and k0["z"].tolist() == k1["zz"].tolist()  # joint order
    assert sorted(k0["v"]) == sorted(e0["v"]) == [1, 4]  # (1, "b") and (9, "e")
    with pytest.raises(InputError, match="protocol"):
        align(local_pair()[0], d0, "k", party=0, protocol="rr22")


def test_align_defaults_to_kkrt_and_ecdh_is_one_option_away():
    """KKRT is the default of align: a default party pairs with an explicit kkrt peer (and the
    rows match pandas' inner join), while an explicit ecdh peer is refused at both parties."""
    import pandas as pd

    from pet.psi import align

    a = pd.DataFrame({"id": [f"k{i}" for i in range(0, 300, 2)], "x": range(150)})
    b = pd.DataFrame({"id": [f"k{i}" for i in range(0, 300, 3)], "y": range(100)})
    r0, r1 = run_parties(lambda ch: align(ch, a, "id", party=0),
                         lambda ch: align(ch, b, "id", party=1, protocol="kkrt"), timeout=120)
    want = set(a.merge(b, on="id")["id"])
    assert set(r0["id"]) == want and list(r0["id"]) == list(r1["id"])
    with pytest.raises((ProtocolError, PeerDisconnected, TransportError), match="protocol|peer"):
        run_parties(lambda ch: align(ch, a, "id", party=0),
                    lambda ch: align(ch, b, "id", party=1, protocol="ecdh"), timeout=60)
    # a non-default hash suite is ECDH's: both parties asking for it run ECDH without saying so
    e0, e1 = run_parties(lambda ch: align(ch, a, "id", party=0, hash_suite="RO"),
                         lambda ch: align(ch, b, "id", party=1, protocol="ecdh", hash_suite="RO"), timeout=120)
    assert set(e0["id"]) == want and list(e0["id"]) == list(e1["id"])
