"""What a party sees: its view of the structure depends on the decisions, not on the peer's
private weights; and nothing but masked values carries weights."""

import numpy as np

from pet.graph import leiden
from pet.mpc import Session
from pet.mpc import dealer as _dealer
from pet.transport import run_parties
from tests.helpers import RecordingChannel as Recorder


def _view_of_party1(inputs):
    rec = {}

    def party(p):
        def body(chans):
            ch = chans[1 - p]
            if p == 1:
                ch = rec["ch"] = Recorder(ch)
            with Session(p, ch, dealer=chans[2]) as s:
                return leiden(s, *inputs[p], seed=4, check_disjoint=False)  # PSI needs a real Channel
        return body

    out = run_parties(party(0), party(1), lambda chans: _dealer.serve(chans[0], chans[1]), timeout=300,
                      names=["party0", "party1", "dealer"])
    structural = [_canonical(m[0], m[1]) for m in rec["ch"].received
                  if isinstance(m, list) and len(m) == 2 and isinstance(m[0], str) and ":graph." in m[0]]
    # the winners are opened with Session.reveal_split (tag "<counter>:rsplit:<digest>")
    shares = [m[1] for m in rec["ch"].received
              if isinstance(m, list) and len(m) == 2 and isinstance(m[0], str) and ":rsplit:" in m[0]]
    return out, structural, shares


def _canonical(tag, payload):
    """A round message with the peer's private slots as a sorted multiset (their order is a
    fresh secret permutation in every round)."""
    if not tag.endswith("graph.round"):
        return payload
    counts, cur, desc = (np.asarray(x) for x in payload[:3])
    ends = np.cumsum(counts)
    slots = sorted((int(c), int(k), tuple(desc[e - c:e].tolist())) for c, k, e in zip(counts, cur, ends))
    return [slots] + list(payload[3:])


def _same(a, b):
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def test_peer_view_and_result_independent_of_the_share_split(karate):
    """Splitting each cross edge's weight differently (party 0's share is its secret)
    changes neither the partition (gains are exact sums of shares) nor anything party 1
    receives outside masked MPC values."""
    (n0, e0), (n1, e1) = karate
    rng = np.random.default_rng(11)  # not-secret: test data

    def resplit(e, nodes, sign, r):
        e = e.copy()
        cross = [i for i, (a, b) in enumerate(zip(e["source"], e["target"])) if (a in nodes) != (b in nodes)]
        keys = [tuple(sorted((int(e["source"][i]), int(e["target"][i])))) for i in cross]
        e.loc[cross, "weight"] = [0.5 + sign * r[k] for k in keys]
        return e

    keys = {tuple(sorted((int(a), int(b)))) for a, b in zip(e0["source"], e0["target"]) if (a in n0) != (b in n0)}
    r = {k: float(rng.integers(-6, 7)) / 16 for k in sorted(keys)}
    out_a, view_a, shares_a = _view_of_party1([(n0, e0), (n1, e1)])
    out_b, view_b, shares_b = _view_of_party1([(n0, resplit(e0, n0, 1, r)), (n1, resplit(e1, n1, -1, r))])
    assert out_a[0].equals(out_b[0]) and out_a[1].equals(out_b[1])
    assert len(view_a) == len(view_b) > 10
    assert all(_same(x, y) for x, y in zip(view_a, view_b))
    # the opened winners arrive as fresh shares: different in every run (a node with no
    # candidate but "stay" has the public index 0, shared as 0 + 0)
    flat_a = np.concatenate([np.asarray(s, dtype=np.uint64).ravel() for s in shares_a])
    flat_b = np.concatenate([np.asarray(s, dtype=np.uint64).ravel() for s in shares_b])
    nz = (flat_a != 0) | (flat_b != 0)
    assert flat_a.size == flat_b.size and nz.sum() > 100 and np.mean(flat_a[nz] == flat_b[nz]) < 0.01
    # and no message received carries the plaintext weights
    assert not any(isinstance(m, list) and any(isinstance(x, float) for x in m) for m in view_a)
