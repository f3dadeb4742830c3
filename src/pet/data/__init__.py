"""Data shipped with pet: the reference systems' small fixtures, for demos, examples and tests.

``reference/`` holds byte-for-byte copies of data and configuration files from the public
TikTok PrivacyGo repositories (Apache-2.0, (c) TikTok Pte. Ltd.; origins and per-file
details in ``reference/README.md``): PETML breast/iris/students CSVs and the karate-club
split, PETSQL plans and config, PETPlatform missions and requests, PETAce-SetOps toy lists.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["reference_path"]


def reference_path(*parts: str) -> Path:
    """Path of a shipped reference fixture, e.g. ``reference_path("PETML", "karate_club_local_nodes1.json")``."""
    path = Path(str(resources.files("pet.data"))) / "reference"
    for part in parts:
        path = path / part
    if not path.exists():
        from pet.errors import InputError

        raise InputError(f"no shipped fixture {'/'.join(parts)!r}")
    return path
