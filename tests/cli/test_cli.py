"""The pet command: version, help, and the two-process demo (small)."""

import subprocess
import sys

import pet
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


def test_demo_unknown_step_is_an_error():
    out = run("demo", "--steps", "link,nope")
    assert out.returncode == 1 and "unknown step" in out.stderr


def test_demo_party_without_address_is_an_error():
    out = run("demo", "--party", "1")
    assert out.returncode == 2 and "--connect" in out.stderr


def test_import_pet_is_lazy_and_side_effect_free():
    code = "import sys, pet; assert 'pet.mpc' not in sys.modules and 'numba' not in sys.modules; print(pet.transport.Channel)"
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
