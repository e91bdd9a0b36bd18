"""The start-of-job estimate: on the native engine, the job's own configurations timed here and put on the
job's threads in the runner's order; else bench figures, used as they are when made on this CPU, scaled by a
couple of seconds of measurement here when made on another, and saying so."""

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
           "rungs": {"baseline": {"engine": "native", "steps_per_s": 2 * rate}}}  # what baseline_rate_here measures
    (folder / "bench" / "cpu.json").write_text(json.dumps(rec))


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_WORKSPACE", str(tmp_path))
    monkeypatch.setattr(plan, "STUDY_DIR", tmp_path / "no-study")
    return tmp_path


def test_figures_from_this_cpu_are_used_as_they_are(workspace, monkeypatch):
    _bench(workspace, device_description(CPU), 1000.0)
    monkeypatch.setattr(plan, "baseline_rate_here", lambda *a: pytest.fail("no scaling of this CPU's own figures"))
    t = plan.bench_throughput(CPU, "native")
    assert t.presentations_per_s == 1000.0 and "scaled" not in t.source


def test_figures_from_another_cpu_are_scaled_by_a_measurement_here(workspace, monkeypatch):
    _bench(workspace, "cpu (another CPU; x86_64 AVX2 FMA; 2 threads)", 1000.0)
    monkeypatch.setattr(plan, "baseline_rate_here", lambda engine, device: 3000.0)  # against the baseline's 2000
    t = plan.bench_throughput(CPU, "native")
    assert t.presentations_per_s == pytest.approx(1500.0)
    assert "another CPU" in t.source and "scaled by 1.50" in t.source
    unscaled = plan.bench_throughput(CPU, "native", scale_to_here=False)
    assert unscaled.presentations_per_s == 1000.0 and "not scaled to this CPU" in unscaled.source


def test_the_baseline_rate_is_measured_here():
    assert plan.baseline_rate_here("population", CPU, seconds=0.2) > 0


def test_the_estimate_check_sets_both_estimates_beside_the_measured_time(workspace, monkeypatch):
    from types import SimpleNamespace

    from repro.jobs import bench

    _bench(workspace, device_description(CPU), 1000.0)  # the bench file's figures, scaled by baseline_rate_here
    monkeypatch.setattr(plan, "baseline_rate_here", lambda engine, device: 3000.0)  # against the baseline's 2000
    job = SimpleNamespace(presentations_left=30_000, measured_estimate=lambda engine: (25.0, "timed here"))
    out = bench.estimate_check(CPU, job, lambda: 20.0, log=lambda line: None)
    assert out["measured_s"] == 20.0 and out["job"]["presentations"] == 30_000
    announced, scaled = out["estimates"]["announced"], out["estimates"]["bench file, scaled"]
    assert announced["seconds"] == 25.0 and announced["ratio"] == pytest.approx(1.25)
    assert announced["source"] == "timed here"
    assert scaled["seconds"] == pytest.approx(20.0) and scaled["ratio"] == pytest.approx(1.0)
    assert "scaled by 1.50" in scaled["source"]


# --- the estimate from the job's own configurations (plan.measured_estimate) -----------------------------

def _unit(passes: int = 2, optimizer: str = "sgd", members: int = 16,
          last_eval_images: int = 0) -> plan.EstimatedConfig:
    from repro.config import Config

    return plan.EstimatedConfig(Config(passes=passes, optimizer=optimizer), members, 1000, 1500, last_eval_images)


def test_a_configurations_time_is_its_training_and_evaluation():
    cost = {"steps_per_s": 4000.0, "eval_s_per_image": 0.001}
    # 2 passes x 16 members x 1000 images / 4000 = 8 s; (2 passes x 1500 + 500) images x 1 ms = 3.5 s
    assert plan.config_seconds(_unit(last_eval_images=500), cost) == pytest.approx(11.5)


def test_the_makespan_hands_each_task_to_the_first_worker_free():
    assert plan.makespan([5.0, 3.0, 3.0, 1.0], 2) == 6.0  # 5 | 3+3, then 1 on the first free: 5+1
    assert plan.makespan([5.0, 3.0, 3.0, 1.0], 1) == 12.0
    assert plan.makespan([1.0, 1.0, 8.0], 2) == 9.0  # in the order given, not the best order
    assert plan.makespan([], 2) == 0.0


def test_the_runner_order_is_the_longest_expected_first():
    short, long = _unit(passes=2), _unit(passes=5)
    adamw = _unit(passes=3, optimizer="adamw")  # expected 2x: 6 > 5
    assert plan.runner_order([short, long, adamw]) == [adamw, long, short]


def test_the_measured_estimate_times_each_configuration_once_side_by_side(monkeypatch):
    timed = []

    def cost(engine, cfg, members, n_train, device, threads):
        timed.append((cfg.passes, threads, torch.get_num_threads()))
        return {"steps_per_s": 1000.0 * cfg.passes, "eval_s_per_image": 0.0}  # each unit: 16 s

    monkeypatch.setattr(plan, "config_cost", cost)
    units = [_unit(passes=1), _unit(passes=1), _unit(passes=2), _unit(passes=4)]  # two of one configuration
    seconds, source = plan.measured_estimate(units, "native", CPU, workers=2)
    assert sorted(t[0] for t in timed) == [1, 2, 4]  # the same configuration is timed once
    assert all(threads == 1 and torch_threads == 1 for _, threads, torch_threads in timed)
    assert seconds == pytest.approx(32.0)  # 16 | 16, then 16 | 16
    assert "3 configurations" in source and "2 side by side" in source
    timed.clear()
    seconds, source = plan.measured_estimate(units, "native", CPU, workers=1)
    assert seconds == pytest.approx(64.0) and all(threads is None for _, threads, _ in timed)
    assert "one at a time" in source


def test_a_job_of_the_native_engine_is_timed_here_and_of_others_read_from_the_bench():
    assert plan.measures_here("native", CPU) and not plan.measures_here("population", CPU)


def test_a_job_is_timed_here_unless_the_bench_puts_it_under_half_a_minute(tmp_path, monkeypatch):
    from repro.jobs import job
    from repro.jobs.ladder import load_rungs
    from repro.jobs.ladder import plan as ladder_plan

    planned = ladder_plan(load_rungs(), only=["baseline"])  # 23 passes x 7,291 usps images x 16 seeds
    request = job.JobRequest(planned, ["usps"], list(range(16)), tmp_path, CPU)
    the_plan = job.plan_job(request, job.facts_without_data(["usps"]))
    if the_plan.entries[0].engine.name != "native":
        pytest.skip("the native engine cannot be built here")
    monkeypatch.setattr(job, "measured_estimate", lambda units, engine, device, workers: (42.0, "timed"))
    n = the_plan.presentations_left
    monkeypatch.setattr(job, "bench_throughput", lambda *a, **k: plan.Throughput(n / 20.0, "a bench file"))
    assert the_plan.estimate_lines() == [f"native on cpu: {n:,} presentations, ~0m20s (estimated from a bench file)"]
    monkeypatch.setattr(job, "bench_throughput", lambda *a, **k: plan.Throughput(n / 40.0, "a bench file"))
    assert the_plan.estimate_lines() == [f"native on cpu: {n:,} presentations, ~0m42s (estimated: timed)"]
    monkeypatch.setattr(job, "bench_throughput", lambda *a, **k: None)  # no bench figures: timed here
    assert the_plan.estimate_lines() == [f"native on cpu: {n:,} presentations, ~0m42s (estimated: timed)"]
