"""Every ```python block in README.md and docs/*.md runs as written (issue 22, item 11).

The blocks of one file run in order in one namespace (a later block may use an earlier one's
names), in a child process per file with the repository root as the working directory and a
temporary HOME/TMPDIR, so files a snippet writes go to a throwaway place. A block that needs
two parties is written to run with ``pet.mpc.run_local`` / ``pet.transport.run_parties``
(threads). A block whose first line is ``# not run: <reason>`` is skipped on purpose (keep
those rare: the reason is printed in the test's id).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"^#\s*not run:\s*(?P<reason>\S.*)$")


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line number, code)`` of each ```python block of ``path``, in order."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _BLOCK.finditer(text):
        line = text.count("\n", 0, m.start()) + 2
        out.append((line, textwrap.dedent(m.group("body"))))
    return out


def _script(path: Path) -> tuple[str, list[str]]:
    parts, skipped = [], []
    for line, code in python_blocks(path):
        first = code.strip().splitlines()[0] if code.strip() else ""
        reason = NOT_RUN.match(first)
        if reason:
            skipped.append(f"{path.name}:{line}: {reason.group('reason')}")
            continue
        parts.append(f"# --- {path.name}, line {line}\n__pet_block__ = {line}\n{code}")
    return "\n".join(parts), skipped


def _files_with_blocks() -> list[Path]:
    return [p for p in FILES if python_blocks(p)]


def _files_to_run() -> list[Path]:
    """Files with at least one block not marked ``# not run``."""
    return [p for p in _files_with_blocks() if _script(p)[0].strip()]


def test_there_are_snippets_and_few_are_skipped():
    files = _files_with_blocks()
    assert len(files) >= 5
    skipped = [s for p in files for s in _script(p)[1]]
    total = sum(len(python_blocks(p)) for p in files)
    assert len(skipped) <= max(2, total // 5), skipped


@pytest.mark.parametrize("path", _files_to_run(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_snippets_run_as_written(path, tmp_path):
    script, _ = _script(path)
    runner = ("import sys, traceback\n"
              "src = open(sys.argv[1], encoding='utf-8').read()\n"
              "ns = {'__name__': '__main__'}\n"
              "try:\n"
              "    exec(compile(src, sys.argv[2], 'exec'), ns)\n"
              "except BaseException:\n"
              "    traceback.print_exc()\n"
              "    print(f\"FAILED in the block starting at line {ns.get('__pet_block__')} of {sys.argv[2]}\","
              " file=sys.stderr)\n"
              "    sys.exit(1)\n")
    (tmp_path / "snippets.py").write_text(script, encoding="utf-8")
    env = dict(os.environ, HOME=str(tmp_path), TMPDIR=str(tmp_path), NUMBA_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", runner, str(tmp_path / "snippets.py"), path.name],
                         capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
