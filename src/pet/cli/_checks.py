"""Checks a party can make alone, before it waits for the peer: output paths, input files.

Each raises :class:`~pet.errors.InputError` naming the flag, so the user learns of a typo
at once instead of after the protocol (when the peer may already have its result).
"""

from __future__ import annotations

import os
from pathlib import Path

from pet.errors import InputError

__all__ = ["check_output_path", "check_input_file", "LocalFailure"]


def check_output_path(path, flag: str = "--output") -> None:
    """``path`` can be created: its parent is an existing, writable directory and ``path``
    itself is not a directory (an existing file is replaced atomically)."""
    if path is None:
        return
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InputError(f"{flag} {path}: is a directory; give a file name")
    for ancestor in [parent, *parent.parents]:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise InputError(f"{flag} {path}: {str(ancestor)!r} is a file, not a directory")
            break
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: the directory {str(parent)!r} does not exist (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: no permission to write in {str(parent)!r}")
    if target.exists() and not os.access(target, os.W_OK) and not os.access(parent, os.W_OK):
        raise InputError(f"{flag} {path}: the file is not writable")


def check_input_file(path, flag: str = "--input") -> None:
    """``path`` is an existing, readable file."""
    target = Path(path)
    if not target.exists():
        raise InputError(f"{flag} {path}: no such file")
    if target.is_dir():
        raise InputError(f"{flag} {path}: is a directory, not a file")
    if not os.access(target, os.R_OK):
        raise InputError(f"{flag} {path}: no permission to read it")


class LocalFailure(InputError):
    """A local check that failed after connecting: ``peer_reason`` is what the peer is told
    (a key of :data:`pet.errors.PEER_FAILURE_REASONS`)."""

    def __init__(self, message: str, peer_reason: str):
        super().__init__(message)
        self.peer_reason = peer_reason
