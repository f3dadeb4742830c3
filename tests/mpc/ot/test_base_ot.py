"""Base OTs: correctness for both choice bits, fresh sessions, low-order points refused."""

import threading

import numpy as np
import pytest

from pet.errors import ProtocolError
from pet.mpc.ot.base import KAPPA, base_ots
from pet.transport import local_pair, run_parties


def _run():
    return run_parties(lambda ch: base_ots(ch, 0), lambda ch: base_ots(ch, 1), timeout=60)


def test_receiver_gets_exactly_the_chosen_key_in_both_directions():
    r0, r1 = _run()
    assert r0[0] == r1[0] and len(r0[0]) == 32  # same session id
    for recv, send in ((r0, r1), (r1, r0)):
        _, choices, keys, _ = recv
        pairs = send[3]
        assert set(np.unique(choices)) == {0, 1}  # both choice bits occur (2^-127 failure)
        for j in range(KAPPA):
            c = int(choices[j])
            assert keys[j] == pairs[j][c]
            assert keys[j] != pairs[j][1 - c]
            assert len(keys[j]) == 16


def test_every_session_has_a_new_id_and_new_keys():
    a, b = _run(), _run()
    assert a[0][0] != b[0][0]
    assert not set(a[0][2]) & set(b[0][2])


@pytest.mark.parametrize("bad", [bytes(32), (1).to_bytes(32, "little")])
def test_a_low_order_point_is_refused(bad):
    ch0, ch1 = local_pair(timeout=10)
    out = {}

    def honest():
        try:
            base_ots(ch0, 0)
        except Exception as exc:  # noqa: BLE001 - inspected below
            out["exc"] = exc

    t = threading.Thread(target=honest)
    t.start()
    ch1.recv()
    ch1.send({"pet": "ot-base", "kappa": KAPPA, "nonce": b"\x01" * 32, "R": bad, "pks": bad * (2 * KAPPA)})
    t.join(20)
    assert isinstance(out.get("exc"), ProtocolError)
    assert "low-order" in str(out["exc"])


def test_a_malformed_base_ot_message_is_a_protocol_error():
    ch0, ch1 = local_pair(timeout=10)
    out = {}

    def honest():
        try:
            base_ots(ch0, 0)
        except Exception as exc:  # noqa: BLE001
            out["exc"] = exc

    t = threading.Thread(target=honest)
    t.start()
    ch1.recv()
    ch1.send({"pet": "ot-base", "kappa": KAPPA, "nonce": b"\x01" * 32, "R": b"\x09" + bytes(31), "pks": b"short"})
    t.join(20)
    assert isinstance(out.get("exc"), ProtocolError)
