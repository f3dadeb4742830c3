"""Batched X25519 (pet.psi.x25519) against cryptography's X25519 and RFC 7748."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from pet.psi import _kernels, x25519

P = 2**255 - 19


def oracle(scalar: bytes, u: bytes) -> bytes | None:
    """cryptography's X25519; None where it refuses (all-zero result, low-order u)."""
    try:
        return X25519PrivateKey.from_private_bytes(scalar).exchange(X25519PublicKey.from_public_bytes(u))
    except ValueError:
        return None


def le(n: int) -> bytes:
    return n.to_bytes(32, "little")


def check_against_oracle(scalar: bytes, us: list[bytes]) -> None:
    out, zero = x25519.scalarmult(scalar, b"".join(us))
    assert out.shape == (len(us), 32)
    for i, u in enumerate(us):
        want = oracle(scalar, u)
        if want is None:
            assert zero[i] and not out[i].any(), f"u={u.hex()}"
        else:
            assert not zero[i]
            assert out[i].tobytes() == want, f"u={u.hex()}"


def test_generated_kernels_are_up_to_date():
    import importlib.util

    tool = Path(__file__).resolve().parents[2] / "tools" / "gen_x25519.py"
    spec = importlib.util.spec_from_file_location("gen_x25519", tool)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    checked_in = Path(x25519.__file__).with_name("_x25519_kernels.py").read_text()
    assert checked_in == gen.generate()


def test_rfc7748_vectors():
    """RFC 7748 sections 5.2 and 6.1."""
    vectors = [
        ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
         "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
         "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
        # section 6.1: Alice's and Bob's public keys and their shared secret
        ("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "09" + "00" * 31,
         "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
        ("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "09" + "00" * 31,
         "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
        ("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
         "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
         "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
    ]
    for k, u, want in vectors:
        out, zero = x25519.scalarmult(bytes.fromhex(k), bytes.fromhex(u))
        assert not zero[0]
        assert out[0].tobytes().hex() == want


def test_rfc7748_iterated():
    k = u = le(9)
    for _ in range(100):
        out, _ = x25519.scalarmult(k, u)
        k, u = out[0].tobytes(), k
    ref_k = ref_u = le(9)
    for _ in range(100):
        ref_k, ref_u = oracle(ref_k, ref_u), ref_k
    assert k == ref_k
    out, _ = x25519.scalarmult(le(9), le(9))
    assert out[0].tobytes().hex() == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"


@pytest.mark.parametrize("n", [1, 2, 127, 128, 129, 300])
def test_random_points_any_block_size(n):
    check_against_oracle(secrets.token_bytes(32), [secrets.token_bytes(32) for _ in range(n)])


def test_many_random_points_and_scalars():
    for _ in range(4):
        check_against_oracle(secrets.token_bytes(32), [secrets.token_bytes(32) for _ in range(700)])


def test_edge_scalars():
    us = [secrets.token_bytes(32) for _ in range(40)]
    for scalar in (bytes(32), b"\xff" * 32, le(1), le(P - 1), le(2**255 - 1)):
        check_against_oracle(scalar, us)


def test_non_canonical_and_low_order_points():
    order8 = [325606250916557431795983626356110631294008115727848805560023387167927233504,
              39382357235489614581723060781553021112529911719440698176882885853963445705823]
    values = [0, 1, 2, 9, P - 1, P, P + 1, P + 9, 2**255 - 1, *order8, *(v + P for v in order8)]
    us = [le(v) for v in values] + [le(v | 2**255) for v in values if v < 2**255]  # high bit set too
    for _ in range(3):
        check_against_oracle(secrets.token_bytes(32), us)
    _, zero = x25519.scalarmult(secrets.token_bytes(32), b"".join(us))
    assert zero.sum() >= 6  # 0, 1, p-1 (order 2), p, and the order-8 points are low order


def test_input_validation():
    with pytest.raises(ValueError, match="32 bytes"):
        x25519.scalarmult(b"short", le(9))
    with pytest.raises(ValueError, match="32-byte"):
        x25519.scalarmult(le(5), b"\x09" * 33)
    with pytest.raises(ValueError, match="shape"):
        x25519.scalarmult(le(5), np.zeros((2, 31), dtype=np.uint8))
    out, zero = x25519.scalarmult(le(5), b"")
    assert out.shape == (0, 32) and zero.shape == (0,)


def test_array_input_equals_bytes_input():
    us = np.frombuffer(secrets.token_bytes(32 * 50), dtype=np.uint8).reshape(50, 32)
    key = secrets.token_bytes(32)
    a, _ = x25519.scalarmult(key, us[::-1])  # non-contiguous view
    b, _ = x25519.scalarmult(key, us[::-1].tobytes())
    assert np.array_equal(a, b)


@pytest.mark.parametrize("n", [_kernels.BATCH_MIN - 1, _kernels.BATCH_MIN])
def test_psi_kernel_both_paths_agree_with_oracle(n):
    key = secrets.token_bytes(32)
    points = [secrets.token_bytes(32) for _ in range(n)]
    points[n // 2] = le(1)  # a low-order point in the middle
    out, bad = _kernels.scalarmult(key, b"".join(points))
    assert bad == n // 2
    points[n // 2] = le(9)
    out, bad = _kernels.scalarmult(key, b"".join(points))
    assert bad == -1
    assert out == b"".join(oracle(key, u) for u in points)
