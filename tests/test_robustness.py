"""Interrupted runs lose nothing; divergent members are marked and do not stop the others."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import repro.engines.population
from repro.cli import main
from repro.config import Config
from repro.jobs.ladder import PlannedConfig, Rung
from repro.jobs.runner import RunContext, train_configuration

from .conftest import data_dir, interruptible

ABLATE = ["ablate", "--rungs", "baseline,relu,adamw", "--passes", "1", "--seeds", "2", "--device", "cpu"]


def _start(results: Path) -> subprocess.Popen:
    env = {**os.environ, "REPRO_DATA_DIR": str(data_dir()), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "repro.cli", *ABLATE, "--results-dir", str(results)],
                            preexec_fn=interruptible,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _records(results: Path) -> list[Path]:
    return sorted((results / "runs" / "usps").glob("*.json"))


def _complete_labels(results: Path) -> set[str]:
    """Configurations with a record for each of their 2 seeds (side by side, several finish at once)."""
    seeds: dict[str, set[int]] = {}
    for path in _records(results):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):  # being written this moment
            continue
        seeds.setdefault(record["label"], set()).add(record["seed"])
    return {label for label, s in seeds.items() if len(s) == 2}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_ablate_keeps_finished_records_and_resumes(tmp_path, sig):
    procs = []
    try:
        _interrupt_and_resume(tmp_path, sig, procs)
    finally:
        for p in procs:  # never leave a training process behind when an assertion fails
            if p.poll() is None:
                p.kill()


def _interrupt_and_resume(tmp_path, sig, procs):
    proc = _start(tmp_path)
    procs.append(proc)
    deadline = time.time() + 120
    while not _complete_labels(tmp_path) and time.time() < deadline:  # a configuration is done
        time.sleep(0.005)  # a configuration here takes about 0.2 s: signal well inside the next
    assert proc.poll() is None, "the job finished before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    first, complete = _records(tmp_path), _complete_labels(tmp_path)
    assert complete and 2 <= len(first) < 6
    for path in first:
        json.loads(path.read_text())  # every record left behind is whole
    assert not list((tmp_path / "runs").glob("*/*.tmp*"))  # a killed rename leaves only hidden .tmp files, if any
    mtimes = {p: p.stat().st_mtime_ns for p in first}
    # running the same command again finishes only what is missing
    proc = _start(tmp_path)
    procs.append(proc)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    for label in complete:  # finished configurations are not trained again
        assert f"[usps | {label} " not in out
    assert len(_records(tmp_path)) == 6
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())


def test_stale_temporary_files_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_DATA_DIR", str(data_dir()))
    stale = tmp_path / "runs" / "usps" / ".baseline-x-s000.json.abc.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"half": ')
    old = time.time() - 3600
    os.utime(stale, (old, old))
    r = CliRunner().invoke(main, ["train", "--seeds", "1", "--passes", "1", "--device", "cpu", "--results-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert not stale.exists() and "interrupted run" in r.output


def test_divergent_run_is_marked_and_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_DATA_DIR", str(data_dir()))
    r = CliRunner().invoke(main, ["train", "--seeds", "2", "--passes", "2", "--device", "cpu", "--results-dir", str(tmp_path),
                                  "--set", "hidden_activation=relu", "--set", "lr=1e20"])
    assert r.exit_code == 0, r.output
    assert "(2 diverged)" in r.output
    recs = [json.loads(p.read_text()) for p in _records(tmp_path)]
    assert [rec["diverged_at_pass"] for rec in recs] == [1, 1]
    assert all(rec["test_error"] == [] for rec in recs)
    r = CliRunner().invoke(main, ["report", "--results-dir", str(tmp_path), "--no-figures"])
    assert r.exit_code == 0, r.output
    assert "2 diverged" in (tmp_path / "report" / "report.md").read_text()


def test_one_divergent_member_does_not_stop_the_others(tmp_path, usps, monkeypatch):
    class BrokenFirstMember(repro.engines.population.Population):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.params.views["W3"][0].fill_(float("inf"))

    monkeypatch.setattr(repro.engines.population, "population_class", lambda architecture: BrokenFirstMember)
    small = type(usps)(usps.name, usps.x_train[:300], usps.y_train[:300], usps.x_test[:200], usps.y_test[:200], usps.fingerprint)
    planned = PlannedConfig("baseline", Rung(0, "baseline", "t", "r", "s"), Config(passes=2))
    paths = train_configuration(planned, small, [0, 1], RunContext(tmp_path, engine="population"))
    a, b = (json.loads(p.read_text()) for p in paths)
    assert a["diverged_at_pass"] == 1 and a["test_error"] == []
    assert b["diverged_at_pass"] is None and len(b["test_error"]) == 2
    assert not (tmp_path / "checkpoints" / "usps" / paths[0].name.replace(".json", ".pt")).exists()


def test_the_reference_engine_trains_on_the_jobs_device(tmp_path, usps, monkeypatch):
    """It used to call train_reference without the device: `--engine reference --device cuda` trained on the
    CPU while its record said cuda."""
    import repro.jobs.runner as runner

    seen = []
    real = runner.train_reference

    def spy(*args, **kwargs):
        seen.append(kwargs.get("device"))
        return real(*args, **{**kwargs, "device": "cpu"})  # run it here whatever was asked

    monkeypatch.setattr(runner, "train_reference", spy)
    small = type(usps)(usps.name, usps.x_train[:50], usps.y_train[:50], usps.x_test[:50], usps.y_test[:50], usps.fingerprint)
    planned = PlannedConfig("baseline", Rung(0, "baseline", "t", "r", "s"), Config(passes=1))
    marker = torch.device("meta")  # a device no engine would pick by itself
    train_configuration(planned, small, [0], RunContext(tmp_path, device=marker, engine="reference"))
    assert seen == [marker]


def test_every_engine_decides_divergence_by_the_same_rule():
    """A non-finite test loss with a finite training loss is a divergence (the reference path used to look at
    the training loss only)."""
    from repro.jobs.runner import MemberHistory, is_divergent

    assert is_divergent(0.1, float("nan")) and is_divergent(float("inf"), 0.1) and not is_divergent(0.1, 0.2)
    h = MemberHistory()
    h.add(0, 0.1, 0.05, 0.2, 0.06)
    h.add(1, 0.1, 0.05, float("nan"), 0.06)
    assert h.diverged_at == 2 and h.values["test_loss"] == [0.2]
