"""Differentially private secure SQL with data-derived GROUP BY keys (issue 18, item 4): the
noisy-threshold release, its padding and threshold against independent numeric oracles,
the released groups and values against DuckDB, the release probability of small and large
groups, both parties' identical output, the ledger charge, and refusals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pet.dp as pdp
import pet.mpc as mpc
import pet.sql as psql
from pet.errors import BudgetExceeded
from pet.sql import SqlNotSupported
from pet.sql.dp import (
    PAD_DELTA,
    PAD_EPSILON,
    SELECT_DELTA,
    SELECT_EPSILON,
    padding_shift,
    selection_threshold,
    two_laplace_tail,
)
from tests.sql.helpers import oracle

BIG_EPS = 4000.0  # selection threshold 2, noise std ~1e-3 on counts: exact values visible


def _dlap(eps, support):
    q = math.exp(-eps)
    return (1 - q) / (1 + q) * q ** np.abs(support)


def _two_dlap(eps, width):
    """(support, pmf) of the sum of two independent discrete Laplace at ``eps``, by
    numeric convolution (the oracle of the closed form in pet.sql.dp)."""
    y = np.arange(-width, width + 1)
    p = _dlap(eps, y)
    return np.arange(-2 * width, 2 * width + 1), np.convolve(p, p)


def run(sql, t0, t1, correlations="dealer", **kw):
    def prog(session):
        return psql.query(session, sql, t0 if session.party == 0 else t1, **kw)
    return mpc.run_local(prog, timeout=600, correlations=correlations)


def outcomes(sql, t0, t1, kw0, kw1=None):
    kw1 = kw0 if kw1 is None else kw1

    def prog(session):
        try:
            return psql.query(session, sql, t0 if session.party == 0 else t1,
                              **(kw0 if session.party == 0 else kw1))
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return exc
    return mpc.run_local(prog, timeout=600)


# -- the calibration against numeric oracles ------------------------------------------------------

@pytest.mark.parametrize("eps", [0.05, 0.25, 1.0, 3.0])
def test_two_laplace_tail_matches_the_convolution(eps):
    s, pmf = _two_dlap(eps, int(60 / eps) + 50)
    for k in (1, 2, 5, 17, int(10 / eps)):
        assert two_laplace_tail(eps, k) == pytest.approx(pmf[s >= k].sum(), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("eps, delta", [(0.25, 5e-7), (1.0, 1e-9), (0.5, 0.1), (0.05, 1e-6)])
def test_selection_threshold_is_the_smallest_with_release_probability_at_most_delta(eps, delta):
    tau = selection_threshold(eps, delta)
    s, pmf = _two_dlap(eps, int(80 / eps) + 50)
    released = pmf[1 + s >= tau].sum()            # a group of one row
    assert released <= delta * (1 + 1e-9)
    assert pmf[1 + s >= tau - 1].sum() > delta   # minimal
    # the central mechanism (one Laplace) needs 1 + ln(1/(2 delta))/eps; two parties a little more
    assert tau >= 1 + math.log(1 / (2 * delta)) / eps - 1


@pytest.mark.parametrize("eps, delta", [(0.125, 1.25e-7), (0.5, 0.01), (2.0, 1e-9)])
def test_padding_is_eps_delta_dp_for_the_group_count(eps, delta):
    """The padded count ``g + max(0, K + Z)``: hockey-stick divergence between ``g`` and
    ``g + 1`` (both directions), computed on the exact pmfs, is at most ``delta``."""
    k = padding_shift(eps, delta)
    width = k + int(80 / eps) + 10
    z = np.arange(-width, width + 1)
    pz = _dlap(eps, z)
    w = np.zeros(2 * width + 3)                        # pmf of W = max(0, K + Z) on 0..
    for zi, p in zip(z, pz):
        w[max(0, k + zi)] += p
    a = np.concatenate([w, [0.0]])                     # G - g under g
    b = np.concatenate([[0.0], w])                     # G - g under g + 1
    e = math.exp(eps)
    d = max(np.maximum(0, a - e * b).sum(), np.maximum(0, b - e * a).sum())
    assert d <= delta * (1 + 1e-9)
    # minimal K
    q = math.exp(-eps)
    assert k == 1 or q ** (k - 1) / (1 + q) > delta


def test_budget_split_adds_up():
    for owners in (1, 2):
        e = SELECT_EPSILON + owners * PAD_EPSILON
        d = SELECT_DELTA + owners * PAD_DELTA
        assert e < 1 and d < 1


# -- the release against DuckDB --------------------------------------------------------------------

SIZES = {"eu": 40, "us": 25, "asia": 7, "oc": 2}  # plus 6 one-row groups


def _tables():
    regions = [r for r, c in SIZES.items() for _ in range(c)] + [f"solo{i}" for i in range(6)]
    n = len(regions)
    rng = np.random.default_rng(7)
    perm = rng.permutation(n)
    users = pd.DataFrame({"uid": np.arange(n), "region": np.array(regions, dtype=object)[perm],
                          "w": np.round(rng.uniform(-2, 2, n), 3), "tier": rng.integers(0, 3, n)})
    sales = pd.DataFrame({"uid": np.arange(-5, n + 5), "amount": np.round(np.linspace(0.5, 30.0, n + 10), 3),
                          "shop": np.arange(n + 10) % 2, "chan": np.where(np.arange(n + 10) % 3 == 0, "web", "pos")})
    return {"sales": sales}, {"users": users}


CASES = {
    # GROUP BY a key of party 1, values of party 0
    "key-party1": ("SELECT u.region, COUNT(*) AS n, SUM(s.amount) AS total FROM sales s JOIN users u "
                   "ON s.uid = u.uid GROUP BY u.region", {"total": (0, 40)}),
    # a key of party 0, an AVG over a cross-party value, a cross-party WHERE (shared mask)
    "key-party0-mask": ("SELECT s.chan, COUNT(*) AS n, AVG(s.amount * u.w) AS a FROM sales s JOIN users u "
                        "ON s.uid = u.uid WHERE s.amount > u.w * 5 GROUP BY s.chan", {"a": (-80, 80)}),
    # keys of both parties (product groups, both padded)
    "keys-both": ("SELECT s.shop, u.tier, COUNT(*) AS n, SUM(u.w) AS sw FROM sales s JOIN users u "
                  "ON s.uid = u.uid GROUP BY s.shop, u.tier", {"sw": (-2, 2)}),
}


@pytest.mark.parametrize("case, reveal_to", [(c, r) for c in CASES for r in (None, 0, 1)
                                               if not (c == "keys-both" and r == 0)])
def test_released_groups_and_values_match_duckdb(case, reveal_to):
    sql, bounds = CASES[case]
    t0, t1 = _tables()
    dp = psql.DP(BIG_EPS, 1e-6, bounds=bounds)
    r = run(sql, t0, t1, dp=dp, reveal_to=reveal_to)
    want = oracle(sql, t0, t1)
    keys = [c for c in want.columns if c in ("region", "chan", "shop", "tier")]
    receivers = [0, 1] if reveal_to is None else [reveal_to]
    for p in (0, 1):
        if p not in receivers:
            assert r[p] is None
    got = r[receivers[0]]
    # threshold 2 at this epsilon: exactly the groups with >= 2 joined rows (after the mask)
    a = got.attrs["dp"]
    assert a["threshold"] == 2 and a["groups"] == "data-derived"
    want = want[want["n"] >= 2]
    got_s = got.sort_values(keys).reset_index(drop=True)
    want_s = want.sort_values(keys).reset_index(drop=True)
    assert [tuple(x) for x in got_s[keys].itertuples(index=False)] == \
        [tuple(x) for x in want_s[keys].itertuples(index=False)]
    for col in got.columns:
        if col in keys:
            continue
        std = a["noise_std"][col] if a["noise_std"][col] is not None else 0.05
        assert np.allclose(got_s[col].astype(float), want_s[col].astype(float), atol=10 * std + 0.05), (got_s, want_s)
    assert a["accounted_epsilon"] <= BIG_EPS * (1 + 1e-12) and a["accounted_delta"] <= 1e-6 * (1 + 1e-12)
    if reveal_to is None:  # both parties see the identical output
        pd.testing.assert_frame_equal(r[0].sort_values(keys).reset_index(drop=True),
                                      r[1].sort_values(keys).reset_index(drop=True))


def test_string_keys_of_a_non_receiver_are_revealed_only_for_released_groups():
    """Party 1 owns the keys and does not receive: its keys go as masked words (padded to
    a public width); a suppressed key (one row) never reaches the receiver."""
    t0, t1 = _tables()
    users = t1["users"].copy()
    users.loc[users["region"] == "solo0", "region"] = "a-very-long-region-name-" * 5  # 120 bytes, one row
    sql = "SELECT u.region, COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid GROUP BY u.region"
    r = run(sql, t0, {"users": users}, dp=psql.DP(BIG_EPS, 1e-6), reveal_to=0)
    assert r[1] is None
    assert sorted(r[0]["region"]) == sorted(k for k, c in SIZES.items() if c >= 2)


@pytest.mark.parametrize("suppressed_key", ["z", "a-suppressed-key-of-fifty-bytes-xxxxxxxxxxxxxxxxxx"])
def test_masked_key_width_does_not_depend_on_a_suppressed_key(monkeypatch, suppressed_key):
    """The receiver learns the width of the masked key words: padded to 16 words, the same
    whether the longest key (suppressed, one row) has 1 or 50 bytes."""
    import pet.sql.reveal as rv

    widths = []
    real = rv._send_owned

    def spy(session, owner, value, receivers, op):
        got = real(session, owner, value, receivers, op)
        if op == "sql.width" and session.party not in (owner,):
            widths.append(got)
        return got
    monkeypatch.setattr(rv, "_send_owned", spy)
    t0, t1 = _tables()
    users = t1["users"].copy()
    users.loc[users["region"] == "solo0", "region"] = suppressed_key
    sql = "SELECT u.region, COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid GROUP BY u.region"
    r = run(sql, t0, {"users": users}, dp=psql.DP(BIG_EPS, 1e-6), reveal_to=0)
    assert suppressed_key not in set(r[0]["region"])
    assert widths == [16]


# -- release probabilities: far below never (<= delta), far above always ----------------------------

def test_release_probability_of_small_groups_is_at_most_delta_and_large_groups_always():
    eps, delta = 2.0, 0.2   # a large delta, so the release of a one-row group is observable
    eps_sel, delta_sel = eps * float(SELECT_EPSILON), delta * float(SELECT_DELTA)
    tau = selection_threshold(eps_sel, delta_sel)
    far = tau + int(40 / eps_sel)   # P(N0 + N1 <= -40/eps_sel) ~ 1e-16: always released
    n_small, n_big = 120, 3
    regions = [f"s{i}" for i in range(n_small)] + [f"b{i}" for i in range(n_big) for _ in range(far)]
    users = pd.DataFrame({"uid": np.arange(len(regions)), "region": regions})
    sales = pd.DataFrame({"uid": np.arange(len(regions)), "x": 1})
    sql = "SELECT u.region, COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid GROUP BY u.region"
    released_small, trials = 0, 0
    for _ in range(3):
        got = run(sql, {"sales": sales}, {"users": users}, dp=psql.DP(eps, delta), reveal_to=0)[0]
        assert got.attrs["dp"]["threshold"] == tau
        names = set(got["region"])
        assert {f"b{i}" for i in range(n_big)} <= names          # far above: always
        assert names <= set(regions)                             # never a dummy group
        released_small += sum(n.startswith("s") for n in names)
        trials += n_small
    # oracle: P(1 + N0 + N1 >= tau) by numeric convolution, <= delta_sel
    s, pmf = _two_dlap(eps_sel, 400)
    p = pmf[1 + s >= tau].sum()
    assert p <= delta_sel
    assert stats.binomtest(released_small, trials, p).pvalue > 1e-4, (released_small, trials, p)
    assert released_small / trials < delta_sel + 4 * math.sqrt(delta_sel / trials)


def test_released_noise_of_derived_groups_matches_reported_std():
    groups, size = 60, 12
    users = pd.DataFrame({"uid": np.arange(groups * size), "g": np.arange(groups * size) % groups})
    sales = pd.DataFrame({"uid": np.arange(groups * size), "x": np.linspace(-3, 3, groups * size)})
    sql = "SELECT u.g, COUNT(*) AS n, SUM(s.x) AS t FROM sales s JOIN users u ON s.uid = u.uid GROUP BY u.g"
    exact = oracle("SELECT u.g, COUNT(*) AS n, SUM(GREATEST(LEAST(s.x, 2), -2)) AS t FROM sales s "
                   "JOIN users u ON s.uid = u.uid GROUP BY u.g", {"sales": sales}, {"users": users}).set_index("g")
    dn, dt = [], []
    for _ in range(3):
        got = run(sql, {"sales": sales}, {"users": users}, dp=psql.DP(16.0, 1e-3, bounds={"t": (-2, 2)}),
                  reveal_to=1)[1]
        a = got.attrs["dp"]
        assert len(got) == groups   # 12 rows >> threshold
        got = got.set_index("g").reindex(exact.index)
        dn.append((got["n"] - exact["n"]).to_numpy(float))
        dt.append((got["t"] - exact["t"]).to_numpy(float))
    dn, dt = np.concatenate(dn), np.concatenate(dt)
    for d, std in ((dn, a["noise_std"]["n"]), (dt, a["noise_std"]["t"])):
        assert abs(d.mean()) < 5 * std / math.sqrt(len(d))
        assert d.std() == pytest.approx(std, rel=0.25)
    assert stats.kstest(dt / a["noise_std"]["t"], "norm").pvalue > 1e-4


# -- refusals, budgets -----------------------------------------------------------------------------

Q = "SELECT u.region, COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid GROUP BY u.region"


def test_data_derived_groups_under_pure_dp_are_refused_at_both():
    t0, t1 = _tables()
    r = outcomes(Q, t0, t1, {"dp": psql.DP(1.0)})
    assert isinstance(r[0], SqlNotSupported) and "pure epsilon-DP" in str(r[0]) and "delta > 0" in str(r[0])
    assert isinstance(r[1], Exception)


def _ledger(path, eps, **kw):
    with pdp.BudgetLedger(path) as led:
        led.add_block("b", eps, 1e-5, **kw)
    return str(path)


def _state(path):
    with pdp.BudgetLedger(path) as led:
        led.check()
        return led.block("b"), [led.claim(c) for c in led.claim_ids()]


def test_ledgers_are_charged_the_composed_epsilon(tmp_path):
    t0, t1 = _tables()
    l0, l1 = _ledger(tmp_path / "0.db", 5.0), _ledger(tmp_path / "1.db", 5.0)
    r = outcomes(Q, t0, t1, {"dp": psql.DP(2.0, 1e-6, ledger=l0, block="b")},
                 {"dp": psql.DP(2.0, 1e-6, ledger=l1, block="b")})
    assert all(isinstance(x, pd.DataFrame) for x in r), r
    a = r[0].attrs["dp"]
    split = a["budget_split"]
    assert set(split) == {"selection", "padding_party1", "measurements"}
    assert sum(e for e, _ in split.values()) == pytest.approx(2.0)
    assert sum(d for _, d in split.values()) == pytest.approx(1e-6)
    assert a["accounted_epsilon"] <= 2.0 and a["accounted_delta"] <= 1e-6 * (1 + 1e-12)
    for path in (l0, l1):
        blk, claims = _state(path)
        assert blk.consumed == pytest.approx(2.0) and blk.allocated == 0
        assert [c.state for c in claims] == ["allocated"]


def test_renyi_block_cannot_pay_for_a_threshold_release_and_nobody_is_charged(tmp_path):
    t0, t1 = _tables()
    l0 = _ledger(tmp_path / "0.db", 5.0, orders=[2.0, 4.0, 8.0, 16.0, 32.0])
    l1 = _ledger(tmp_path / "1.db", 5.0)
    r = outcomes(Q, t0, t1, {"dp": psql.DP(2.0, 1e-6, ledger=l0, block="b")},
                 {"dp": psql.DP(2.0, 1e-6, ledger=l1, block="b")})
    assert isinstance(r[0], BudgetExceeded) and "basic" in str(r[0]), r
    assert isinstance(r[1], BudgetExceeded) and "peer" in str(r[1]), r
    blk0, c0 = _state(l0)
    blk1, c1 = _state(l1)
    assert c0 == [] and np.all(np.asarray(blk0.consumed) == 0)
    assert [c.state for c in c1] == ["released"] and blk1.consumed == 0 and blk1.unlocked == 5.0


def test_min_group_size_applies_to_the_noisy_count_of_released_groups():
    t0, t1 = _tables()
    got = run(Q, t0, t1, dp=psql.DP(BIG_EPS, 1e-6), min_group_size=10, reveal_to=0)[0]
    assert sorted(got["region"]) == ["eu", "us"]   # asia (7) and oc (2) pass the threshold, not k = 10
    assert got.attrs["suppressed_groups"] == 2


def test_too_many_candidate_groups_fail_at_both_before_the_opening_and_release_both_claims(tmp_path):
    n = 420
    sales = pd.DataFrame({"uid": np.arange(n), "shop": np.arange(n)})          # 420 shops
    users = pd.DataFrame({"uid": np.arange(n), "tier": np.arange(n) % 300})   # 300 tiers
    l0, l1 = _ledger(tmp_path / "0.db", 5.0), _ledger(tmp_path / "1.db", 5.0)
    sql = "SELECT s.shop, u.tier, COUNT(*) AS n FROM sales s JOIN users u ON s.uid = u.uid GROUP BY s.shop, u.tier"
    r = outcomes(sql, {"sales": sales}, {"users": users}, {"dp": psql.DP(2.0, 1e-6, ledger=l0, block="b")},
                 {"dp": psql.DP(2.0, 1e-6, ledger=l1, block="b")})
    assert all(isinstance(x, Exception) and "candidate groups" in str(x) for x in r), r
    for path in (l0, l1):
        blk, claims = _state(path)
        assert blk.consumed == 0 and blk.allocated == 0 and [c.state for c in claims] == ["released"]


def test_no_joined_rows_release_no_group_and_are_charged(tmp_path):
    t0, t1 = _tables()
    sales = t0["sales"].assign(uid=t0["sales"]["uid"] + 10_000)  # no key in common
    l0, l1 = _ledger(tmp_path / "0.db", 5.0), _ledger(tmp_path / "1.db", 5.0)
    r = outcomes(Q, {"sales": sales}, t1, {"dp": psql.DP(2.0, 1e-6, ledger=l0, block="b")},
                 {"dp": psql.DP(2.0, 1e-6, ledger=l1, block="b")})
    assert all(isinstance(x, pd.DataFrame) and len(x) == 0 and list(x.columns) == ["region", "n"] for x in r), r
    for path in (l0, l1):
        blk, _ = _state(path)
        assert blk.consumed == pytest.approx(2.0)
