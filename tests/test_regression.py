"""Regression: the baseline on the real usps data lands where measured runs landed.

Band source (measured 2026-11-26 on the 2-core CPU dev machine, torch 2.13.0 CPU, population engine):
baseline config, 2 passes, seeds 0-15 -> test error 8.02% mean, 0.54% sd, range 7.37-9.02%;
train error 3.00% mean, 0.21% sd, range 2.67-3.36%. The test runs seeds 0-3: their mean must lie within
3 standard errors (3 * 0.54 / sqrt(4) = 0.81) of the 16-seed mean, and each seed within the measured
range widened by 0.6 points.
"""

import statistics

import pytest

from repro.config import Config
from repro.engine import Population

TEST_MEAN, TEST_SD, TEST_RANGE = 8.02, 0.54, (7.37, 9.02)
TRAIN_RANGE = (2.67, 3.36)


@pytest.mark.slow
def test_baseline_two_passes_on_usps(usps):
    cfg = Config(passes=2)
    pop = Population(cfg, [0, 1, 2, 3], usps.x_train, usps.y_train)
    for p in range(cfg.passes):
        pop.train_pass(p)
    test = [100 * e for e in pop.evaluate(usps.x_test, usps.y_test).error.tolist()]
    train = [100 * e for e in pop.evaluate(usps.x_train, usps.y_train).error.tolist()]
    assert abs(statistics.mean(test) - TEST_MEAN) <= 3 * TEST_SD / 2, test
    for e in test:
        assert TEST_RANGE[0] - 0.6 <= e <= TEST_RANGE[1] + 0.6, test
    for e in train:
        assert TRAIN_RANGE[0] - 0.6 <= e <= TRAIN_RANGE[1] + 0.6, train
