"""What a party sees: uniform, input-independent messages; CSPRNG-only randomness."""

import pathlib
import re

import numpy as np

import pet.mpc as mpc
from pet.mpc import dealer
from pet.transport import run_parties
from tests.helpers import RecordingChannel as Recorder


def party1_view(secret0: np.ndarray):
    """Run a program mixing every protocol; return the bytes party 1 received (from
    party 0 and from the dealer). Nothing is revealed to party 1."""
    y1 = np.linspace(-3, 3, secret0.size)
    rec = {}

    def program(s):
        a = s.share(secret0 if s.party == 0 else None, owner=0)
        b = s.share(y1 if s.party == 1 else None, owner=1)
        c = a * b
        d = a < b
        m = a.reshape(8, -1) @ b.reshape(-1, 8)
        e = mpc.reciprocal(a * 0 + 3.0) + mpc.sigmoid(b)
        g = mpc.argmax(a.reshape(4, -1), axis=1)
        for v in (c, d, m, e, g):
            s.reveal(v, to=0)

    def p(party):
        def body(chans):
            peer = Recorder(chans[1 - party]) if party == 1 else chans[1 - party]
            dch = Recorder(chans[2]) if party == 1 else chans[2]
            if party == 1:
                rec["peer"], rec["dealer"] = peer, dch
            with mpc.Session(party, peer, dealer=dch) as s:
                return program(s)
        return body

    run_parties(p(0), p(1), lambda chans: dealer.serve(chans[0], chans[1]), timeout=120)
    return rec["peer"].received_bytes(), rec["dealer"].received_bytes()


def _chi2_uniform(data: np.ndarray) -> float:
    counts = np.bincount(data, minlength=256)
    expected = data.size / 256
    return float(((counts - expected) ** 2 / expected).sum())


def _chi2_two_sample(a: np.ndarray, b: np.ndarray) -> float:
    ca, cb = np.bincount(a, minlength=256).astype(float), np.bincount(b, minlength=256).astype(float)
    tot = ca + cb
    ea, eb = tot * a.size / (a.size + b.size), tot * b.size / (a.size + b.size)
    return float((((ca - ea) ** 2) / ea + ((cb - eb) ** 2) / eb).sum())


def test_party1_view_is_uniform_and_independent_of_party0_input():
    n = 4096
    zeros = np.zeros(n)
    wild = np.concatenate([np.full(n // 2, 12345.678), -np.geomspace(1e-3, 1e4, n // 2)])
    peer_a, dealer_a = party1_view(zeros)
    peer_b, dealer_b = party1_view(wild)
    assert peer_a.size == peer_b.size > 1_000_000  # same shapes, same traffic
    # 255 degrees of freedom: the 1e-6 tail is about 380
    for data in (peer_a, peer_b, dealer_a, dealer_b):
        assert _chi2_uniform(data) < 380
    assert _chi2_two_sample(peer_a, peer_b) < 380
    # and per byte position within the 64-bit words (catches a constant high byte)
    for k in range(8):
        assert _chi2_uniform(peer_a.reshape(-1, 8)[:, k]) < 380
        assert _chi2_uniform(peer_b.reshape(-1, 8)[:, k]) < 380


def test_the_test_can_fail_on_an_unmasked_view():
    # sanity check of the statistic: raw encodings of the inputs are far from uniform
    raw = mpc.ring.encode(np.linspace(-3, 3, 4096), 16).view(np.uint8)
    assert _chi2_uniform(raw) > 10_000


def test_no_non_cryptographic_randomness_in_pet_mpc():
    src = pathlib.Path(mpc.__file__).parent
    pattern = re.compile(r"numpy\.random|np\.random|^\s*import random|^\s*from random|default_rng|RandomState",
                         re.M)
    offenders = [p.name for p in src.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_randomness_sources_are_os_urandom_seeded():
    from pet.mpc import prg

    text = pathlib.Path(prg.__file__).read_text()
    assert "os.urandom" in text and "AES" in text
    # two fresh sessions never share masks
    def program(s):
        return s.private_words(4)

    (a0, a1), (b0, b1) = mpc.run_local(program), mpc.run_local(program)
    assert len({tuple(v) for v in (a0, a1, b0, b1)}) == 4
