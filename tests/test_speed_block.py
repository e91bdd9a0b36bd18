"""The README's speed block is generated from a bench file: every figure in it is read from the file."""

import json

from repro.report.speed import speed_block


def test_the_speed_block_reads_every_figure_from_the_bench_file(tmp_path):
    bench = {
        "device": "cpu (Some CPU; x86_64 AVX2 FMA; 2 threads)", "reference_steps_per_s": 400.0,
        "reference_measurements": [380.0, 400.0, 390.0],
        "engines": {"population": {"populations": [{"members": 1, "steps_per_s": 1200.0, "ratio": 3.0}],
                                   "single_run_s": 95.0},
                    "native": {"populations": [{"members": 1, "steps_per_s": 12000.0, "ratio": 30.0,
                                                "x_population": 10.0}], "single_run_s": 5.5}},
        "rungs": {"baseline": {"engine": "native", "steps_per_s": 456000.0, "eval_s_per_pass": 0.12,
                               "seconds_per_dataset": 1.0, "of_peak": 0.5, "eval_of_peak": 0.71, "side_by_side": 2}},
        "multiply_add_peak": {"member_steps_per_s": 912000.0, "how": "stated"},
        "ablate_all": {"engine": "auto", "seconds": 180.0, "estimated": False, "presentations": 50862016},
        "cluster_vs_default": {"cluster": "local:2", "rungs": ["baseline", "relu"], "datasets": ["usps", "mnist16"],
                               "seeds": 16, "default_s": [210.0, 200.0], "cluster_s": [231.0, 220.0],
                               "records_equal": True},
    }
    bench["engines"]["generic"] = {"populations": [{"members": 16, "steps_per_s": 30000.0, "ratio": 75.0,
                                                    "x_population": 25.0, "compile_s": 4.4,
                                                    "side_by_side_steps_per_s": 21400.0}], "single_run_s": 25.0}
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps(bench))
    text = speed_block(path)
    for figure in ("400 steps/s", "1,200 (3x)", "12,000 (30x; 10.0x population)", "5.5 s", "456,000", "0.12",
                   "50%", "71%", "912,000", "180 s (3.0 min), measured end to end", "Some CPU", "times 2 threads",
                   "the fastest of 3 measurements", "by 4.4 s at 16 members", "21,400 member-steps/s at 16 members",
                   "220 s against the default runner's 200 s (x1.10)", "best of 2 each", "records equal"):
        assert figure in text, figure
    assert "evaluation, of peak" in text
    del bench["rungs"]["baseline"]["eval_of_peak"]  # a bench file made before evaluation's share was measured
    path.write_text(json.dumps(bench))
    assert "evaluation, of peak" not in speed_block(path) and "50%" in speed_block(path)
