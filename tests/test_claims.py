"""Tests for claims as data (repro.report.claims): a claim that holds is rendered into the paper by the study's
report; one that no longer holds stops the report, naming it; the values a claim can read, on synthetic records."""

from __future__ import annotations

import pytest

from repro.report import claims
from repro.report.records import ReportError, group_records

from .test_report import ladder_dir, make_record, report, write  # noqa: F401  (ladder_dir: a fixture)

CLAIMS = """
[family.steps]
comparisons = ["usps baseline relu test_error", "usps relu adamw test_error"]

[[claim]]
name = "relu-raises"
text = "ReLU raises the test error by {d.diff:.2f} points (Holm-adjusted p = {d.p_holm:.2g})"
holds = "{condition}"
[claim.values]
d = "diff usps baseline relu test_error in steps"

[[claim]]
name = "baseline-error"
text = "the baseline scores {b:.2f}% test error, {k.k} of {k.n} runs collapsed"
holds = "k.k == 0 and b > 5"
[claim.values]
b = "table usps baseline test_error_mean"
k = "collapsed usps baseline"
"""

PAPER = """# Paper

Text: <!-- claim:relu-raises -->old words<!-- /claim -->. And <!-- claim:baseline-error -->x<!-- /claim -->.
"""


def study(tmp_path, condition: str = "d.diff > 0 and d.p_holm < 0.05", paper: str = PAPER):
    """Synthetic records: usps baseline about 6%, relu about 8%, adamw about 5%, 4 seeds each."""
    for s in range(4):
        jitter = 0.001 * (s - 1.5)
        write(tmp_path / "results", make_record(label="baseline", seed=s, test_error=0.06 + jitter))
        write(tmp_path / "results", make_record(label="relu", seed=s, test_error=0.08 + jitter))
        write(tmp_path / "results", make_record(label="adamw", seed=s, test_error=0.05 + jitter))
    (tmp_path / "paper").mkdir(exist_ok=True)
    (tmp_path / "paper" / "claims.toml").write_text(CLAIMS.replace("{condition}", condition))
    (tmp_path / "paper" / "paper.md").write_text(paper)


def test_a_claim_that_holds_is_rendered(tmp_path, ladder_dir):  # noqa: F811
    study(tmp_path)
    report(tmp_path, ladder_dir, make_figures=False)
    text = (tmp_path / "paper" / "paper.md").read_text()
    assert "<!-- claim:relu-raises -->ReLU raises the test error by 2.00 points (Holm-adjusted p = " in text
    assert "<!-- claim:baseline-error -->the baseline scores 6.00% test error, 0 of 4 runs collapsed<!-- /claim -->" \
        in text
    assert "old words" not in text


def test_a_claim_that_fails_stops_the_report_naming_it(tmp_path, ladder_dir):  # noqa: F811
    study(tmp_path, condition="d.diff < 0")
    before = (tmp_path / "paper" / "paper.md").read_text()
    with pytest.raises(ReportError, match="claim relu-raises: no longer holds") as e:
        report(tmp_path, ladder_dir, make_figures=False)
    assert "baseline-error" not in str(e.value)  # only the claim that fails is named
    assert (tmp_path / "paper" / "paper.md").read_text() == before  # the text is left as it was


def test_an_undeclared_or_unreadable_claim_is_an_error(tmp_path, ladder_dir):  # noqa: F811
    study(tmp_path, paper=PAPER + "<!-- claim:nowhere -->?<!-- /claim -->\n")
    with pytest.raises(ReportError, match="undeclared claim.*nowhere"):
        report(tmp_path, ladder_dir, make_figures=False)
    study(tmp_path, condition="d.diff > 0 and __import__('os')")
    with pytest.raises(ReportError, match="claim relu-raises: cannot be evaluated"):
        report(tmp_path, ladder_dir, make_figures=False)


def test_holm_over_the_declared_family(tmp_path):
    for s in range(4):
        write(tmp_path, make_record(label="baseline", seed=s, test_error=0.06 + 0.002 * s))
        write(tmp_path, make_record(label="relu", seed=s, test_error=0.061 + 0.002 * s + 0.001 * (s % 2)))
        write(tmp_path, make_record(label="adamw", seed=s, test_error=0.05 + 0.002 * s - 0.001 * (s % 3)))
    from repro.report.records import load_records
    groups = group_records(load_records(tmp_path).records)
    sources = claims._Sources(tmp_path, groups, {"f": ["usps baseline relu test_error", "usps relu adamw test_error"]})
    fam = sources.family("f")
    small, large = sorted(fam.values(), key=lambda d: d.p)
    assert small.p_holm == pytest.approx(min(1.0, 2 * small.p)) and large.p_holm == pytest.approx(max(small.p_holm, large.p))
    assert small.low_adj < small.low and small.high_adj > small.high  # simultaneous: wider
    assert small.paired and large.paired  # the same seeds on both sides, none collapsed
    with pytest.raises(KeyError, match="not a comparison of family f"):
        sources.value("diff usps baseline adamw test_error in f")
