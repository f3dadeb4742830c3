"""Simulator shapes vs the paper (ranges over seeds) and the ``pet dp simulate`` command."""

from __future__ import annotations

import csv

import pytest

import pet.dp as dp
from pet.cli.main import main
from pet.errors import InputError


@pytest.mark.parametrize("seed", [3345, 1, 2])
def test_single_block_shape(seed):
    # Acceptance case 5 / paper Fig. 6a: FCFS ~28, DPF-N(1) = FCFS, DPF peaks at 100, RR <= ~40.
    fcfs = dp.simulate("single-block", "fcfs", seed=seed)
    assert 150 <= fcfs.arrivals <= 320
    assert 15 <= fcfs.granted <= 45
    assert dp.simulate("single-block", "dpf-n", n=1, seed=seed).granted == fcfs.granted
    assert dp.simulate("single-block", "dpf-n", n=200, seed=seed).granted == 100
    assert dp.simulate("single-block", "dpf-t", n=200, seed=seed).granted >= 95
    rr = [dp.simulate("single-block", "rr-n", n=n, seed=seed).granted for n in (50, 100, 225, 325)]
    assert max(rr) <= 45 and rr[-1] < rr[1]


def test_multi_block_shape():
    # Acceptance case 6 / Fig. 8: DPF-N peak >= ~2x FCFS; RR collapses at large N.
    fcfs = dp.simulate("multi-block", "fcfs", seed=3345)
    dpf = dp.simulate("multi-block", "dpf-n", n=200, seed=3345)
    rr = dp.simulate("multi-block", "rr-n", n=1500, seed=3345)
    assert 800 <= fcfs.granted <= 1400
    assert dpf.granted >= 1.8 * fcfs.granted
    assert rr.granted < 0.2 * fcfs.granted


def test_same_seed_same_result_and_mice_split():
    a = dp.simulate("single-block", "dpf-n", n=125, seed=7)
    b = dp.simulate("single-block", "dpf-n", n=125, seed=7)
    assert (a.granted, a.arrivals, a.granted_mice) == (b.granted, b.arrivals, b.granted_mice)
    assert a.granted_mice + a.granted_elephants == a.granted
    only_mice = dp.simulate("single-block", "dpf-n", n=125, seed=7, mice_percentage=100)
    assert only_mice.granted == only_mice.granted_mice <= 100


def test_renyi_single_block_grants_more_than_basic():
    short = dict(duration=2000.0, seed=3345)
    basic = dp.simulate("single-block", "dpf-n", n=200, **short)
    renyi = dp.simulate("single-block", "dpf-n", n=1500, budget="renyi", **short)
    assert basic.granted <= 100 < renyi.granted


def test_simulate_rejects_bad_arguments():
    with pytest.raises(InputError):
        dp.simulate("single-block", "lottery")
    with pytest.raises(InputError):
        dp.simulate("single-block", "dpf-n")  # needs n
    with pytest.raises(InputError):
        dp.simulate("single-block", "rr-n", n=10, budget="renyi")


def test_cli_simulate_writes_csv_and_plot(tmp_path, capsys):
    out, png = tmp_path / "r.csv", tmp_path / "r.png"
    rc = main(["dp", "simulate", "--workload", "single-block", "--policies", "fcfs,rr-n,dpf-n",
               "--sweep", "1,200", "--seed", "3345", "--out", str(out), "--plot", str(png)])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["policy"], r["n"]) for r in rows] == [("fcfs", "1"), ("fcfs", "200"), ("rr-n", "1"), ("rr-n", "200"),
                                                     ("dpf-n", "1"), ("dpf-n", "200")]
    assert rows[-1]["granted"] == "100"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "dpf-n" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.png"]  # no temp files left


def test_cli_bad_policy_is_an_error(tmp_path, capsys):
    assert main(["dp", "simulate", "--policies", "fcfs,best"]) == 1
    assert "policies" in capsys.readouterr().err
