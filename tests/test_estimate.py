"""The start-of-job estimate: bench figures made on this CPU are used as they are; figures made on another
CPU are scaled by a couple of seconds of measurement here, and say so."""

from __future__ import annotations

import json

import pytest
import torch

from repro.jobs import plan
from repro.jobs.store import device_description

CPU = torch.device("cpu")


def _bench(folder, device: str, rate: float) -> None:
    (folder / "bench").mkdir(parents=True)
    rec = {"device": device, "engines": {"native": {"populations": [{"members": 16, "steps_per_s": rate}]}},
           "rungs": {"baseline": {"engine": "native", "steps_per_s": 2 * rate}}}  # what calibration_rate measures
    (folder / "bench" / "cpu.json").write_text(json.dumps(rec))


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_WORKSPACE", str(tmp_path))
    monkeypatch.setattr(plan, "STUDY_DIR", tmp_path / "no-study")
    return tmp_path


def test_figures_from_this_cpu_are_used_as_they_are(workspace, monkeypatch):
    _bench(workspace, device_description(CPU), 1000.0)
    monkeypatch.setattr(plan, "calibration_rate", lambda *a: pytest.fail("no calibration for this CPU's own figures"))
    t = plan.bench_throughput(CPU, "native")
    assert t.presentations_per_s == 1000.0 and "scaled" not in t.source


def test_figures_from_another_cpu_are_scaled_by_a_measurement_here(workspace, monkeypatch):
    _bench(workspace, "cpu (another CPU; x86_64 AVX2 FMA; 2 threads)", 1000.0)
    monkeypatch.setattr(plan, "calibration_rate", lambda engine, device: 3000.0)  # against the baseline's 2000
    t = plan.bench_throughput(CPU, "native")
    assert t.presentations_per_s == pytest.approx(1500.0)
    assert "another CPU" in t.source and "scaled by 1.50" in t.source
    unscaled = plan.bench_throughput(CPU, "native", calibrate=False)
    assert unscaled.presentations_per_s == 1000.0 and "not calibrated" in unscaled.source


def test_the_calibration_measures_the_engine_here():
    assert plan.calibration_rate("population", CPU, seconds=0.2) > 0


def test_the_estimate_check_sets_both_estimates_beside_the_measured_time(workspace, monkeypatch):
    from repro.jobs import bench

    _bench(workspace, device_description(CPU), 1000.0)  # made on this CPU: announced as it is
    monkeypatch.setattr(plan, "calibration_rate", lambda engine, device: 3000.0)  # against the baseline's 2000
    out = bench.estimate_check(CPU, 30_000, lambda: 20.0, log=lambda line: None)
    assert out["measured_s"] == 20.0 and out["job"]["presentations"] == 30_000
    announced, calibrated = out["estimates"]["announced"], out["estimates"]["calibrated"]
    assert announced["seconds"] == pytest.approx(30.0) and announced["ratio"] == pytest.approx(1.5)
    assert calibrated["seconds"] == pytest.approx(20.0) and calibrated["ratio"] == pytest.approx(1.0)
    assert "scaled by 1.50" in calibrated["source"] and "scaled" not in announced["source"]
