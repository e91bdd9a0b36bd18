"""Regression on the committed results: each rung's mean test error, per dataset, lies in a band.

The bands were written from the records committed in results/runs/ (16 seeds per rung and dataset, the
native engine on CPU, commit 4b2717c, 2026-11-26; mnist16 as drawn by the earlier reproduction's prepro.py;
`repro report` shows the same means in results/results.md; the faithful ladder's `target-1.2`, the new `fc40`
and the guesses (labels `guess:...`) added at the next commits, same engine): measured mean, sd and n, then a band of the
mean +- max(3 standard errors, 0.25 points). A re-run of the ladder with broken code, or damaged records,
moves a mean out of its band. The factorial's configurations (labels `f:...`) are checked by the attribution
tests, not here.
"""

import statistics
from pathlib import Path

import pytest

from repro.report.records import group_records, load_records

RESULTS = Path(__file__).resolve().parents[1] / "results"

# (dataset, label): (measured mean %, sd, n, band low, band high)
BANDS = {
    ("mnist16", "adamw"): (3.73, 0.33, 16, 3.48, 3.98),
    ("mnist16", "baseline"): (3.98, 0.22, 16, 3.73, 4.23),
    ("mnist16", "dropout"): (3.08, 0.23, 16, 2.83, 3.33),
    ("mnist16", "long"): (2.07, 0.23, 16, 1.82, 2.32),
    ("mnist16", "lr-decay"): (3.35, 0.37, 16, 3.08, 3.63),
    ("mnist16", "relu"): (10.14, 21.16, 16, -5.73, 26.01),
    ("mnist16", "shift"): (2.97, 0.27, 16, 2.72, 3.22),
    ("usps", "adamw"): (4.97, 0.40, 16, 4.67, 5.26),
    ("usps", "baseline"): (5.96, 0.30, 16, 5.71, 6.21),
    ("usps", "dropout"): (4.62, 0.24, 16, 4.37, 4.87),
    ("usps", "fc40"): (7.13, 0.33, 16, 6.87, 7.38),
    ("usps", "guess:paper+curvature-per-pass"): (5.69, 0.33, 16, 5.44, 5.94),
    ("usps", "guess:paper+cyclic-h2"): (5.37, 0.31, 16, 5.12, 5.62),
    ("usps", "guess:paper+gamma-0.001"): (5.35, 0.39, 16, 5.06, 5.64),
    ("usps", "guess:paper+gamma-0.1"): (5.53, 0.29, 16, 5.28, 5.78),
    ("usps", "guess:paper+mu-0.005"): (5.98, 0.18, 16, 5.73, 6.23),
    ("usps", "guess:paper+mu-0.1"): (5.58, 0.31, 16, 5.33, 5.83),
    ("usps", "guess:paper+output-bias-0"): (5.53, 0.33, 16, 5.28, 5.78),
    ("usps", "guess:paper+target-0.8"): (5.51, 0.30, 16, 5.26, 5.76),
    ("usps", "guess:paper+target-1.2"): (5.55, 0.41, 16, 5.24, 5.85),
    ("usps", "guess:target-1.2+mu-0.005"): (5.97, 0.34, 16, 5.71, 6.23),
    ("usps", "guess:target-1.2+output-bias-0"): (5.56, 0.39, 16, 5.27, 5.86),
    ("usps", "literal-init"): (5.71, 0.37, 16, 5.43, 5.99),
    ("usps", "long"): (3.02, 0.30, 16, 2.77, 3.27),
    ("usps", "lr-decay"): (4.82, 0.29, 16, 4.57, 5.07),
    ("usps", "paper"): (5.38, 0.35, 16, 5.12, 5.64),
    ("usps", "relu"): (10.25, 10.41, 16, 2.45, 18.06),
    ("usps", "scaled-tanh"): (6.67, 0.42, 16, 6.36, 6.99),
    ("usps", "shift"): (3.82, 0.28, 16, 3.57, 4.07),
    ("usps", "target-1.2"): (5.55, 0.41, 16, 5.24, 5.85),
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
