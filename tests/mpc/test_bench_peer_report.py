"""The same-run peer rows of benchmarks/test_mpc.py fail loudly: a peer party that raised or
reported no time, or a report without the expected positive run times, is an error (the
Cheetah runner used to report ``seconds: [0.0]`` when a party failed)."""

import importlib.util
import json
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "peers" / "peer_report.py"


@pytest.fixture(scope="module")
def peer_report():
    spec = importlib.util.spec_from_file_location("pet_bench_peer_report_test", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_party_time_is_the_slower_party(peer_report):
    assert peer_report.party_time([0.25, 0.5], [None, None]) == 0.5


@pytest.mark.parametrize("runs,errors", [
    ([0.0, 0.0], [None, RuntimeError("link broken")]),  # the old runner's [0.0]
    ([0.3, 0.0], [None, None]),  # a party that never set its time
    ([None, 0.3], [None, None]),
])
def test_party_time_refuses_a_failed_or_silent_party(peer_report, runs, errors):
    with pytest.raises(peer_report.PeerFailed, match="party"):
        peer_report.party_time(runs, errors)


def _line(seconds, median):
    return "some log line\n" + json.dumps({"seconds": seconds, "median": median}) + "\n"


def test_parse_report_accepts_positive_times(peer_report):
    report = peer_report.parse_report(0, _line([0.3, 0.2, 0.4], 0.3), "", 3)
    assert report["seconds"] == [0.3, 0.2, 0.4]


@pytest.mark.parametrize("returncode,stdout,reps", [
    (1, _line([0.3, 0.2, 0.4], 0.3), 3),  # the runner failed
    (0, _line([0.0], 0.0), 1),  # what the old Cheetah runner printed for a failed party
    (0, _line([0.3, 0.2], 0.25), 3),  # fewer times than runs
    (0, _line([0.3, 0.2, 0.4], 0.2), 3),  # a median that is not the times'
    (0, "no json\n", 3),
])
def test_parse_report_refuses_failures(peer_report, returncode, stdout, reps):
    with pytest.raises(peer_report.PeerFailed):
        peer_report.parse_report(returncode, stdout, "Traceback: party 1 failed", reps)
