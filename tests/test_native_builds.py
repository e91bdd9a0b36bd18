"""The native engine's numbers are the same bits whatever CPU built the kernel: every configuration of both
ladders (and their extras and guesses) trained by kernels compiled for several instruction sets and lane
widths gives identical parameters, optimizer state and evaluation outputs.

Why this can hold: the kernel is compiled with -ffp-contract=off and no fast-math, and writes each fused
multiply-add out (kernel.c), so -march chooses instructions but never a rounding. A build this CPU cannot run
(AVX-512 on an AVX2 machine) is left out; the others run here, as they would on their own machines.
"""

from __future__ import annotations

import pytest
import torch

from repro.engines.native import build as native_build
from repro.engines.native import engine as native
from repro.hardware import cpu_has
from repro.jobs.ladder import DEFAULT_LADDER_DIR, extra_rungs, guess_rungs, load_rungs, plan

N, PASSES, SEEDS = 120, 2, [0, 1, 2, 3, 4]
REFERENCE_BUILD = native_build.Build("x86-64-v3", 8)  # the AMD EPYC (AVX2) machines' instruction set


def _builds() -> list[native_build.Build]:
    builds = [native_build.Build("znver3", 8), native_build.Build("native", 8)]
    if cpu_has("avx512f"):
        builds += [native_build.Build("x86-64-v4", 16), native_build.Build("native", 16), native_build.Build("x86-64-v4", 8)]
    return builds


def _configs() -> dict[str, object]:
    out = {}
    for folder in (DEFAULT_LADDER_DIR, DEFAULT_LADDER_DIR / "faithful"):
        rungs, extras = load_rungs(folder), extra_rungs(folder)
        for p in plan(rungs, "cumulative", [r.name for r in rungs + extras], extras):
            out[f"{folder.name}:{p.label}"] = p.config.replace(passes=PASSES)
    guesses = guess_rungs(DEFAULT_LADDER_DIR / "faithful")
    for p in plan(load_rungs(DEFAULT_LADDER_DIR / "faithful"), "guesses", None, guesses=guesses, on="paper"):
        out[p.label] = p.config.replace(passes=PASSES)
    return {k: c for k, c in out.items() if native.supports(c) is None}


CONFIGS = _configs()


def _train(cfg, build, usps, lane_use="members"):
    pop = native.NativePopulation(cfg, SEEDS, usps.x_train[:N], usps.y_train[:N], threads=2, build=build,
                                  lane_use=lane_use)
    for p in range(cfg.passes):
        pop.train_pass(p)
    ev = pop.evaluate(usps.x_test[:200], usps.y_test[:200], keep_outputs=True)
    members = [pop.member_params(m) for m in range(len(SEEDS))]
    return members, ev, pop.trains_alone


def _assert_same(label, want, got, how):
    (want_params, want_eval, _), (got_params, got_eval, _) = want, got
    for m, (a, b) in enumerate(zip(want_params, got_params)):
        for name in a:
            assert torch.equal(a[name], b[name]), f"{label}: member {m} {name} differs {how}"
    assert torch.equal(want_eval.outputs, got_eval.outputs), f"{label}: evaluation outputs differ {how}"
    assert torch.equal(want_eval.loss, got_eval.loss), label


@pytest.mark.parametrize("build", _builds(), ids=lambda b: f"{b.march}-{b.lanes}lanes")
def test_every_configuration_is_the_same_bits_under_every_build(build, usps):
    for b in (REFERENCE_BUILD, build):
        if isinstance(why := native_build.load(b), str):
            pytest.skip(why)
    for label, cfg in CONFIGS.items():
        _assert_same(label, _train(cfg, REFERENCE_BUILD, usps), _train(cfg, build, usps), f"under {build}")


@pytest.mark.parametrize("build", [REFERENCE_BUILD, native_build.default_build(members=1)], ids=lambda b: f"{b.lanes}lanes")
def test_every_configuration_is_the_same_bits_trained_alone(build, usps):
    """solo.c (one member's units in the lanes) against kernel.c (members in the lanes): every configuration
    it takes trains to the same bits; the others are trained in the lanes and say so."""
    if isinstance(why := native_build.load(build), str):
        pytest.skip(why)
    alone = 0
    for label, cfg in CONFIGS.items():
        want, got = _train(cfg, REFERENCE_BUILD, usps), _train(cfg, build, usps, lane_use="alone")
        _assert_same(label, want, got, f"trained alone under {build}")
        takes = cfg.architecture == "net1989" and cfg.optimizer in ("sgd", "adamw")
        assert got[2] == takes, label
        alone += got[2]
    assert alone >= 10  # both ladders' SGD and AdamW rungs


def test_the_lane_width_follows_the_cpu_and_the_population():
    assert native_build.default_build(members=16, threads=2).lanes == 8
    assert native_build.default_build(members=8, threads=1).lanes == 8
    for members, threads in ((16, 1), (64, 2), (1, 2), (4, 2)):  # 1 and 4 members on 2 threads: each alone
        assert native_build.default_build(members=members, threads=threads).lanes == (16 if cpu_has("avx512f") else 8)


def test_a_division_by_a_constant_through_its_double_reciprocal_rounds_as_the_division():
    """kernel.c's vdiv_by_const: AdamW's sqrt(v) / sqrt(1 - beta2^t) as x * (1/c) in double, rounded once to
    float. The argument (the double product is within 2^-52 of x/c; a quotient of floats is never within about
    2^-49 of a midpoint) is checked here against IEEE float32 division: every c the default betas give over the
    longest run's steps, and random c in (0.03, 1], against x over every exponent a square root reaches."""
    import numpy as np

    rng = np.random.default_rng(0)
    steps = np.arange(1, 80 * 7291 + 1, dtype=np.float64)
    schedule = np.unique((1.0 - 0.999 ** steps) ** 0.5).astype(np.float32)
    cs = np.concatenate([schedule[rng.choice(len(schedule), 1500, replace=False)], schedule[:200],
                         rng.uniform(0.03, 1.0, 1000).astype(np.float32)])
    mantissas = rng.integers(1 << 23, 1 << 24, 4000).astype(np.float64)
    xs = np.ldexp(mantissas, rng.integers(-63 - 23, 64 - 23, 4000)).astype(np.float32)
    xs = np.concatenate([xs, np.float32([0.0, 1.0, np.inf])])
    for c in cs:
        want = xs / c
        got = (xs.astype(np.float64) * (1.0 / np.float64(c))).astype(np.float32)
        assert np.array_equal(want.view(np.int32), got.view(np.int32)), f"c = {c!r}"
