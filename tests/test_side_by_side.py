"""Configurations trained side by side (one native population per CPU thread, as `ablate` does on a CPU with
several threads) write the same records, bit for bit, as the same configurations trained one after another;
and an interrupted side-by-side job stops when the pass in hand ends, every configuration's state after the pass
before saved."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from repro.engines.native import engine as native
from repro.jobs.ladder import load_rungs, plan
from repro.jobs.store import load_state
from repro.jobs.runner import (RunContext, Stopped, side_by_side_count, side_by_side_workers, train_configuration,
                               train_configurations_on_threads)

N_TRAIN, N_TEST, PASSES, SEEDS = 96, 64, 2, [0, 1, 2]
SAME = ("train_loss", "train_error", "test_loss", "test_error", "final", "diverged_at_pass", "collapsed")


def _jobs(usps):
    small = dataclasses.replace(usps, x_train=usps.x_train[:N_TRAIN], y_train=usps.y_train[:N_TRAIN],
                                x_test=usps.x_test[:N_TEST], y_test=usps.y_test[:N_TEST])
    planned = [dataclasses.replace(p, config=p.config.replace(passes=PASSES)) for p in plan(load_rungs())]
    return [(p, small) for p in planned[:4]]  # baseline, relu, adamw, lr-decay


def _records(root):
    return {p.name: json.loads(p.read_text()) for p in sorted((root / "runs").rglob("*.json"))}


@pytest.fixture
def needs_native():
    if why := native.available():
        pytest.skip(why)


def test_side_by_side_records_are_those_of_one_configuration_after_another(usps, tmp_path, needs_native):
    jobs = _jobs(usps)
    one = RunContext(tmp_path / "one", engine="native")
    for planned, ds in jobs:
        train_configuration(planned, ds, SEEDS, one)
    side = RunContext(tmp_path / "side", engine="native")
    assert side_by_side_workers(jobs, side) == min(torch.get_num_threads(), len(jobs))
    train_configurations_on_threads(jobs, SEEDS, side, workers=2)
    assert side.threads is None  # the job's own setting comes back
    a, b = _records(tmp_path / "one"), _records(tmp_path / "side")
    assert sorted(a) == sorted(b) and len(a) == len(jobs) * len(SEEDS)
    for name in a:
        for key in SAME:
            assert a[name][key] == b[name][key], (name, key)


def test_side_by_side_only_for_native_populations_on_a_cpu_with_threads():
    assert side_by_side_count(["native"] * 3, torch.device("cpu")) == min(torch.get_num_threads(), 3)
    assert side_by_side_count(["native", "population"], torch.device("cpu")) == 1
    assert side_by_side_count(["native"], torch.device("cpu")) == 1
    assert side_by_side_count(["native"] * 2, torch.device("cuda")) == 1


def test_an_interrupted_side_by_side_job_stops_when_the_pass_in_hand_ends(usps, tmp_path, needs_native,
                                                                          monkeypatch):
    """The interrupt comes during pass 2 (of 2) of every configuration: each drops that pass, as one trained
    alone would, and keeps its state after pass 1; no record is written."""
    jobs = _jobs(usps)[:2]
    ctx = RunContext(tmp_path, engine="native")
    original = native.NativePopulation.train_pass

    def train_pass(self, p):
        original(self, p)
        if p == 1:
            ctx.stop.set()

    monkeypatch.setattr(native.NativePopulation, "train_pass", train_pass)
    with pytest.raises(Stopped):
        train_configurations_on_threads(jobs, SEEDS, ctx, workers=2)
    assert not list((tmp_path / "runs").rglob("*.json"))
    states = sorted((tmp_path / "state").rglob("*.pt"))
    assert len(states) == len(jobs)
    assert {load_state(p)["passes_done"] for p in states} == {1}
