"""Benchmark sizes: small by default (the whole suite in a few minutes), the sizes named in
the issues with ``PET_BENCH_FULL=1``. A per-benchmark variable (documented in each file)
overrides both."""

import os

FULL = os.environ.get("PET_BENCH_FULL", "") not in ("", "0")


def pick(small, full):
    """``full`` under ``PET_BENCH_FULL=1``, else ``small``."""
    return full if FULL else small
