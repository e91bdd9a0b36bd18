"""Regression: a short version of every rung (2 passes on the real usps data, seeds 0-3) lands where the
same short version landed in measured runs, so a code change that breaks a rung fails CI.

Band source: `python tests/measure_bands.py` on the 2-core CPU dev machine (torch 2.13.0 CPU, population
engine at commit 'SDLM optimizer, cyclic H2 scheme, batch-invariant engine step', 2026-11-26): each rung's config with passes=2, seeds 0-15, usps. Per rung: test error mean, sd,
min, max, then train error mean, sd, min, max (in %). At 2 passes `long` equals `shift` (only its pass count
differs). The test trains seeds 0-3 of each rung and requires the mean test error within 3 standard errors
(3 * sd / sqrt(4)) of the 16-seed mean, and every seed's test and train error within the measured range
widened by 1 point. It trains with the engine `--engine auto` picks on CPU (native where it builds); every engine
is tested equal to the reference loop, so the bands measured with the population engine hold for it.
"""

import statistics

import pytest

from repro.engines import registry
from repro.jobs.ladder import load_rungs, plan

# rung: (test mean, sd, min, max, train mean, sd, min, max), % over seeds 0-15
BANDS = {
    "baseline": (8.02, 0.54, 7.37, 9.02, 3.00, 0.21, 2.67, 3.36),
    "relu": (8.78, 1.66, 7.27, 14.35, 4.32, 2.05, 2.62, 11.53),
    "adamw": (8.10, 0.49, 7.08, 8.92, 3.62, 0.33, 3.14, 4.24),
    "lr-decay": (8.52, 0.33, 7.82, 8.87, 4.11, 0.35, 3.47, 4.76),
    "dropout": (9.48, 0.52, 8.67, 10.36, 5.44, 0.36, 4.98, 6.38),
    "shift": (9.85, 0.82, 8.32, 11.41, 6.53, 0.38, 5.94, 7.08),
    "long": (9.85, 0.82, 8.32, 11.41, 6.53, 0.38, 5.94, 7.08),
}
SEEDS = [0, 1, 2, 3]
PASSES = 2


def short_errors(cfg, ds, seeds):
    """Test and train error (%) of each seed after `PASSES` passes."""
    cfg = cfg.replace(passes=PASSES)
    engine, _ = registry.choose("auto", cfg, "cpu")  # the engine a user's run gets; all are tested equal
    pop = engine.population_class(cfg)(cfg, seeds, ds.x_train, ds.y_train)
    for p in range(PASSES):
        pop.train_pass(p)
    test = [100 * e for e in pop.evaluate(ds.x_test, ds.y_test).error.tolist()]
    train = [100 * e for e in pop.evaluate(ds.x_train, ds.y_train).error.tolist()]
    return test, train


def test_every_ladder_rung_has_a_band():
    assert [p.label for p in plan(load_rungs())] == list(BANDS)


@pytest.mark.slow
@pytest.mark.parametrize("planned", plan(load_rungs()), ids=lambda p: p.label)
def test_short_rung_lands_in_its_band(planned, usps):
    mean, sd, lo, hi, tr_mean, tr_sd, tr_lo, tr_hi = BANDS[planned.label]
    test, train = short_errors(planned.config, usps, SEEDS)
    assert abs(statistics.mean(test) - mean) <= 3 * sd / len(SEEDS) ** 0.5, test
    for e in test:
        assert lo - 1 <= e <= hi + 1, test
    for e in train:
        assert tr_lo - 1 <= e <= tr_hi + 1, train
