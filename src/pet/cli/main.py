"""Entry point of the ``pet`` command.

Each sub-command lives in its own module ``pet.cli.<name>`` that defines

``register(subparsers) -> None``
    add an ``argparse`` sub-parser (with ``set_defaults(func=run)``), and

``run(args) -> int``
    do the work and return the exit status.

Sub-command modules are imported lazily only when the parser is built, and a module listed
in :data:`COMMANDS` must exist. To add a command, write its module and add its name here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pet._version import __version__
from pet.errors import PetError

#: Sub-command modules, in the order ``pet --help`` lists them.
COMMANDS: tuple[str, ...] = ("demo", "psi", "run", "dealer", "dp", "xgb", "leiden", "sql")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pet",
        description="Privacy-enhancing computation for two parties: PSI, MPC, secure SQL, "
        "vertical XGBoost, private Leiden and differential privacy.",
        epilog="Output files are written atomically and created with mode 0600 (read/write for the owner "
               "only), whatever the umask: they hold personal data, model halves or keys. chmod them to share.",
    )
    parser.add_argument("--version", action="version", version=f"pet {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"pet.cli.{name}")
        module.register(subparsers)
    _plain_help(parser)
    return parser


def plain_text(text):
    """``text`` without reStructuredText markup (``literal``, :role:`target`, trailing ``::``)
    for the terminal; None stays None."""
    import re

    if not text:
        return text
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1] if "~" in m.group(0)
                  else m.group(1), text)
    text = text.replace("``", "").replace("\\\\", "\\")
    return re.sub(r"(\S)::$", r"\1:", re.sub(r"\s::$", "", text, flags=re.M), flags=re.M)


def _plain_help(parser) -> None:
    """Strip reStructuredText markup from every description and help text, recursively."""
    parser.description = plain_text(parser.description)
    parser.epilog = plain_text(parser.epilog)
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            action.help = plain_text(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _plain_help(sub)


#: Library wording (Python keyword arguments) -> command-line wording, for errors reaching the
#: ``pet`` command: ``(command or None for every command, pattern, replacement)``.
FLAG_WORDS: tuple = (
    ("psi", r"pass dedupe=True to keep the first occurrence of each",
     "pass --dedupe to keep the first row of each key"),
    ("xgb", r"PSI needs distinct items -- pass dedupe=True to keep the first occurrence of each",
     "the --id column must hold distinct values (one row per id)"),
    (None, r"pass dedupe=True", "pass --dedupe"),
    (None, r"pass duplicate_keys=(['\"])reveal_counts\1", "pass --duplicate-keys reveal_counts at both parties"),
    (None, r"pass key=", "pass --key-file"),
    (None, r"with key=", "with --key-file"),
    (None, r"a key was given", "--key-file was given"),
    (None, r"pass public_groups=\{column: \[values\]\}", "pass --public-groups COLUMN=V1,V2,... (at both parties)"),
    ("sql", r"pass DP\(bounds=\{'([^']*)': \(lo, hi\)\}\)", r"pass --bound \1=LO:HI (at both parties)"),
    ("sql", r"min_group_size=(\d+)", r"--min-group-size \1"),
    ("sql", r"leave out min_group_size", "leave out --min-group-size"),
    ("sql", r"\bmin_group_size on\b", "--min-group-size on"),
    (None, r"pass the same correlations=/dealer= at both parties",
     "pass --dealer HOST:PORT at both parties, or --no-dealer at both"),
    (None, r"pass tls=TLSConfig\(\.\.\.\), or insecure=True",
     "use mutual TLS (--tls-dir DIR, or --tls-cert/--tls-key/--tls-ca), or pass --insecure"),
)


def cli_words(text: str, command: str | None = None) -> str:
    """``text`` (an error message from the library) with Python keyword arguments replaced by
    the ``pet`` flags that set them (:data:`FLAG_WORDS`), for the command ``command``."""
    import re

    for only, pattern, replacement in FLAG_WORDS:
        if only is None or only == command:
            text = re.sub(pattern, replacement, text)
    return text


def _command(func) -> str | None:
    module = getattr(func, "__module__", "") or ""
    return module.rsplit(".", 1)[-1] if module.startswith("pet.cli.") else None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except PetError as exc:
        print(f"pet: error: {cli_words(str(exc), _command(func))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
