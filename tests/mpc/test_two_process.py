"""Real processes over loopback TCP: party 0 (this process), party 1 (a child) and the
dealer (``pet dealer`` in a third process)."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pet.mpc as mpc
from pet.transport import tcp

X = np.linspace(-5, 5, 2000)
Y = np.cos(np.arange(2000.0)) * 3


def _start_dealer(extra=()):
    proc = subprocess.Popen([sys.executable, "-m", "pet", "dealer", "--listen", "127.0.0.1:0", "--sessions", "1",
                             "--wait", "60", *extra], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"listening on [\d.]+:(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"dealer did not start: {line!r}")
    return proc, int(m.group(1))


PARTY1 = """
import json, sys
import numpy as np
import pet.mpc as mpc
from pet.transport import tcp
peer = tcp.connect("127.0.0.1", {peer_port}, retry_for=60, timeout=120{tls1})
dch = tcp.connect("127.0.0.1", {dealer_port}, retry_for=60, timeout=120{tlsd})
y = np.cos(np.arange(2000.0)) * 3
with mpc.Session(1, peer, dealer=dch) as s:
    a = s.share(None, owner=0)
    b = s.share(y, owner=1)
    out = [s.reveal(a * b), s.reveal(a < b), s.reveal(a.reshape(40, 50) @ b.reshape(50, 40)),
           s.reveal(mpc.sigmoid(a)), s.reveal(mpc.argmax(b.reshape(20, 100), axis=1))]
    s.reveal(a + b, to=0)
print(json.dumps([v.tolist() for v in out]))
"""


def _program(s):
    a = s.share(X, owner=0)
    b = s.share(None, owner=1)
    out = [s.reveal(a * b), s.reveal(a < b), s.reveal(a.reshape(40, 50) @ b.reshape(50, 40)),
           s.reveal(mpc.sigmoid(a)), s.reveal(mpc.argmax(b.reshape(20, 100), axis=1))]
    out.append(s.reveal(a + b, to=0))
    return out


def _check(out, child_out):
    ex, ey = mpc.ring.decode(mpc.ring.encode(X, 16), 16), mpc.ring.decode(mpc.ring.encode(Y, 16), 16)
    np.testing.assert_allclose(out[0], ex * ey, atol=2 ** -15)
    np.testing.assert_array_equal(out[1], (ex < ey).astype(int))
    np.testing.assert_allclose(out[2], ex.reshape(40, 50) @ ey.reshape(50, 40), atol=2 ** -15)
    np.testing.assert_allclose(out[3], 1 / (1 + np.exp(-X)), atol=1e-3)
    np.testing.assert_array_equal(out[4], Y.reshape(20, 100).argmax(1))
    np.testing.assert_allclose(out[5], ex + ey)
    for mine, theirs in zip(out[:5], child_out):
        np.testing.assert_array_equal(np.asarray(theirs), mine)


@pytest.mark.parametrize("use_tls", [False, True])
def test_two_parties_and_dealer_in_three_processes(tmp_path, use_tls):
    tls = None
    if use_tls:
        from pet.transport.tls import TLSConfig, make_test_pki

        make_test_pki(tmp_path)
        def cfg(name):
            return TLSConfig(cert=tmp_path / f"{name}.pem", key=tmp_path / f"{name}.key", ca=tmp_path / "ca.pem")

        tls = cfg("party0")
    dealer, dealer_port = _start_dealer(("--tls-dir", str(tmp_path)) if use_tls else ())
    try:
        with tcp.Listener("127.0.0.1", 0, tls=tls, timeout=120) as listener:
            tls_arg = f", tls=TLSConfig(cert=r'{tmp_path}/party1.pem', key=r'{tmp_path}/party1.key', " \
                      f"ca=r'{tmp_path}/ca.pem')" if use_tls else ""
            tlsd_arg = tls_arg[:-1] + ", peer_name='dealer')" if use_tls else ""  # roles are pinned
            code = PARTY1.format(peer_port=listener.port, dealer_port=dealer_port, tls1=tls_arg, tlsd=tlsd_arg)
            if use_tls:
                code = "from pet.transport.tls import TLSConfig\n" + code
            child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            try:
                peer = listener.accept(accept_timeout=120)
                dch = tcp.connect("127.0.0.1", dealer_port, retry_for=60, timeout=120,
                                  tls=tls.for_dealer() if tls else None)
                with peer, dch, mpc.Session(0, peer, dealer=dch) as s:
                    out = _program(s)
                stdout, stderr = child.communicate(timeout=180)
            finally:
                if child.poll() is None:
                    child.kill()
        assert child.returncode == 0, stderr
        _check(out, json.loads(stdout))
        assert dealer.wait(60) == 0
    finally:
        if dealer.poll() is None:
            dealer.kill()


def test_dealer_service_survives_a_bad_session():
    from pet.errors import PetError
    from pet.mpc.correlated import DealerClient
    from pet.transport import run_parties

    proc = subprocess.Popen([sys.executable, "-m", "pet", "dealer", "--listen", "127.0.0.1:0", "--sessions", "0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)\s*$", proc.stderr.readline()).group(1))

        def client(party, sid):
            def body(_chans):
                ch = tcp.connect("127.0.0.1", port, retry_for=30, timeout=30)
                with ch:
                    c = DealerClient(ch, party, sid)
                    (m,) = c.get([("triple", (4,))])
                    out = dict(m) if party == 0 else {k: m[k] for k in ("a", "b", "c")}
                    c.close()
                    return out
            return body

        # two clients claiming party 0 of one session: the dealer refuses the second...
        with pytest.raises(PetError):
            run_parties(client(0, b"A" * 16), client(0, b"A" * 16), timeout=60)
        assert "refused" in proc.stderr.readline()
        # ...and serves the next session correctly
        m0, m1 = run_parties(client(0, b"B" * 16), client(1, b"B" * 16), timeout=60)
        a, b = m0["a"] + m1["a"], m0["b"] + m1["b"]
        np.testing.assert_array_equal(m0["c"] + m1["c"], a * b)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(10)
