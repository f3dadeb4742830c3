"""Fixtures for the whole suite; the same helpers are importable from :mod:`tests.helpers`
(module-level helpers of a test file import them from there)."""

from __future__ import annotations

import pytest

from tests import helpers


@pytest.fixture
def free_port():
    """A free loopback TCP port (an int)."""
    return helpers.free_port()


@pytest.fixture
def pet_process():
    """:func:`tests.helpers.pet_process`: start ``python -m pet ...`` with text pipes."""
    return helpers.pet_process


@pytest.fixture
def run_pet():
    """:func:`tests.helpers.run_pet`: run ``python -m pet ...`` to completion."""
    return helpers.run_pet


@pytest.fixture
def recording_channel():
    """:class:`tests.helpers.RecordingChannel`: wrap a channel to record what it receives."""
    return helpers.RecordingChannel
