"""Chunked work on every core, with a bounded number of chunks in flight.

The heavy kernels of :mod:`pet.psi._kernels` run in a thread pool: the batched X25519
(:mod:`pet.psi.x25519`, most of the work) is compiled with ``nogil=True``, so threads run
it in parallel; only hashing to the curve (Python + gmpy2, ~12 us per item with the NU
suite) and the per-point ``cryptography`` calls for chunks under ``BATCH_MIN`` points hold
the GIL. Measured against the earlier ``spawn`` process pool (``benchmarks/test_psi.py``,
pet only, idle): 2^16 6.5 s vs 8.9 s wall, 2^18 23.5 s vs 26.4 s, 2^20 89 s vs 86 s -- and
no worker processes, so no ``if __name__ == "__main__":`` guard is needed in scripts.
The ``RO`` hash suite (~70 us of Python per item) is GIL-bound: one core per party.
With ``workers == 1`` everything runs inline in the calling thread, with no pool.

:class:`OrderedWindow` keeps at most ``limit`` chunks submitted but not yet collected,
and returns results in submission order, so memory stays bounded by
``limit * chunk_size`` items however large the input is.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from pet.errors import InputError

__all__ = ["available_cores", "resolve_workers", "Pool", "OrderedWindow", "Progress"]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_workers(workers, n_work: int, *, threshold: int = 20_000) -> int:
    """``workers=None``: all cores for at least ``threshold`` items of work, else inline."""
    if workers is None:
        return available_cores() if n_work >= threshold else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive int or None, got {workers!r}")
    return workers


class Pool:
    """A thread pool (``workers > 1``) or an inline executor (``workers == 1``)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor = None
        if workers > 1:
            from pet.psi._kernels import warm_up

            warm_up()  # compile (or load) the batched X25519 kernel before the threads need it
            self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pet-psi")

    def submit(self, fn, *args) -> Future:
        if self._executor is not None:
            return self._executor.submit(fn, *args)
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            future.set_exception(exc)
        return future

    def close(self, *, cancel: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=cancel)
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        self.close(cancel=exc_type is not None)
        return False


class OrderedWindow:
    """Submitted chunks, collected in order."""

    def __init__(self, pool: Pool):
        self._pool = pool
        self._pending: deque = deque()

    def submit(self, fn, *args) -> None:
        self._pending.append(self._pool.submit(fn, *args))

    def pop(self):
        return self._pending.popleft().result()

    def __len__(self) -> int:
        return len(self._pending)


class Progress:
    """Progress reporting: ``progress`` is False/None (off), True (a tqdm bar on stderr),
    or a callable ``f(done, total)``."""

    def __init__(self, progress, total: int, desc: str):
        self._callback = None
        self._bar = None
        self.done = 0
        self.total = total
        if progress is True:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="item", unit_scale=True, leave=False)
        elif callable(progress):
            self._callback = progress
        elif progress not in (None, False):
            raise InputError(f"progress must be a bool or a callable(done, total), got {progress!r}")

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
