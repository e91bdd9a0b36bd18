"""The command line through click's test runner."""

import json
import os

import pytest
import torch
from click.testing import CliRunner

from repro.cli import main

from .conftest import REPO, data_dir


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setenv("REPRO_DATA_DIR", str(data_dir()))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_info_prints_the_papers_counts(run):
    r = run("info")
    assert r.exit_code == 0
    total = [line for line in r.output.splitlines() if line.startswith("total")][0].split()
    assert total[1:] == ["1,256", "64,660", "9,760", "63,660"]


def test_data_summary(run):
    r = run("data")
    assert r.exit_code == 0, r.output
    assert "usps" in r.output and "mnist16" in r.output and "fingerprint" in r.output
    assert "1194" in r.output  # class counts of the usps training set


def test_data_offline_message(run, tmp_path, monkeypatch):
    import repro.data

    def offline(*a, **k):
        raise OSError("no network here")

    monkeypatch.setattr(repro.data, "_download", offline)
    r = run("data", "--dataset", "usps", "--data-dir", tmp_path)
    assert r.exit_code != 0
    assert "zip.train.gz" in r.output and "zip.test.gz" in r.output and str(tmp_path) in r.output


def test_train_writes_records_and_resumes(run, tmp_path):
    r = run("train", "--dataset", "usps", "--seeds", 2, "--passes", 1, "--results-dir", tmp_path, "--device", "cpu")
    assert r.exit_code == 0, r.output
    files = sorted((tmp_path / "runs" / "usps").glob("*.json"))
    assert len(files) == 2
    rec = json.loads(files[0].read_text())
    for key in ("config", "dataset_fingerprint", "rung", "seed", "passes", "train_error", "test_error",
                "train_loss", "test_loss", "wall_time_s", "device", "versions", "git_commit"):
        assert key in rec
    assert rec["rung"] == "baseline" and rec["passes"] == 1 and len(rec["test_error"]) == 1
    assert rec["device"].startswith("cpu")
    assert 0.05 < rec["test_error"][0] < 0.15
    assert (tmp_path / "checkpoints" / "usps").is_dir()
    mtimes = [f.stat().st_mtime_ns for f in files]
    r = run("train", "--dataset", "usps", "--seeds", 2, "--passes", 1, "--results-dir", tmp_path, "--device", "cpu")
    assert r.exit_code == 0 and "pass 1/1" not in r.output  # nothing redone
    assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_train_reference_engine_equals_population(run, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["train", "--seeds", 1, "--set", "passes=1", "--device", "cpu"]
    assert run(*common, "--results-dir", a, "--engine", "population").exit_code == 0
    assert run(*common, "--results-dir", b, "--engine", "reference").exit_code == 0
    ra = json.loads(next((a / "runs" / "usps").glob("*.json")).read_text())
    rb = json.loads(next((b / "runs" / "usps").glob("*.json")).read_text())
    assert ra["config"] == rb["config"]
    assert ra["test_loss"][0] == pytest.approx(rb["test_loss"][0], rel=1e-3)
    assert abs(ra["test_error"][0] - rb["test_error"][0]) <= 3 / 2007


def test_ablate_dry_run(run, tmp_path):
    r = run("ablate", "--all", "--dry-run", "--results-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "total: 224 runs: 0 done, 224 to do (50,862,016 presentations)" in r.output


def test_ablate_guesses_dry_run(run, tmp_path):
    faithful = str(REPO / "ablations" / "faithful")
    r = run("ablate", "--ladder-dir", faithful, "--mode", "guesses", "--on", "paper", "--rungs", "cyclic-h2,mu-0.005",
            "--dry-run", "--results-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "guess:paper+cyclic-h2" in r.output and "guess:paper+mu-0.005" in r.output
    assert "total: 48 runs: 0 done, 48 to do" in r.output
    r = run("ablate", "--ladder-dir", faithful, "--mode", "guesses", "--on", "nope", "--dry-run")
    assert r.exit_code != 0 and "unknown rung 'nope'" in r.output


def test_ablate_unknown_rung(run):
    r = run("ablate", "--rungs", "baseline,warp-drive", "--dry-run")
    assert r.exit_code != 0
    assert "warp-drive" in r.output and "relu" in r.output


def test_bad_set_value(run):
    r = run("info", "--set", "dropout=2")
    assert r.exit_code != 0 and "out of range" in r.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(run, tmp_path):
    r = run("train", "--device", "cuda", "--seeds", 1, "--passes", 1, "--results-dir", tmp_path)
    assert r.exit_code != 0 and "no CUDA device" in r.output


def test_device_auto_says_what_it_chose(run, tmp_path):
    r = run("train", "--device", "auto", "--seeds", 1, "--passes", 1, "--results-dir", tmp_path)
    assert r.exit_code == 0 and "--device auto: using" in r.output


def test_sweep_writes_record_and_plot(run, tmp_path):
    r = run("sweep", "--rung", "baseline", "--lrs", "0.01,0.03", "--seeds", 2, "--passes", 1, "--device", "cpu",
            "--results-dir", tmp_path)
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "sweeps" / "usps-baseline-lr.json").read_text())
    assert [p["lr"] for p in rec["points"]] == [0.01, 0.03] and rec["judged_on"] == "training-set error"
    assert all(len(p["train_error"]) == 2 for p in rec["points"])
    assert (tmp_path / "sweeps" / "usps-baseline-lr.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_refuses_the_interpreted_fused_engine(run):
    r = run("bench", "--device", "cpu", "--engines", "fused")
    assert r.exit_code != 0
    assert "Triton's interpreter" in r.output and "bench it on a GPU" in r.output


def test_seed_list_trains_exactly_those_seeds(run, tmp_path):
    peers = REPO / "ablations" / "peers"
    r = run("ablate", "--ladder-dir", peers, "--rungs", "peer-weights", "--dataset", "mnist16", "--seed-list", "1337",
            "--dry-run", "--results-dir", tmp_path)
    assert r.exit_code == 0, r.output
    (row,) = [line for line in r.output.splitlines() if line.startswith("mnist16")]
    assert row.split()[1:6] == ["peer-weights", "23", "0", "1", "1337"] and "repro2022" in row
    r = run("train", "--seed-list", "7,3", "--passes", 1, "--results-dir", tmp_path, "--device", "cpu")
    assert r.exit_code == 0, r.output
    seeds = sorted(json.loads(f.read_text())["seed"] for f in (tmp_path / "runs" / "usps").glob("*.json"))
    assert seeds == [3, 7]
    for bad in ("1,x", "2,2", "-1"):
        assert run("train", "--seed-list", bad, "--results-dir", tmp_path).exit_code != 0
