"""Mutual TLS: both sides authenticate; untrusted or missing certificates are refused."""

import threading

import numpy as np
import pytest

from pet.errors import PeerDisconnected, TLSError, TransportError
from pet.transport import make_test_pki, tcp
from pet.transport.tls import TLSConfig


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("pki"), names=("party0", "party1"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("other"), names=("party0", "party1"))


def run_both(server_tls, client_tls, *, accept_timeout=10):
    """Start a listener and a client; return (server result or exception, client result or exception)."""
    listener = tcp.Listener("127.0.0.1", 0, tls=server_tls, timeout=10)
    out = {}

    def server():
        try:
            out["server"] = listener.accept(accept_timeout=accept_timeout)
        except Exception as exc:  # noqa: BLE001 - inspected by the test
            out["server"] = exc

    thread = threading.Thread(target=server)
    thread.start()
    try:
        out["client"] = tcp.connect("127.0.0.1", listener.port, tls=client_tls, retry_for=5, timeout=10)
    except Exception as exc:  # noqa: BLE001
        out["client"] = exc
    thread.join(30)
    listener.close()
    return out["server"], out["client"]


def test_mutual_tls_round_trip(pki):
    server, client = run_both(pki["party0"], pki["party1"])
    with server, client:
        assert server.is_tls and client.is_tls
        data = np.arange(1_000_000, dtype=np.int64)
        client.send({"x": data})
        assert np.array_equal(server.recv()["x"], data)
        server.send("ok")
        assert client.recv() == "ok"


def test_peer_name_pinning(pki):
    cfg0, cfg1 = pki["party0"], pki["party1"]
    pinned0 = TLSConfig(cfg0.cert, cfg0.key, cfg0.ca, peer_name="party1")
    pinned1 = TLSConfig(cfg1.cert, cfg1.key, cfg1.ca, peer_name="party0")
    server, client = run_both(pinned0, pinned1)
    server.close(), client.close()
    wrong = TLSConfig(cfg1.cert, cfg1.key, cfg1.ca, peer_name="dealer")
    server, client = run_both(pinned0, wrong)
    assert isinstance(client, TLSError)
    if not isinstance(server, Exception):
        server.close()


def test_untrusted_client_certificate_is_refused_on_both_sides(pki, other_pki):
    # the client's certificate comes from another CA; it trusts the server's CA, though
    cfg = other_pki["party1"]
    client_tls = TLSConfig(cert=cfg.cert, key=cfg.key, ca=pki["party1"].ca)
    server, client = run_both(pki["party0"], client_tls)
    assert isinstance(server, TLSError), server
    assert isinstance(client, (TLSError, PeerDisconnected)), client


def test_untrusted_server_certificate_is_refused_on_both_sides(pki, other_pki):
    cfg = other_pki["party0"]
    server_tls = TLSConfig(cert=cfg.cert, key=cfg.key, ca=pki["party0"].ca)
    server, client = run_both(server_tls, pki["party1"])
    assert isinstance(client, TLSError), client
    assert isinstance(server, (TLSError, PeerDisconnected)), server


def test_plaintext_client_against_tls_server_is_refused(pki):
    server, client = run_both(pki["party0"], None)
    assert isinstance(server, TLSError), server
    assert isinstance(client, (PeerDisconnected, TransportError)), client


def test_tls_client_against_plaintext_server_is_refused(pki):
    server, client = run_both(None, pki["party1"])
    assert isinstance(client, TLSError), client
    assert isinstance(server, Exception), server


def test_missing_files_are_reported():
    from pet.errors import InputError

    with pytest.raises(InputError, match="cert"):
        TLSConfig(cert="/nonexistent.pem", key="/nonexistent.key", ca="/nonexistent-ca.pem")


def test_large_simultaneous_exchange_over_tls(pki):
    """Both sides exchange big frames at once over TLS: one thread per side drives reads and
    writes (OpenSSL connections are not safe for concurrent use from two threads)."""
    server, client = run_both(pki["party0"], pki["party1"])
    out = {}
    with server, client:
        for size in (70_000, 3_000_000, 25_000_000):
            a = np.arange(size, dtype=np.uint64)
            b = {"x": a[::-1].copy(), "tag": "b", "small": np.zeros(0)}
            thread = threading.Thread(target=lambda: out.__setitem__("s", server.exchange(b)))
            thread.start()
            got = client.exchange({"x": a, "tag": "a", "small": np.zeros(0)})
            thread.join(60)
            assert np.array_equal(got["x"], b["x"]) and got["tag"] == "b"
            assert np.array_equal(out["s"]["x"], a) and out["s"]["tag"] == "a"
        # small and large mixed, then plain send/recv still in sync
        client.send("after")
        assert server.recv() == "after"
        assert client.stats.bytes_sent == server.stats.bytes_received
        assert client.stats.messages_sent == server.stats.messages_received


def test_exchange_over_tls_reports_a_dead_peer(pki):
    server, client = run_both(pki["party0"], pki["party1"])
    with client:
        server.close()
        with pytest.raises((PeerDisconnected, TLSError)):
            client.exchange(np.zeros(1_000_000))
