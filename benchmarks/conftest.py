"""Benchmark sizes: small by default (the whole suite in a few minutes), the sizes named in
the issues with ``PET_BENCH_FULL=1``. A per-benchmark variable (documented in each file)
overrides both.

A shaped network link for the benchmarks that accept one (the ``link`` fixture):
``pytest benchmarks --link rtt=20ms,bw=100mbit`` or ``PET_LINK=rtt=20ms,bw=100mbit``
(the option wins); default: no shaping (loopback / in-memory).
"""

import os

import pytest

FULL = os.environ.get("PET_BENCH_FULL", "") not in ("", "0")


def pick(small, full):
    """``full`` under ``PET_BENCH_FULL=1``, else ``small``."""
    return full if FULL else small


def pytest_addoption(parser):
    parser.addoption("--link", default=None, metavar="SPEC",
                     help="shape every link of the benchmarks that take the link fixture, "
                          "e.g. rtt=20ms,bw=100mbit (default: $PET_LINK, else none)")


def link_spec(config=None):
    """The link text from ``--link`` or ``PET_LINK`` (None when neither is given)."""
    spec = config.getoption("--link") if config is not None else None
    return spec or os.environ.get("PET_LINK") or None


@pytest.fixture(scope="session")
def link(pytestconfig):
    """The :class:`pet.transport.Link` to shape the run with, or None (unshaped)."""
    from pet.transport import Link

    spec = link_spec(pytestconfig)
    return None if spec is None else Link.parse(spec)
