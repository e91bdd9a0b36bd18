"""`repro bench` writes the figures the speed issue asks for, with ratios measured in the same run."""

import json

import pytest
import torch

import repro.study.bench as bench


def test_bench_fields_and_ratios(usps, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "TARGET_SECONDS", 0.2)
    monkeypatch.setattr(bench, "single_run_seconds", lambda ds, device, engine="population": 12.5)
    monkeypatch.setattr(bench, "ablate_all_estimate", lambda ds, device, seeds, log: 999.0)
    small = type(usps)(usps.name, usps.x_train[:500], usps.y_train[:500], usps.x_test, usps.y_test, usps.fingerprint)
    result = bench.run_bench(small, torch.device("cpu"), populations=(1, 4), estimate=True, log=lambda m: None)
    paths = bench.write_bench(result, torch.device("cpu"), tmp_path)
    saved = json.loads(paths[0].read_text())
    for key in ("device", "reference_steps_per_s", "populations", "single_run_s", "ablate_all_s", "ablate_all_estimated"):
        assert key in saved
    assert saved["ablate_all_estimated"] is True and saved["ablate_all_s"] == 999.0
    assert [p["members"] for p in saved["populations"]] == [1, 4]
    for p in saved["populations"]:
        assert p["steps_per_s"] > 0
        assert abs(p["ratio"] - p["steps_per_s"] / saved["reference_steps_per_s"]) < 1e-9
    # the engine beats the plain loop even at one member, and more members give more throughput
    assert saved["populations"][0]["ratio"] > 1
    assert saved["populations"][1]["steps_per_s"] > saved["populations"][0]["steps_per_s"]
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fused_ablate_estimate_follows_the_populations_that_stay_active(usps, monkeypatch):
    """The fused projection: a stretch of passes per set of still-active populations (23 passes of all 14,
    then 57 of the two 80-pass ones), each priced by a measured group step (stubbed here)."""
    seen = []
    monkeypatch.setattr(bench, "group_step_seconds", lambda configs, ds, seeds, device: seen.append(len(configs)) or 1e-5)
    monkeypatch.setattr(bench, "eval_seconds", lambda cfg, ds, seeds, device: 0.0)
    total = bench.ablate_all_estimate_fused(usps, torch.device("cpu"), 16, log=lambda m: None)
    assert seen == [14, 2]
    assert total == pytest.approx((23 + 57) * len(usps.y_train) * 1e-5)
