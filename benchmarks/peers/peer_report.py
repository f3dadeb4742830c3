"""Checks shared by the peer runners (run in the peers' venv) and benchmarks/test_mpc.py
(run in pet's): plain Python, no SPU and no pet import.

A peer's run must never pass for a time it did not take: a party that raised, a party that
reported nothing, or a report without exactly the expected positive times is an error."""
import json


class PeerFailed(RuntimeError):
    """A peer runner failed or reported no usable time."""


def party_time(runs: list, errors: list) -> float:
    """The time of one two-party run (the slower party's), given each party's time
    (``None`` if it has none) and exception (``None`` if it finished); raises
    :class:`PeerFailed` naming the party that failed or reported no time."""
    for r, exc in enumerate(errors):
        if exc is not None:
            raise PeerFailed(f"peer party {r} failed: {exc!r}") from exc
    for r, t in enumerate(runs):
        if not isinstance(t, (int, float)) or not t > 0:
            raise PeerFailed(f"peer party {r} reported no run time ({t!r})")
    return max(runs)


def parse_report(returncode: int, stdout: str, stderr: str, reps: int) -> dict:
    """The JSON report a runner printed on its last stdout line, checked: exit status 0 and
    ``seconds`` a list of ``reps`` positive numbers with ``median`` their median; else
    :class:`PeerFailed` with the runner's stderr tail."""
    if returncode != 0:
        raise PeerFailed(f"the peer runner failed (exit status {returncode}): {stderr[-2000:]}")
    lines = stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise PeerFailed(f"the peer runner printed no JSON report: {stdout[-500:]!r} {stderr[-1500:]}") from None
    seconds = report.get("seconds") if isinstance(report, dict) else None
    if not (isinstance(seconds, list) and len(seconds) == reps
            and all(isinstance(s, (int, float)) and s > 0 for s in seconds)):
        raise PeerFailed(f"the peer runner reported {seconds!r}, not {reps} positive run times")
    ordered = sorted(seconds)
    median = ordered[reps // 2] if reps % 2 else (ordered[reps // 2 - 1] + ordered[reps // 2]) / 2
    if abs(report.get("median", -1) - median) > 1e-9 * max(1.0, median):
        raise PeerFailed(f"the peer runner's median {report.get('median')!r} is not that of its times")
    return report
