"""Seed-paired statistics (repro.report.stats.paired_interval, paired_contrast, mean_correlation;
repro.report.records.difference): runs of one seed share their random stream, so two configurations that ran
the same seeds are compared seed by seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repro.report.records import difference, group_records
from repro.report.stats import mean_correlation, paired_contrast, paired_interval, t_quantile, welch_interval

from .test_report import make_record


def test_paired_interval_is_the_t_interval_of_the_differences():
    a, b = [5.0, 6.0, 7.0, 8.0], [5.5, 6.1, 7.9, 8.2]
    d = np.subtract(b, a)
    half = t_quantile(0.975, 3) * d.std(ddof=1) / 2.0
    iv = paired_interval(a, b)
    assert (iv.diff, iv.low, iv.high, iv.df) == pytest.approx((d.mean(), d.mean() - half, d.mean() + half, 3))
    # correlated sides: pairing gives a narrower interval than Welch's
    assert iv.high - iv.low < welch_interval(a, b).high - welch_interval(a, b).low
    with pytest.raises(ValueError):
        paired_interval([1.0, 2.0], [1.0])


def test_paired_contrast_of_two_configurations_is_the_paired_interval():
    a, b = [5.0, 6.0, 7.0, 8.0], [5.5, 6.1, 7.9, 8.2]
    c, iv = paired_contrast([-1.0, 1.0], np.array([a, b])), paired_interval(a, b)
    assert (c.value, c.low, c.high, c.p) == pytest.approx((iv.diff, iv.low, iv.high, iv.p))
    assert mean_correlation(np.array([a, a, a])) == pytest.approx(1.0)
    assert mean_correlation(np.array([a, b])) == pytest.approx(np.corrcoef(a, b)[0, 1])


def _group(label, errors, train=None):
    recs = [dict(make_record(label=label, seed=s, test_error=e, train_error=(train or {}).get(s, 0.01)),
                 _file=f"{label}-{s}.json") for s, e in enumerate(errors)]
    return group_records(recs)[("usps", label)]


def test_difference_pairs_by_seed_only_where_both_ran_the_same_seeds_and_none_collapsed():
    a = _group("baseline", [0.05, 0.06, 0.07, 0.08])
    b = _group("relu", [0.055, 0.061, 0.079, 0.082])
    d = difference(a, b)
    assert d.paired and d.corr == pytest.approx(np.corrcoef([5, 6, 7, 8], [5.5, 6.1, 7.9, 8.2])[0, 1])
    assert d.interval.diff == pytest.approx(paired_interval([5, 6, 7, 8], [5.5, 6.1, 7.9, 8.2]).diff)
    collapsed = _group("relu", [0.055, 0.061, 0.079, 0.9], train={3: 0.9})
    w = difference(a, collapsed)
    assert not w.paired and math.isnan(w.corr)
    assert w.interval.diff == pytest.approx(welch_interval([5, 6, 7, 8], [5.5, 6.1, 7.9]).diff)
