"""Run several parties as threads of one process, joined by in-memory channels.

For notebooks and tests: ``run_parties(f0, f1)`` calls ``f0(ch0)`` and ``f1(ch1)`` in two
threads, where ``ch0`` and ``ch1`` are the two ends of a :func:`~pet.transport.local_pair`,
and returns ``[f0's result, f1's result]``.

With more than two functions, party ``i`` gets a list of channels, element ``j`` connected
to party ``j`` (element ``i`` is ``None``).

Failure handling: when a party raises, every channel is closed at once so the others,
typically blocked in ``recv``, fail promptly; the *first* exception (by time) is re-raised
in the caller, and errors the others raised only because of that are dropped. A party still
running after ``timeout`` seconds makes ``run_parties`` close every channel and raise
:class:`~pet.errors.PartyTimeout` naming it.
"""

from __future__ import annotations

import threading
import time

from pet.errors import InputError, PartyTimeout
from pet.transport.channel import local_pair
from pet.transport.link import Link

__all__ = ["run_parties"]

#: Seconds the others get to unwind after the first failure before we stop waiting.
_GRACE = 5.0


def run_parties(*fns, timeout: float | None = 300.0, channel_timeout=None, names=None, link=None) -> list:
    """Run ``fns[i](channel_i)`` in one thread each; return their results in order.

    Parameters
    ----------
    *fns : callables taking a channel (two parties) or a list of channels (more).
    timeout : overall seconds before the stuck parties are named in a
        :class:`~pet.errors.PartyTimeout` (``None``: no limit).
    channel_timeout : receive timeout of the in-memory channels (default: ``timeout``).
    names : party names for messages and thread names (default ``party0``, ``party1``...).
    link : a :class:`~pet.transport.Link` that shapes every channel of the run (each end's
        sends are delayed by the link's latency and bandwidth); ``None`` for none.
    """
    n = len(fns)
    if n < 2:
        raise InputError(f"run_parties needs at least two functions, got {n}")
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise InputError(f"run_parties: argument {i} is not callable")
    names = list(names) if names is not None else [f"party{i}" for i in range(n)]
    if len(names) != n:
        raise InputError("run_parties: names must have one entry per function")
    ch_timeout = timeout if channel_timeout is None else channel_timeout
    if link is not None and not isinstance(link, Link):
        raise InputError(f"run_parties: link must be a pet.transport.Link or None, got {type(link).__name__}")

    ends: list[list] = [[None] * n for _ in range(n)]
    all_channels = []
    for i in range(n):
        for j in range(i + 1, n):
            a, b = local_pair(timeout=ch_timeout, names=(names[i], names[j]))
            if link is not None:
                a, b = link.wrap(a), link.wrap(b)
            ends[i][j], ends[j][i] = a, b
            all_channels += [a, b]
    args = [ends[i][1 - i] if n == 2 else ends[i] for i in range(n)]

    results: list = [None] * n
    failures: list[tuple[float, int, BaseException]] = []
    lock = threading.Lock()
    failed = threading.Event()

    def close_all():
        for ch in all_channels:
            try:
                ch.close()
            except Exception:  # noqa: S110  # pragma: no cover - closing must not mask the real error
                pass

    def body(i):
        try:
            results[i] = fns[i](args[i])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            with lock:
                failures.append((time.monotonic(), i, exc))
            failed.set()
            close_all()

    threads = [threading.Thread(target=body, args=(i,), name=f"pet-{names[i]}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()

    deadline = None if timeout is None else time.monotonic() + timeout
    for t in threads:
        while t.is_alive():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            if failed.is_set():
                t.join(_GRACE)
                break
            t.join(0.05 if remaining is None else min(0.05, remaining))

    stuck = [names[i] for i, t in enumerate(threads) if t.is_alive()]
    if failures:
        close_all()
        failures.sort(key=lambda f: f[0])
        raise failures[0][2]
    if stuck:
        close_all()
        for t in threads:
            t.join(1.0)
        raise PartyTimeout(f"run_parties: {', '.join(stuck)} still running after {timeout:g} s")
    close_all()
    return results
