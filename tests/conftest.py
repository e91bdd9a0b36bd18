"""Shared fixtures, constants and the test tiers. Data comes from $REPRO_DATA_DIR, else ../shared/data beside
the checkout; missing data is a test failure (CI must have it), never a skip.

Tiers: `pytest` runs the fast tier (pyproject.toml's addopts deselect `slow`); `pytest -m slow` runs the rest.
What is slow is listed here, in SLOW, and nowhere else (a test file may still mark a test itself).
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    # The fused engine's Triton kernel runs on CPU only in Triton's interpreter, which has to be chosen before
    # anything imports Triton (torch.optim does, lazily). Harmless when Triton is not installed.
    os.environ.setdefault("TRITON_INTERPRET", "1")

from repro.config import Config  # noqa: E402  (after TRITON_INTERPRET is chosen)
from repro.engines.reference import train_reference  # noqa: E402
from repro.jobs.ladder import extra_rungs, load_rungs, plan  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# The engines against the reference loop (test_engine, test_native, test_fused): 2 passes of 150 patterns =
# 300 steps, so pass boundaries (new draws, lr schedule) are crossed.
N_SUBSET = 150
N_SUBSET_INTERPRETED = 60  # the same for the fused kernel in Triton's CPU interpreter (~10 ms a step)
PASSES = 2
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]


def ladder_configs() -> dict[str, Config]:
    """Every rung of the ladder and its extras, cut to PASSES passes, by label."""
    rungs = load_rungs()
    planned = plan(rungs, "cumulative", [r.name for r in rungs + extra_rungs()], extra_rungs())
    return {p.label: p.config.replace(passes=PASSES) for p in planned}


CONFIGS = ladder_configs()

# The slow tier, entry -> why it is slow. An entry is a test file, a test function (file::name, every
# parametrization) or a node id with parameters, where `*` stands for any text. The fast tier keeps, for every
# rung, the population and native engines against the reference loop (test_engine, test_native), options
# outside the ladder, fc40, SDLM, the invariances (neighbours, threads, determinism, resume) and one fused
# kernel case (test_fused's target-1.2 on CPU); everything listed here runs in `pytest -m slow` (CI runs both).
SLOW: dict[str, str] = {
    "tests/test_bench.py": "times every engine for a fixed time per population size",
    "tests/test_committed_retrain.py": "retrains committed seeds over all their passes",
    "tests/test_committed_report.py": "regenerates the committed study's report, figures included",
    "tests/test_regression.py": "16 seeds of every rung over 2 passes of the whole training set",
    "tests/test_workspace.py": "a clone of the checkout and several `repro` processes",
    **{f"tests/test_cluster.py::{name}": "a Dask scheduler and workers, each its own process" for name in (
        "test_ablate_on_a_cluster_writes_the_records_of_a_local_run", "test_a_killed_workers_unit_runs_again_elsewhere",
        "test_a_killed_client_resumes", "test_a_worker_running_other_code_is_refused_and_named")},
    "tests/test_robustness.py::test_killed_ablate_keeps_finished_records_and_resumes": "a process killed and rerun",
    "tests/test_store_faults.py::test_a_damaged_record_is_set_aside_and_its_run_trained_again": "`repro` processes",
    "tests/test_store_faults.py::test_two_processes_on_one_folder_never_train_the_same_run": "`repro` processes",
    "tests/test_store_faults.py::test_an_interrupted_configuration_resumes_bit_for_bit": "a process interrupted and rerun",
    "tests/test_attribution.py::test_report_writes_the_attribution_files": "a factorial's report with figures",
    "tests/test_attribution.py::test_report_without_a_complete_factorial": "a report with figures",
    "tests/test_cli.py::test_sweep_writes_record_and_plot": "a sweep of several trainings and its plot",
    "tests/test_cli.py::test_train_reference_engine_equals_population": "the reference loop over a whole pass",
    "tests/test_robustness.py::test_one_divergent_member_does_not_stop_the_others":
        "whole passes (the fast tier checks divergence on small populations: test_engine, test_native)",
    "tests/test_attribution.py::test_stable_game_intervals_cover_when_our_records_are_resampled": "resampling",
    "tests/test_attribution.py::test_stable_game_intervals_cover_at_the_seed_count_on_synthetic_runs":
        "1,200 synthetic factorials",
    "tests/test_attribution.py::test_collapse_game_intervals_cover_at_the_committed_collapse_rates": "resampling",
    "tests/test_report.py::test_report_is_deterministic_and_writes_valid_pngs": "draws every figure twice",
    "tests/test_page.py": "builds the page from the committed study and reads it in a headless Chromium",
    "tests/test_tutorial.py": "the README's tutorial: a rung with code trained through autograd, then a report",
    "tests/test_check.py::test_report_check_on_the_command_line": "a `repro report --check` process",
    "tests/test_download.py": "HTTP servers on the loopback address, files fetched and checked",
    "tests/test_generic.py::test_member_matches_reference_loop": "autograd against the reference loop per option",
    "tests/test_generic.py::test_relu_member_matches_reference_loop_on_one_short_pass": "autograd, the reference loop",
    "tests/test_report.py::test_tie_rule_table_scores_collapsed_checkpoints_as_their_records":
        "the plain forward of 15 checkpoints over both splits",
    "tests/test_peers.py::test_committed_checkpoints_scored_by_argmax_never_count_more_errors_than_the_tie_rule":
        "the plain forward of 128 checkpoints over both splits",
    "tests/test_report.py::test_workspace_report_agrees_with_the_committed_study": "a report with figures",
    "tests/test_robustness.py::test_divergent_run_is_marked_and_reported": "a diverging run and its report",
    "tests/test_store_faults.py::test_report_on_a_folder_that_does_not_exist_is_an_error": "`repro` processes",
    "tests/test_store_faults.py::test_an_unusable_results_folder_fails_before_training": "`repro` processes",
    # SDLM stays in the fast tier through two of these, test_native's options and fc40, test_state and test_fused.
    "tests/test_sdlm.py::test_member_trained_with_sdlm_matches_reference_loop[tanh_mse]": "the reference loop",
    "tests/test_sdlm.py::test_member_trained_with_sdlm_matches_reference_loop[cyclic+gamma]": "the reference loop",
    "tests/test_sdlm.py::test_member_trained_with_sdlm_matches_reference_loop[relu+softmax_ce+linear]":
        "the reference loop",
    # The autograd engine: test_generic checks it against the reference loop; the per-rung runs are slow ones.
    "tests/test_engine.py::test_member_in_population_matches_reference_loop[*-cpu-generic]": "autograd per rung",
    # In float64 (a reference run of its own per rung): the fast tier keeps `baseline`, `relu`, `long` (every
    # mechanism of the ladder at once) and the extras on `population`; the rungs between them run here.
    **{f"tests/test_engine.py::test_member_in_population_matches_reference_loop[{rung}-cpu-population]":
       "a float64 reference run per rung" for rung in ("adamw", "lr-decay", "dropout", "shift")},
    "tests/test_engine.py::test_member_in_population_matches_reference_loop[*-cpu-generic-eager]":
        "autograd per rung, uncompiled",
    "tests/test_generic.py::test_a_member_with_code_does_not_depend_on_its_neighbours": "autograd, whole passes",
    # One build (the machine's own, 16 lanes) stays in the fast tier.
    **{f"tests/test_native_builds.py::test_every_configuration_is_the_same_bits_under_every_build[{build}]":
       "compiles the kernel again and trains every configuration" for build in
       ("znver3-*", "x86-64-v4-*", "native-8lanes")},
    # The controls of ablations/extra/ (ReLU + SGD at small rates) combine options every ladder rung already checks.
    "tests/test_engine.py::*[*-sgd-3e-*]": "the ladder's options again, at other learning rates",
    "tests/test_native.py::*[*-sgd-3e-*]": "the ladder's options again, at other learning rates",
    "tests/test_native_arm64.py": "cross-builds the kernel for ARM64 and runs it under qemu; every float input",
    "tests/test_packaging.py::test_the_wheel_holds_every_subpackage_the_kernel_the_rungs_and_the_summary":
        "builds and installs a wheel",
    # The fused kernel runs on CPU only in Triton's interpreter (~10 ms a step): one case stays in the fast tier.
    "tests/test_engine.py::test_member_in_population_matches_reference_loop[*-cpu-fused]": "Triton's interpreter",
    "tests/test_fused.py::test_faithful_ladder_matches_reference_loop[fc40-cpu]": "Triton's interpreter",
    **{f"tests/test_fused.py::{name}": "Triton's interpreter (or its compiler)" for name in (
        "test_fused_options_outside_the_ladder", "test_padding_stays_zero_and_layout_round_trips",
        "test_fused_member_does_not_depend_on_its_neighbours",
        "test_runner_records_the_engine_and_falls_back_where_fused_cannot_run",
        "test_fused_and_population_engines_agree_on_a_population", "test_kernel_compiles_for_the_gpu_without_one",
        "test_the_kernels_arguments_are_what_kernel_check_compiles_for",
        "test_a_group_of_configs_and_datasets_trains_each_as_alone",
        "test_run_together_writes_the_records_of_one_by_one_runs",
        "test_the_benchs_timed_pass_draws_once_and_times_the_kernel", "test_state_dict_continues_bit_for_bit")},
}
# The tests whose outcome torch's, MKL's, oneDNN's or numpy's kernels could change: float32 engines against the
# float32 reference loop, members against their neighbours and threads, the committed report's bytes. They run once
# more on the plainer code path this CPU can run (tests/test_cpu_paths.py: the fast ones in the fast tier, the
# committed report in the slow tier). Not the float64 comparisons (FLOAT64_TOLERANCE): their rounding, ~1e-16 a
# step on any path, is 10^8 below their tolerance. The same entry syntax as SLOW.
CPU_SENSITIVE: tuple[str, ...] = (
    "tests/test_engine.py::test_member_in_population_matches_reference_loop[*-native]",
    "tests/test_engine.py::test_member_in_population_matches_reference_loop[*-fused]",
    "tests/test_engine.py::test_a_member_does_not_depend_on_its_neighbours", "tests/test_evaluation.py",
    "tests/test_sdlm.py::test_member_trained_with_sdlm_matches_reference_loop",
    "tests/test_native.py::test_member_matches_reference_loop", "tests/test_native.py::test_options_outside_*",
    "tests/test_native.py::test_a_member_does_not_depend_on_its_neighbours_lane_group_or_threads",
    "tests/test_fused.py::test_faithful_ladder_matches_reference_loop", "tests/test_committed_report.py",
    "tests/test_data.py::test_mnist16_tensors_sha256", "tests/test_data.py::test_mnist_resize_*",
    "tests/test_cpu_paths.py::test_the_child_runs_on_the_path_it_was_given",
)


def _patterns(entries) -> list[re.Pattern]:
    return [re.compile(".*".join(map(re.escape, entry.split("*")))) for entry in entries]


_SLOW_PATTERNS, _CPU_SENSITIVE_PATTERNS = _patterns(SLOW), _patterns(CPU_SENSITIVE)


def _listed(patterns, path: str, name: str, originalname: str) -> bool:
    return any(p.fullmatch(path) or p.fullmatch(f"{path}::{originalname}") or p.fullmatch(f"{path}::{name}")
               for p in patterns)


def is_slow(path: str, name: str, originalname: str) -> bool:
    """Whether SLOW lists the test `name` (node name with parameters) of the file `path` (relative to the repo)."""
    return _listed(_SLOW_PATTERNS, path, name, originalname)


@pytest.hookimpl(tryfirst=True)  # before pytest's `-m` selection reads the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).relative_to(REPO).as_posix()
        if is_slow(path, item.name, item.originalname):
            item.add_marker(pytest.mark.slow)
        if _listed(_CPU_SENSITIVE_PATTERNS, path, item.name, item.originalname):
            item.add_marker(pytest.mark.cpu_sensitive)


def data_dir() -> Path:
    env = os.environ.get("REPRO_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def usps():
    from repro.data import load_dataset

    return load_dataset("usps", data_dir(), download=False)


@pytest.fixture(scope="session")
def mnist16():
    from repro.data import load_dataset

    return load_dataset("mnist16", data_dir(), download=False)


@pytest.fixture(scope="session")
def reference_run(usps):
    """reference_run(cfg, n, seed, in_float64=False): the reference loop's run of `cfg` on usps's first n
    training digits (also its evaluation set), computed once per session: test_engine's and test_native's
    checks of one rung share it (the torch engines' checks the float64 one)."""
    runs = {}

    def run(cfg: Config, n: int, seed: int, in_float64: bool = False):
        key = (cfg, n, seed, in_float64)
        if key not in runs:
            x, y = usps.x_train[:n], usps.y_train[:n]
            if in_float64:
                with float64():
                    runs[key] = train_reference(cfg, x.double(), y, x.double(), y, seed=seed)
            else:
                runs[key] = train_reference(cfg, x, y, x, y, seed=seed)
        return runs[key]

    return run


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)  # like CI; keeps timings comparable


# Tolerances of a torch engine (population, generic) against the reference loop, both in float64 (`float64()`):
# the same mathematics in other op orders, rounding ~1e-16 a step, so 2e-8 absolute after 300 steps holds
# with a wide margin. In float32 the two differ
# by up to 3.1e-5 after 160 steps on a CPU whose torch kernels take the AVX2 path (against 2e-5 allowed): the
# last bits of torch's CPU kernels depend on the path, and a ReLU pre-activation within rounding of 0 can land
# on either side (then the runs part by ~1e-2). Engines with their own arithmetic (native, fused) are float32
# only; they are compared with the float32 reference loop within FLOAT32_TOLERANCE, ReLU rungs over one pass
# (`float32_comparable`): on the AVX2 path (MKL_ENABLE_INSTRUCTIONS=AVX2) the reference loop's float32 moved a
# ReLU pre-activation lying within rounding of 0 to its other side in pass 2 (usps `relu`, 150 digits, seed 11),
# after which the two runs part by 2e-2; a float64 reference is no help there: the float64 loop parts from the
# float32 one by 2e-2 too, on this CPU's own path, where native and the float32 loop agree to 1.8e-7.
# Measured spread (tests/measure_cpu_spread.py, 2-core AVX-512 Xeon, this CPU's path against the AVX2 one): the
# float32 reference loop's own difference uses at most 0.122 of FLOAT32_TOLERANCE over every case compared so
# (softmax-ce; the others 0.001-0.044).
FLOAT64_TOLERANCE = {"atol": 2e-8, "rtol": 1e-7}
FLOAT32_TOLERANCE = {"atol": 2e-5, "rtol": 1e-4}


def assert_params_match_in_float64(got: dict, ref: dict, label: str = "") -> None:
    """A float64 member's parameters against the float64 reference loop's (FLOAT64_TOLERANCE)."""
    for name, want in ref.items():
        assert got[name].dtype == torch.float64, "the engine did not follow the default dtype"
        torch.testing.assert_close(got[name], want.detach(), **FLOAT64_TOLERANCE, msg=f"{label}: {name}")


def float32_comparable(cfg: Config) -> Config:
    """cfg as a float32 engine is compared with the float32 reference loop: ReLU rungs over one pass (above)."""
    return cfg.replace(passes=1) if cfg.hidden_activation == "relu" else cfg


@contextmanager
def float64():
    """Torch's default dtype float64 inside the block (the engines and the reference loop follow it)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def interruptible() -> None:
    """preexec_fn for a child that a test interrupts with SIGINT: a shell runs background jobs with SIGINT
    ignored, the child would inherit that, and Python then installs no KeyboardInterrupt handler."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
