"""The core install stays lean: no pet module needs xgboost, igraph or leidenalg (the `demo`
and `dev` extras), and `pet demo` says how to get them instead of failing half-way."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
OPTIONAL = ("xgboost", "igraph", "leidenalg")

# A meta-path finder that makes the optional packages look uninstalled (ImportError on import,
# None from find_spec's point of view: it raises, which importlib.util.find_spec propagates).
BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    BLOCKED = {OPTIONAL!r}
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked by the lean-install test")
            return None
    sys.meta_path.insert(0, _Block())
    for _name in list(sys.modules):
        if _name.split(".")[0] in BLOCKED:
            del sys.modules[_name]
""")


def run_python(code: str, *args, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_blocker_blocks():
    proc = run_python("""
        for name in BLOCKED:
            try:
                __import__(name)
            except ImportError:
                continue
            raise SystemExit(f"{name} imported")
    """)
    assert proc.returncode == 0, proc.stderr


def test_every_pet_module_imports_and_works_without_the_optional_packages():
    proc = run_python("""
        import importlib, pkgutil
        import numpy as np
        import pandas as pd
        import pet

        names = sorted(m.name for m in pkgutil.walk_packages(pet.__path__, "pet."))
        for name in names:
            importlib.import_module(name)
        assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]

        import pet.mpc as mpc
        from pet.psi import align
        from pet.sql import query
        from pet.transport import run_parties

        def program(session):
            a = session.share(np.array([1.5, 2.0]) if session.party == 0 else None, owner=0)
            b = session.share(np.array([3.0, 4.0]) if session.party == 1 else None, owner=1)
            return session.reveal(a * b)
        out = mpc.run_local(program)
        assert np.allclose(out[0], [4.5, 8.0]), out

        left = pd.DataFrame({"id": [1, 2, 3, 4], "x": [10, 20, 30, 40]})
        right = pd.DataFrame({"id": [3, 4, 5], "y": [7, 8, 9]})
        rows = run_parties(lambda ch: align(ch, left, "id", party=0), lambda ch: align(ch, right, "id", party=1))
        assert sorted(rows[0]["id"]) == [3, 4] and list(rows[0]["id"]) == list(rows[1]["id"])

        sql = "SELECT COUNT(*) AS n, SUM(a.x * b.y) AS s FROM a JOIN b ON a.id = b.id"
        res = mpc.run_local(lambda s: query(s, sql, {"a": left} if s.party == 0 else {"b": right}))
        assert int(res[0]["n"][0]) == 2 and abs(float(res[0]["s"][0]) - (30 * 7 + 40 * 8)) < 1e-3, res[0]
        print("pet modules:", len(names))
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split("pet modules:")[1]) > 50


@pytest.mark.parametrize("argv", [["demo"], ["demo", "--steps", "psi,xgb"], ["demo", "--party", "0", "--listen",
                                                                               "127.0.0.1:1"]])
def test_pet_demo_without_the_demo_extra_says_how_to_install_it(argv):
    proc = run_python("""
        from pet.cli.main import main
        raise SystemExit(main(sys.argv[1:]))
    """, *argv, timeout=60)
    assert proc.returncode == 1
    assert "pip install 'pet[demo]'" in proc.stderr and "xgboost" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pet_demo_steps_that_need_no_comparison_run_without_the_extra():
    proc = run_python("""
        from pet.demo import require_demo_extras
        require_demo_extras(["link", "psi", "sql", "dp"])
        try:
            require_demo_extras(["leiden"])
        except ValueError as exc:
            assert "igraph" in str(exc) and "pet[demo]" in str(exc)
        else:
            raise SystemExit("leiden passed without igraph")
    """, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _toml_list(text: str, key: str) -> list[str]:
    """The strings of ``key = [...]`` in pyproject.toml (tomllib needs Python 3.11)."""
    import re

    body = re.search(rf"^{re.escape(key)} = \[(.*?)^\]", text, re.S | re.M) or re.search(
        rf"^{re.escape(key)} = \[(.*?)\]", text, re.M)
    return re.findall(r'"([^"]+)"', re.sub(r"#.*", "", body.group(1)))


def test_core_dependencies_exclude_the_optional_packages():
    text = (SRC.parent / "pyproject.toml").read_text()
    core = _toml_list(text, "dependencies")
    assert "numpy>=1.24" in core and not [d for d in core if d.split(">")[0] in OPTIONAL]
    demo, dev = _toml_list(text, "demo"), _toml_list(text, "dev")
    assert {"xgboost", "igraph"} <= {d.split(">")[0] for d in demo}
    assert "pet[demo]" in dev and any(d.startswith("leidenalg") for d in dev)
