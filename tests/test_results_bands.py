"""Regression on the committed results: each rung's mean test error, per dataset, lies in a band.

The bands were written from the records committed in results/runs/ (16 seeds per rung and dataset, CPU,
2026-11-26; `repro report` shows the same means in results/results.md): measured mean, sd and n, then a band
of the mean +- max(3 standard errors, 0.25 points). A re-run of the ladder with broken code, or damaged
records, moves a mean out of its band.
"""

import statistics
from pathlib import Path

import pytest

from repro.report.records import group_records, load_records

RESULTS = Path(__file__).resolve().parents[1] / "results"

# (dataset, label): (measured mean %, sd, n, band low, band high)
BANDS = {
    ("mnist16", "adamw"): (3.95, 0.39, 16, 3.66, 4.24),
    ("mnist16", "baseline"): (4.63, 0.25, 16, 4.38, 4.88),
    ("mnist16", "dropout"): (3.41, 0.21, 16, 3.16, 3.66),
    ("mnist16", "long"): (2.15, 0.25, 16, 1.90, 2.40),
    ("mnist16", "lr-decay"): (3.77, 0.35, 16, 3.51, 4.04),
    ("mnist16", "relu"): (15.06, 28.33, 16, -6.19, 36.30),
    ("mnist16", "shift"): (3.12, 0.38, 16, 2.84, 3.41),
    ("usps", "adamw"): (4.92, 0.38, 16, 4.63, 5.20),
    ("usps", "baseline"): (5.96, 0.30, 16, 5.71, 6.21),
    ("usps", "dropout"): (4.55, 0.17, 16, 4.30, 4.80),
    ("usps", "fc40"): (7.24, 0.36, 16, 6.97, 7.52),
    ("usps", "literal-init"): (5.71, 0.37, 16, 5.43, 5.99),
    ("usps", "long"): (3.02, 0.24, 16, 2.77, 3.27),
    ("usps", "lr-decay"): (4.89, 0.18, 16, 4.64, 5.14),
    ("usps", "paper"): (5.38, 0.35, 16, 5.12, 5.64),
    ("usps", "relu"): (7.34, 2.50, 16, 5.46, 9.21),
    ("usps", "scaled-tanh"): (6.74, 0.40, 16, 6.44, 7.04),
    ("usps", "shift"): (3.78, 0.33, 16, 3.53, 4.03),
}


@pytest.fixture(scope="module")
def groups():
    inputs = load_records(RESULTS, strict=True)
    return group_records(inputs.records)


def test_every_committed_configuration_has_a_band(groups):
    assert set(groups) == set(BANDS)


@pytest.mark.parametrize("key", sorted(BANDS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_committed_mean_test_error_in_band(key, groups):
    mean, sd, n, low, high = BANDS[key]
    g = groups[key]
    values = g.values("test_error", 100.0)
    assert len(values) == n and g.n_diverged == 0
    assert low <= statistics.mean(values) <= high
