"""The pet command: version, help, and the two-process demo (small)."""

import subprocess
import sys

import pet


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "pet", *args], capture_output=True, text=True, timeout=timeout)


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
