"""What each party receives: a non-receiving party must get nothing it could use to find
the intersection, and psi_cardinality must not tell a party which of its items matched.

The protocol is run with known secret keys (``run_protocol(key=...)``), so the test can
compute every doubly-blinded digest and look for it in the bytes a party received.
"""

import hashlib
import secrets

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from pet.psi import _kernels
from pet.psi.ecdh import digest_bytes, dst_for, run_protocol
from pet.psi.encoding import encode_items
from pet.psi.hash_to_curve import encode_to_curve_u
from pet.transport import run_parties


def record(channel, log_in, log_out):
    """Record every message the channel end receives and sends (once each, whether
    ``exchange`` is built on ``send``/``recv`` or not)."""
    recv, send, exchange = channel.recv, channel.send, channel.exchange
    depth = [0]

    def rec_recv(*a, **k):
        depth[0] += 1
        try:
            msg = recv(*a, **k)
        finally:
            depth[0] -= 1
        if depth[0] == 0:
            log_in.append(msg)
        return msg

    def rec_send(obj):
        if depth[0] == 0:
            log_out.append(obj)
        depth[0] += 1
        try:
            return send(obj)
        finally:
            depth[0] -= 1

    def rec_exchange(obj, *a, **k):
        log_out.append(obj)
        depth[0] += 1
        try:
            msg = exchange(obj, *a, **k)
        finally:
            depth[0] -= 1
        log_in.append(msg)
        return msg

    channel.recv, channel.send, channel.exchange = rec_recv, rec_send, rec_exchange
    return channel


def flatten(msgs) -> bytes:
    out = []
    for m in msgs:
        if isinstance(m, np.ndarray):
            out.append(m.tobytes())
        elif isinstance(m, dict):
            out.append(repr(sorted(m.items())).encode())
        else:
            out.append(repr(m).encode())
    return b"".join(out)


def point(key, u):
    return X25519PrivateKey.from_private_bytes(key).exchange(X25519PublicKey.from_public_bytes(u))


def double_digest(k0, k1, enc, ell):
    z = point(k1, point(k0, encode_to_curve_u(enc, dst_for("NU"))))
    return hashlib.blake2b(z, digest_size=ell, person=_kernels.digest_person).digest()


def run_logged(a, b, mode, op="psi"):
    _, ea = encode_items(a)
    _, eb = encode_items(b)
    keys = [secrets.token_bytes(32), secrets.token_bytes(32)]
    logs = {p: ([], []) for p in (0, 1)}

    def party(p, enc):
        def f(ch):
            record(ch, *logs[p])
            return run_protocol(ch, enc, party=p, op=op, mode=mode, key=keys[p])
        return f

    r0, r1 = run_parties(party(0, ea), party(1, eb), timeout=60)
    return ea, eb, keys, logs, (r0, r1)


A = [f"a{i}" for i in range(40)] + [f"common{i}" for i in range(10)]
B = [f"b{i}" for i in range(30)] + [f"common{i}" for i in range(10)]


@pytest.mark.parametrize("learner", [0, 1])
def test_non_receiving_party_gets_only_sizes_and_blinded_points(learner):
    ea, eb, keys, logs, results = run_logged(A, B, str(learner))
    other = 1 - learner
    assert "matched" in results[learner] and "matched" not in results[other]
    ell = digest_bytes(len(ea), len(eb))
    received = logs[other][0]
    # what it received: the header, then the learner's singly-blinded points -- and nothing else
    arrays = [m for m in received if isinstance(m, np.ndarray)]
    assert sum(m.shape[0] for m in arrays) == (len(ea) if learner == 0 else len(eb))
    assert all(m.shape[1:] == (32,) for m in arrays)
    assert not any(isinstance(m, np.ndarray) and m.shape[1:] == (ell,) for m in received)
    # no doubly-blinded digest of any item (neither party's) appears in its view
    view = flatten(received)
    for enc in ea + eb:
        assert double_digest(keys[0], keys[1], enc, ell) not in view
    # the learner's view does contain them (so the check above is able to fail)
    own = ea if learner == 0 else eb
    learner_view = flatten(logs[learner][0])
    assert all(double_digest(keys[0], keys[1], e, ell) in learner_view for e in own)


def test_both_parties_receive_their_digests_in_both_mode():
    ea, eb, keys, logs, _ = run_logged(A, B, "both")
    ell = digest_bytes(len(ea), len(eb))
    for p, own in ((0, ea), (1, eb)):
        view = flatten(logs[p][0])
        assert all(double_digest(keys[0], keys[1], e, ell) in view for e in own)


def _returned_order(logs, p, keys, ell):
    """The digests party p received in the return step, and the digests of the points it
    sent, in the order it sent them."""
    sent_points = np.concatenate([m for m in logs[p][1] if isinstance(m, np.ndarray) and m.ndim == 2
                                  and m.shape[1] == 32])
    expected = [hashlib.blake2b(point(keys[1 - p], bytes(row)), digest_size=ell,
                                person=_kernels.digest_person).digest() for row in sent_points]
    back = [m for m in logs[p][0] if isinstance(m, np.ndarray) and m.ndim == 2 and m.shape[1] == ell][-1]
    return [bytes(r) for r in back], expected


def test_cardinality_returns_digests_in_a_fresh_order():
    ea, eb, keys, logs, results = run_logged(A, B, "cardinality", op="cardinality")
    assert results[0]["count"] == results[1]["count"] == 10
    ell = digest_bytes(len(ea), len(eb))
    for p in (0, 1):
        back, expected = _returned_order(logs, p, keys, ell)
        assert sorted(back) == sorted(expected)  # the same digests ...
        assert back != expected  # ... but not in the order this party sent its points


def test_psi_both_returns_digests_in_sent_order():
    """Control for the test above: in reveal='both' the order is kept (that is how a party
    identifies its matching items)."""
    ea, eb, keys, logs, _ = run_logged(A, B, "both")
    ell = digest_bytes(len(ea), len(eb))
    for p in (0, 1):
        back, expected = _returned_order(logs, p, keys, ell)
        assert back == expected


def test_sent_points_are_shuffled():
    """Each party sends its blinded points in a CSPRNG-shuffled order, not input order."""
    ea, eb, keys, logs, _ = run_logged(A, B, "both")
    sent = np.concatenate([m for m in logs[0][1] if isinstance(m, np.ndarray) and m.shape[1:] == (32,)])
    in_order = [point(keys[0], encode_to_curve_u(e, dst_for("NU"))) for e in ea]
    got = [bytes(r) for r in sent]
    assert sorted(got) == sorted(in_order) and got != in_order
