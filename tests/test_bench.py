"""`repro bench` writes the figures the speed issue asks for, every engine with ratios measured in the same run.
Which engine is faster is what `repro bench` measures; no test asserts it (a loaded machine would fail it)."""

import json

import torch

import repro.jobs.bench as bench


def test_bench_fields_and_ratios(usps, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "TARGET_SECONDS", 0.2)
    monkeypatch.setattr(bench, "single_run_seconds", lambda engine, ds, device: 12.5)
    rungs = {"baseline": {"engine": "native", "steps_per_s": 2.0e5, "eval_s_per_pass": 0.1, "seconds_per_dataset": 300.0},
             "long": {"engine": "native", "steps_per_s": 1.0e5, "eval_s_per_pass": 0.1, "seconds_per_dataset": 199.5}}
    monkeypatch.setattr(bench, "rung_figures", lambda engine, ds, device, seeds, log: {k: dict(v) for k, v in rungs.items()})
    small = type(usps)(usps.name, usps.x_train[:500], usps.y_train[:500], usps.x_test, usps.y_test, usps.fingerprint)
    result = bench.run_bench(small, torch.device("cpu"), ["population", "native"], populations=(1, 8),
                             log=lambda m: None)
    paths = bench.write_bench(result, torch.device("cpu"), tmp_path)
    saved = json.loads(paths[0].read_text())
    for key in ("device", "reference_steps_per_s", "engines", "ablate_all", "threads", "rungs", "multiply_add_peak"):
        assert key in saved
    peak = saved["multiply_add_peak"]
    if peak is not None:  # where /proc/cpuinfo gives a clock
        assert peak["member_steps_per_s"] == peak["lanes"] * 2 * peak["clock_ghz"] * 1e9 * peak["cores"] / 171_780
        assert saved["rungs"]["long"]["of_peak"] == 1.0e5 / peak["member_steps_per_s"]
        # one evaluation: 16 members x (500 training + 2,007 test digits) x 63,660 multiply-adds, in 0.1 s
        peak_macs = peak["member_steps_per_s"] * 171_780
        assert abs(saved["rungs"]["long"]["eval_of_peak"] - 16 * 2_507 * 63_660 / 0.1 / peak_macs) < 1e-12
    assert saved["ablate_all"]["estimated"] is True and saved["ablate_all"]["seconds"] == 999.0
    assert saved["ablate_all"]["presentations"] == 2 * (6 * 23 + 80) * 500 * 16
    for engine in ("population", "native"):
        rows = saved["engines"][engine]["populations"]
        assert [p["members"] for p in rows] == [1, 8]
        for p in rows:
            assert p["steps_per_s"] > 0
            assert abs(p["ratio"] - p["steps_per_s"] / saved["reference_steps_per_s"]) < 1e-9
    # the reference loop before the first engine and after each; the ratios against the fastest
    assert len(saved["reference_measurements"]) == 3
    assert saved["reference_steps_per_s"] == max(saved["reference_measurements"])
    for p, base in zip(saved["engines"]["native"]["populations"], saved["engines"]["population"]["populations"]):
        assert abs(p["x_population"] - p["steps_per_s"] / base["steps_per_s"]) < 1e-9
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_usable_engines_on_cpu_leave_out_the_interpreted_kernel():
    names = bench.usable_engines(torch.device("cpu"))
    assert "population" in names and "fused" not in names and "reference" not in names


def test_a_training_step_has_the_multiply_adds_of_the_paper_s_connections():
    # forward 63,660 (connections less biases), weight gradients as many, deltas of H2, H3 and out
    assert bench.forward_macs() == 63_660
    assert bench.macs_per_member_step() == 2 * 63_660 + 38_400 + 5_760 + 300


def test_a_run_s_rate_weighs_its_dearer_first_steps_by_their_number(usps, monkeypatch):
    from repro.config import Config
    asked = []

    def rate(engine, cfg, ds, members, device, seconds, threads, after_steps=0):
        asked.append(after_steps)
        return 100.0 if after_steps == 0 else 400.0

    monkeypatch.setattr(bench, "engine_rate", rate)
    monkeypatch.setattr(bench, "settled_from_step", lambda engine, cfg, ds, device: 1_001)
    small = type(usps)(usps.name, usps.x_train[:500], usps.y_train[:500], usps.x_test, usps.y_test, usps.fingerprint)
    got = bench.run_rate("native", Config(passes=4), small, 16, torch.device("cpu"), 1.0, 1)
    assert asked == [0, 1_000]  # the second pass is timed as if 1,000 steps had come before
    # 2,000 steps a member: 1,000 at 100/s (10 s) and 1,000 at 400/s (2.5 s)
    assert got == {"steps_per_s": 2_000 / 12.5, "first_steps_per_s": 100.0, "settled_steps_per_s": 400.0,
                   "settled_from_step": 1_001}
    monkeypatch.setattr(bench, "settled_from_step", lambda engine, cfg, ds, device: 5_000)  # after the run's end
    assert bench.run_rate("native", Config(passes=4), small, 16, torch.device("cpu"), 1.0, 1) == {"steps_per_s": 100.0}
