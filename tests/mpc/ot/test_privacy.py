"""What a party receives from the OT engine (u matrices and corrections) is uniform and
does not depend on the other party's inputs (chi-square on bytes, as tests/mpc does)."""

import numpy as np

from pet.mpc.ot import GilboaProduct, OTEngine, RandomOT
from pet.mpc.ot.requests import random_words
from pet.transport import run_parties


def _chi2_uniform(data: np.ndarray) -> float:
    counts = np.bincount(data.astype(np.int64), minlength=256)
    expected = data.size / 256
    return float(((counts - expected) ** 2 / expected).sum())


def _view_of_party1(a_value: int):
    """Bytes party 1 receives while computing products with party 0's constant ``a``."""
    n = 4000
    received = []

    class Recorder:
        def __init__(self, ch):
            self.ch, self.stats = ch, ch.stats

        def exchange(self, msg):
            got = self.ch.exchange(msg)
            if isinstance(got, dict) and "u" in got:
                received.append(np.concatenate([got["u"].reshape(-1), got["d"]]).view(np.uint8))
            return got

    def p0(ch):
        eng = OTEngine(ch, 0)
        a = np.full(n, a_value, dtype=np.uint64)
        eng.extend([GilboaProduct(n, 0, a), RandomOT(64 * 64, 1)])

    def p1(ch):
        eng = OTEngine(Recorder(ch), 1)
        eng.extend([GilboaProduct(n, 0, np.full(n, 3, dtype=np.uint64)), RandomOT(64 * 64, 1)])

    run_parties(p0, p1, timeout=120)
    return np.concatenate(received)


def test_party1_view_is_uniform_whatever_party0_multiplies_by():
    views = [_view_of_party1(v) for v in (0, 1, (1 << 64) - 1)]
    for v in views:
        assert v.size > 100_000
        assert _chi2_uniform(v) < 380
    for x, y in ((views[0], views[1]), (views[0], views[2])):
        n = min(x.size, y.size)
        cx = np.bincount(x[:n], minlength=256).astype(float)
        cy = np.bincount(y[:n], minlength=256).astype(float)
        assert float(((cx - cy) ** 2 / (cx + cy)).sum()) < 380


def test_the_test_can_fail_on_an_unmasked_view():
    raw = np.repeat(random_words(2000).view(np.uint8)[:2000] & np.uint8(0x0F), 50)
    assert _chi2_uniform(raw) > 10_000
