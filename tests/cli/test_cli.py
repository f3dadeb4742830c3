"""The pet command: version, help, and the two-process demo (small)."""

import subprocess
import sys

import pet
from pet.errors import PetError
from tests.helpers import run_pet as run


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"pet {pet.__version__}"
    out = run("--help")
    assert out.returncode == 0 and "demo" in out.stdout


def test_demo_runs_parties_as_processes_over_tls():
    out = run("demo", "--steps", "link,psi")
    assert out.returncode == 0, out.stderr
    assert "mutual TLS" in out.stdout and "Summary" in out.stdout
    assert "400 common customers aligned" in out.stdout
    assert "All 2 steps succeeded" in out.stdout
    # the children's output is relayed whole lines at a time, each tagged once at its start
    # (issue 22, item 10: the two parties never interleave on one line)
    progress = [line for line in out.stdout.splitlines() if "[party" in line or "[dealer" in line]
    assert len(progress) >= 6, out.stdout
    for line in progress:
        assert line.startswith(("[party 0] ", "[party 1] ", "[dealer] ")), line
        assert line.count("[party") + line.count("[dealer") == 1, line


def test_demo_unknown_step_is_an_error():
    out = run("demo", "--steps", "link,nope")
    assert out.returncode == 1 and "unknown step" in out.stderr


def test_demo_party_without_address_is_an_error():
    out = run("demo", "--party", "1")
    assert out.returncode == 2 and "--connect" in out.stderr


def test_import_pet_is_lazy_and_side_effect_free():
    code = ("import sys, pet; assert 'pet.mpc' not in sys.modules and 'numba' not in sys.modules; "
            "print(pet.transport.Channel)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_every_networked_command_takes_the_same_tls_options():
    for command in ("psi", "sql", "leiden", "dealer"):
        out = run(command, "--help")
        assert out.returncode == 0
        for option in ("--tls-dir", "--tls-cert", "--tls-key", "--tls-ca"):
            assert option in out.stdout, (command, option)
    out = run("xgb", "fit", "--help")
    assert "--tls-dir" in out.stdout and "--tls-dealer-name" in out.stdout


def test_tls_options_resolve_to_a_config(tmp_path):
    import argparse

    import pytest

    from pet.cli._net import add_tls_arguments, tls_from_args
    from pet.errors import InputError
    from pet.transport import make_test_pki

    make_test_pki(tmp_path, names=("party0", "party1", "dealer"))
    parser = argparse.ArgumentParser()
    add_tls_arguments(parser)
    assert tls_from_args(parser.parse_args([]), "party0") is None
    cfg = tls_from_args(parser.parse_args(["--tls-dir", str(tmp_path), "--tls-peer-name", "party1"]), "party0")
    assert str(cfg.cert).endswith("party0.pem") and cfg.peer_name == "party1"
    cfg = tls_from_args(parser.parse_args(["--tls-cert", str(tmp_path / "dealer.pem"), "--tls-key",
                                           str(tmp_path / "dealer.key"), "--tls-ca", str(tmp_path / "ca.pem")]), "x")
    assert str(cfg.cert).endswith("dealer.pem")
    with pytest.raises(InputError, match="all three"):
        tls_from_args(parser.parse_args(["--tls-cert", str(tmp_path / "dealer.pem")]), "party0")
    with pytest.raises(InputError, match="not both"):
        tls_from_args(parser.parse_args(["--tls-dir", str(tmp_path), "--tls-ca", str(tmp_path / "ca.pem")]), "party0")
    with pytest.raises(InputError, match="needs"):
        tls_from_args(parser.parse_args(["--tls-peer-name", "party1"]), "party0")


# -- roles are pinned on every link (issue 13, item 3) ----------------------------------------

import argparse  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory):
    from pet.transport import make_test_pki

    d = tmp_path_factory.mktemp("pki")
    make_test_pki(d, names=("party0", "party1", "dealer"))
    return d


def _party_args(extra):
    from pet.cli._net import add_tls_arguments

    parser = argparse.ArgumentParser()
    parser.add_argument("--dealer")
    parser.add_argument("--party", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--wait", type=float, default=5)
    add_tls_arguments(parser)
    return parser.parse_args(extra)


def test_cli_pins_the_peer_and_the_dealer_separately(pki_dir):
    from pet.cli._net import dealer_tls, tls_from_args

    for flags in (["--tls-dir", str(pki_dir)],
                  ["--tls-cert", str(pki_dir / "party0.pem"), "--tls-key", str(pki_dir / "party0.key"),
                   "--tls-ca", str(pki_dir / "ca.pem")]):
        args = _party_args(flags)
        tls = tls_from_args(args, "party0")
        assert tls.peer_names == ("party1",)
        assert dealer_tls(args, tls).peer_names == ("dealer",)
    args = _party_args(["--tls-dir", str(pki_dir), "--tls-peer-name", "p1.example", "--tls-dealer-name", "d.example"])
    tls = tls_from_args(args, "party0")
    assert tls.peer_names == ("p1.example",) and dealer_tls(args, tls).peer_names == ("d.example",)
    assert tls_from_args(_party_args(["--tls-dir", str(pki_dir)]), "dealer").peer_names == ("party0", "party1")
    with pytest.raises(Exception, match="--tls-dealer-name needs"):
        tls_from_args(_party_args(["--tls-dealer-name", "dealer"]), "party0")


def test_party_refuses_another_participants_certificate_on_its_dealer_link(pki_dir):
    """Party 1's certificate, from the same CA, must not pass as party 0's dealer."""
    from pet.cli._net import open_dealer, tls_from_args
    from pet.errors import PeerDisconnected, TLSError
    from pet.transport import tcp
    from pet.transport.tls import TLSConfig

    impostor = TLSConfig.from_dir(pki_dir, "party1")  # accepts party0
    with tcp.Listener("127.0.0.1", 0, tls=impostor, timeout=5) as listener:
        thread = threading.Thread(target=lambda: pytest.raises(PetError, listener.accept, accept_timeout=3))
        thread.start()
        args = _party_args(["--tls-dir", str(pki_dir), "--dealer", f"127.0.0.1:{listener.port}"])
        with pytest.raises((TLSError, PeerDisconnected), match="expected 'dealer'|TLS"):
            open_dealer(args, tls_from_args(args, "party0"))
        thread.join(10)


def test_pet_dealer_refuses_a_participant_that_is_not_a_party(pki_dir):
    """`pet dealer` only accepts certificates naming party0 or party1, and tells callers
    which one (channel.peer_name) -- a dealer certificate, from the same CA, is refused."""
    import re

    from pet.errors import PeerDisconnected, TLSError
    from pet.transport import tcp
    from pet.transport.tls import TLSConfig

    proc = subprocess.Popen([sys.executable, "-m", "pet", "dealer", "--listen", "127.0.0.1:0", "--tls-dir",
                             str(pki_dir), "--wait", "5", "--timeout", "5"], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        port = int(re.search(r":(\d+)", line).group(1))
        fake = TLSConfig.from_dir(pki_dir, "dealer", peer_name="dealer")
        with pytest.raises((TLSError, PeerDisconnected)):
            tcp.connect("127.0.0.1", port, tls=fake, retry_for=5, timeout=5).recv(timeout=3)
        # the dealer is still waiting: a real party gets through and sees the dealer's name
        ch = tcp.connect("127.0.0.1", port, tls=TLSConfig.from_dir(pki_dir, "party0").for_dealer(), timeout=5)
        assert ch.peer_name == "dealer"
        ch.close()
    finally:
        proc.kill()
        proc.wait(10)


def test_psi_listener_skips_an_impostor_and_serves_the_real_peer(pki_dir, tmp_path):
    """`pet psi --party 0` with --tls-dir: the dealer's certificate (same CA) is refused as
    party 1, and the real party 1 that comes afterwards gets its answer."""
    import socket

    from pet.errors import PeerDisconnected, TLSError
    from pet.transport import tcp
    from pet.transport.tls import TLSConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "a.csv").write_text("id\n1\n2\n3\n")
    (tmp_path / "b.csv").write_text("id\n2\n3\n4\n")
    common = ["--column", "id", "--wait", "60", "--timeout", "60", "--tls-dir", str(pki_dir), "--no-progress"]
    p0 = subprocess.Popen([sys.executable, "-m", "pet", "psi", "--party", "0", "--listen", f"127.0.0.1:{port}",
                           "--input", str(tmp_path / "a.csv"), "--output", str(tmp_path / "o0.csv"), *common],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        impostor = TLSConfig.from_dir(pki_dir, "dealer", peer_name="party0")
        with pytest.raises((TLSError, PeerDisconnected)):
            tcp.connect("127.0.0.1", port, tls=impostor, retry_for=30, timeout=5).recv(timeout=5)
        out1 = run("psi", "--party", "1", "--connect", f"127.0.0.1:{port}", "--input", str(tmp_path / "b.csv"),
                   "--output", str(tmp_path / "o1.csv"), *common)
        assert out1.returncode == 0, out1.stderr
        out0, err0 = p0.communicate(timeout=60)
        assert p0.returncode == 0, err0
        assert "refused a connection" in err0 and "expected 'party1'" in err0
        assert sorted((tmp_path / "o0.csv").read_text().split()) == ["2", "3", "id"]
    finally:
        if p0.poll() is None:
            p0.kill()


# -- no plaintext off loopback without --insecure (issue 13, item 4) ---------------------------


def _main(capsys, *argv):
    from pet.cli.main import main

    start = time.monotonic()
    code = main(list(argv))
    assert time.monotonic() - start < 10  # refused at once, not after waiting for a peer
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["psi", "--party", "0", "--listen", "0.0.0.0:0", "--input", "x.csv", "--column", "id", "--output", "o.csv"],
    ["psi", "--party", "1", "--connect", "192.0.2.1:9000", "--input", "x.csv", "--column", "id", "--output", "o"],
    ["sql", "--party", "0", "--listen", "127.0.0.1:0", "--dealer", "192.0.2.1:9100", "--table", "t=x.csv",
     "--query", "SELECT 1", "--output", "o.csv"],
    ["leiden", "--party", "1", "--connect", "[::]:9000", "--dealer", "127.0.0.1:9100", "--edges", "e.csv",
     "--nodes", "n.csv", "--output", "o.csv"],
    ["xgb", "fit", "--party", "0", "--listen", "10.0.0.1:9000", "--dealer", "127.0.0.1:9100", "--input", "x.csv",
     "--id", "id", "--model", "m"],
    ["dealer", "--listen", "0.0.0.0:0"],
    ["demo", "--party", "0", "--listen", "0.0.0.0:0"],
], ids=["psi-listen-any", "psi-connect-remote", "sql-dealer-remote", "leiden-connect-any", "xgb-listen-lan",
        "dealer", "demo"])
def test_plaintext_off_loopback_is_refused_naming_the_flags(capsys, argv):
    code, err = _main(capsys, *argv)
    assert code != 0
    assert "--tls-dir" in err and "--insecure" in err, err


def test_pet_run_refuses_plaintext_off_loopback(capsys, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("job: j\nnetwork:\n  address: 0.0.0.0:9300\ntasks:\n  - name: t\n    type: psi\n"
                   "    params: {input: x.csv, column: id, output: o.csv}\n")
    code, err = _main(capsys, "run", str(job), "--party", "0", "--state", str(tmp_path / "s.sqlite"))
    assert code != 0
    assert "tls_dir" in err and "--insecure" in err, err


def test_insecure_lets_a_command_listen_on_every_interface(tmp_path):
    """With --insecure, `pet dealer` binds 0.0.0.0 (and then waits, as before)."""
    proc = subprocess.Popen([sys.executable, "-m", "pet", "dealer", "--listen", "0.0.0.0:0", "--insecure",
                             "--wait", "1"], stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on 0.0.0.0" in proc.stderr.readline()
    finally:
        proc.kill()
        proc.wait(10)


def test_model_key_file_readable_by_others_warns(tmp_path):
    import os

    from pet.cli.xgb import _key

    path = tmp_path / "model.key"
    path.write_bytes(bytes(range(32)).hex().encode())
    os.chmod(path, 0o600)
    assert _key(path) == bytes(range(32))
    os.chmod(path, 0o644)
    with pytest.warns(UserWarning, match="--key-file"):
        assert _key(path) == bytes(range(32))
