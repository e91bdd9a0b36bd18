"""Regression on the committed results: each configuration's mean test error, per dataset, lies in a band.

The bands were written from the records committed in results/runs/ when the study was re-made with the
portable native kernel (the same bits on every x86-64 CPU) and mnist16's test-first draw (16 seeds per rung
and dataset; the peer-weights run is one seed; the reference loop made it): measured mean, sd and n, then a
band of the mean +- max(3 standard errors, 0.25 points). A re-run of the study with broken code, or damaged
records, moves a mean out of its band. The factorial's configurations (labels `f:...`) are checked by the
attribution tests, not here.
"""

import statistics
from pathlib import Path

import pytest

from repro.report.records import group_records, load_records

RESULTS = Path(__file__).resolve().parents[1] / "results"

# (dataset, label): (measured mean %, sd, n, band low, band high)
BANDS = {
    ("mnist16", "adamw"): (3.73, 0.52, 16, 3.34, 4.12),
    ("mnist16", "baseline"): (4.71, 0.41, 16, 4.40, 5.02),
    ("mnist16", "dropout"): (3.35, 0.28, 16, 3.10, 3.60),
    ("mnist16", "long"): (1.92, 0.22, 16, 1.67, 2.17),
    ("mnist16", "lr-decay"): (3.56, 0.35, 16, 3.30, 3.83),
    ("mnist16", "modern-2022"): (1.91, 0.19, 16, 1.66, 2.16),
    ("mnist16", "peer-weights"): (4.09, 0.00, 1, 3.84, 4.34),
    ("mnist16", "relu"): (4.97, 0.87, 16, 4.32, 5.63),
    ("mnist16", "shift"): (3.06, 0.27, 16, 2.81, 3.31),
    ("usps", "adamw"): (4.98, 0.39, 16, 4.69, 5.27),
    ("usps", "baseline"): (5.96, 0.30, 16, 5.71, 6.21),
    # rungs with their own code (ablations/examples/, the generic engine), measured the same way
    ("usps", "gelu"): (5.44, 0.55, 16, 5.03, 5.86),
    ("usps", "label-smoothing"): (5.98, 0.35, 16, 5.72, 6.24),
    ("usps", "momentum"): (6.03, 0.36, 16, 5.76, 6.30),
    ("usps", "dropout"): (4.59, 0.23, 16, 4.34, 4.84),
    ("usps", "fc40"): (7.13, 0.33, 16, 6.87, 7.38),
    ("usps", "guess:paper+curvature-per-pass"): (5.69, 0.33, 16, 5.44, 5.94),
    ("usps", "guess:paper+cyclic-h2"): (5.37, 0.31, 16, 5.12, 5.62),
    ("usps", "guess:paper+gamma-0.001"): (5.35, 0.39, 16, 5.06, 5.64),
    ("usps", "guess:paper+gamma-0.1"): (5.53, 0.29, 16, 5.28, 5.78),
    ("usps", "guess:paper+mu-0.005"): (5.79, 0.29, 16, 5.54, 6.04),
    ("usps", "guess:paper+mu-0.1"): (5.58, 0.31, 16, 5.33, 5.83),
    ("usps", "guess:paper+output-bias-0"): (5.53, 0.33, 16, 5.28, 5.78),
    ("usps", "guess:paper+target-0.8"): (5.51, 0.30, 16, 5.26, 5.76),
    ("usps", "guess:paper+target-1.2"): (5.55, 0.41, 16, 5.24, 5.85),
    ("usps", "guess:target-1.2+mu-0.005"): (5.94, 0.33, 16, 5.69, 6.19),
    ("usps", "guess:target-1.2+output-bias-0"): (5.56, 0.39, 16, 5.27, 5.85),
    ("usps", "literal-init"): (5.71, 0.37, 16, 5.43, 5.99),
    ("usps", "long"): (3.07, 0.31, 16, 2.82, 3.32),
    ("usps", "lr-decay"): (4.80, 0.25, 16, 4.55, 5.05),
    ("usps", "modern-2022"): (3.05, 0.23, 16, 2.80, 3.30),
    ("usps", "paper"): (5.38, 0.35, 16, 5.12, 5.64),
    ("usps", "relu"): (10.25, 10.41, 16, 2.45, 18.06),
    ("usps", "scaled-tanh"): (6.67, 0.42, 16, 6.36, 6.99),
    ("usps", "shift"): (3.86, 0.26, 16, 3.61, 4.11),
    ("usps", "target-1.2"): (5.55, 0.41, 16, 5.24, 5.85),
    # ReLU + SGD at small learning rates (ablations/extra/), measured the same way when first committed
    ("mnist16", "recipe-sgd-3e-3"): (3.01, 0.30, 16, 2.76, 3.26),
    ("mnist16", "recipe-sgd-3e-4"): (11.40, 1.92, 16, 9.96, 12.84),
    ("mnist16", "relu-sgd-3e-3"): (4.92, 0.41, 16, 4.61, 5.23),
    ("mnist16", "relu-sgd-3e-4"): (12.85, 6.13, 16, 8.24, 17.45),
    ("usps", "recipe-sgd-3e-3"): (3.98, 0.26, 16, 3.73, 4.23),
    ("usps", "recipe-sgd-3e-4"): (8.21, 0.57, 16, 7.79, 8.64),
    ("usps", "relu-sgd-3e-3"): (8.19, 3.37, 16, 5.66, 10.72),
    ("usps", "relu-sgd-3e-4"): (11.69, 3.92, 16, 8.76, 14.63),
    # the blog's steps from the peer's initial weights (ablations/peers/extra/, seed 1337), one run each
    ("mnist16", "blog-1"): (6.08, 0.00, 1, 5.83, 6.33),
    ("mnist16", "blog-2"): (3.79, 0.00, 1, 3.54, 4.04),
    ("mnist16", "blog-3"): (3.29, 0.00, 1, 3.04, 3.54),
    ("mnist16", "blog-4"): (3.09, 0.00, 1, 2.84, 3.34),
    ("mnist16", "blog-5"): (2.24, 0.00, 1, 1.99, 2.49),
    ("mnist16", "blog-5b"): (2.69, 0.00, 1, 2.44, 2.94),
    ("mnist16", "blog-6"): (1.69, 0.00, 1, 1.44, 1.94),
}


@pytest.fixture(scope="module")
def groups():
    inputs = load_records(RESULTS, strict=True)
    return group_records(inputs.records)


def test_every_committed_configuration_has_a_band(groups):
    assert {k for k in groups if not k[1].startswith("f:")} == set(BANDS)


@pytest.mark.parametrize("key", sorted(BANDS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_committed_mean_test_error_in_band(key, groups):
    mean, sd, n, low, high = BANDS[key]
    g = groups[key]
    values = g.values("test_error", 100.0)
    assert len(values) == n and g.n_diverged == 0
    assert low <= statistics.mean(values) <= high
