"""The results store under faults: bad folders fail before training, damaged records are set aside and
retrained, two processes on one folder never train the same run, an interruption loses at most one pass."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import data_dir, interruptible

QUICK = ["--seeds", "2", "--passes", "1", "--device", "cpu"]
VOLATILE = ("wall_time_s", "created", "git_commit", "population_members", "device")  # not numbers of the run


def _cli(*args, results=None, timeout=600, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "REPRO_DATA_DIR": str(data_dir()), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "repro.cli", *args] + (["--results-dir", str(results)] if results else [])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _records(results: Path) -> list[Path]:
    return sorted((results / "runs").glob("*/*.json"))


def _numbers(path: Path) -> dict:
    rec = json.loads(path.read_text())
    return {k: v for k, v in rec.items() if k not in VOLATILE}


def test_a_damaged_record_is_set_aside_and_its_run_trained_again(tmp_path):
    _cli("train", *QUICK, results=tmp_path)
    first, second = _records(tmp_path)
    whole = second.read_text()
    second.write_text(whole[:700])  # truncated, as by a full disk
    done = _cli("train", *QUICK, results=tmp_path)
    out = done.stdout + done.stderr
    assert "damaged record" in out and second.name in out and "trained again" in out
    assert "Traceback" not in out
    assert json.loads(second.read_text())["seed"] == 1  # whole again
    assert _numbers(second) == {k: v for k, v in json.loads(whole).items() if k not in VOLATILE}
    aside = list((tmp_path / "damaged").glob("*/*.json"))
    assert len(aside) == 1 and aside[0].read_text() == whole[:700]


@pytest.mark.parametrize("problem", ["parent is a file", "cannot be made"])
def test_an_unusable_results_folder_fails_before_training(tmp_path, problem):
    if problem == "parent is a file":
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "results"
    else:
        target = Path("/proc/repro-cannot-exist/results")  # /proc refuses new folders, even to root
    done = _cli("train", *QUICK, results=target, check=False)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert str(target) in out and "Traceback" not in out
    assert "pass 1/1" not in out  # nothing trained
    assert len(out.strip().splitlines()) <= 3


def test_report_on_a_folder_that_does_not_exist_is_an_error(tmp_path):
    done = _cli("report", "--no-figures", results=tmp_path / "typo", check=False)
    assert done.returncode != 0 and "does not exist" in done.stdout + done.stderr
    assert not (tmp_path / "typo").exists()


def test_two_processes_on_one_folder_never_train_the_same_run(tmp_path):
    env = {**os.environ, "REPRO_DATA_DIR": str(data_dir()), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "repro.cli", "ablate", "--rungs", "baseline,relu,adamw", *QUICK,
           "--results-dir", str(tmp_path)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert len(_records(tmp_path)) == 6
    trained = [line.split("]")[0] for out in outs for line in out.splitlines() if "pass 1/1" in line]
    seeds_trained = sum(int(t.split("|")[2].split()[0]) for t in trained)
    assert seeds_trained == 6, outs  # every run trained exactly once, by one of the two


def test_an_interrupted_configuration_resumes_bit_for_bit(tmp_path):
    """SIGINT in pass 2 of 3 (sent as soon as pass 1's state is on disk: a pass of this run takes about 0.1 s
    on the native engine, so no fixed wait can land inside one): the rerun continues from pass 2 and writes the
    records of an uninterrupted run (every number equal; only wall time and provenance differ)."""
    args = ["ablate", "--rungs", "dropout", "--seeds", "2", "--passes", "3", "--device", "cpu"]
    straight = tmp_path / "straight"
    _cli(*args, results=straight)
    broken = tmp_path / "broken"
    env = {**os.environ, "REPRO_DATA_DIR": str(data_dir()), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "repro.cli", *args, "--results-dir", str(broken)], env=env,
                            preexec_fn=interruptible,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 300
        while not list((broken / "state").glob("*/*.pt")) and time.time() < deadline:
            time.sleep(0.002)
        assert proc.poll() is None, "finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted" in out and "again to resume" in out and "Traceback" not in out
    assert not _records(broken)
    done = _cli(*args, results=broken)
    assert "resuming after pass" in done.stdout + done.stderr
    got, want = _records(broken), _records(straight)
    assert [p.name for p in got] == [p.name for p in want]
    for a, b in zip(got, want):
        assert _numbers(a) == _numbers(b), a.name
    assert not list((broken / "state").glob("*/*.pt"))  # a finished configuration leaves no state behind


@pytest.mark.parametrize("engine", ["native", "population"])
def test_a_members_record_is_the_same_alone_and_in_a_group_of_four(tmp_path, usps, engine):
    """Every recorded number of seed 2, trained alone and with seeds 0-3 (so resumed or split runs write the
    records of one process)."""
    import torch

    from repro.engines import registry
    from repro.jobs.ladder import load_rungs, plan
    from repro.jobs.runner import RunContext, train_configuration

    if why := registry.get(engine).available("cpu"):
        pytest.fail(f"the {engine} engine must run in CI: {why}")
    small = type(usps)(usps.name, usps.x_train[:400], usps.y_train[:400], usps.x_test[:300], usps.y_test[:300],
                       usps.fingerprint)
    (planned,) = [p for p in plan(load_rungs()) if p.label == "dropout"]
    planned = type(planned)(planned.label, planned.rung, planned.config.replace(passes=2))
    records = {}
    for name, seeds, threads in (("alone", [2], 1), ("group", [0, 1, 2, 3], 2)):
        torch.set_num_threads(threads)
        (path,) = [p for p in train_configuration(planned, small, seeds, RunContext(tmp_path / name, engine=engine))
                   if p.name.endswith("s002.json")]
        records[name] = _numbers(path)
    torch.set_num_threads(2)
    assert records["alone"] == records["group"]
