"""The rejection needed for a target error (ties included) and the collapse rule, on synthetic outputs and
on the committed records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from repro.net.collapse import COLLAPSE_TRAIN_ERROR, is_collapsed
from repro.net.metrics import is_wrong, margins, rejection_for_error
from repro.jobs.record import RunRecord

from .test_report import ladder_dir  # noqa: F401  (a fixture)

REPO = Path(__file__).resolve().parent.parent


def outputs_with_gaps(gaps: list[float], right: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 10) outputs whose top-two gap is each `gaps[i]`, the top unit being the label iff `right[i]`."""
    n = len(gaps)
    out = torch.full((n, 10), -1.0)
    out[:, 0] = torch.tensor(gaps) - 1.0  # unit 0 on top, every other unit at -1
    labels = torch.tensor([0 if r else 1 for r in right])
    return out, labels


def brute_force(outputs: torch.Tensor, labels: torch.Tensor, target: float) -> float:
    """Largest accepted set over every threshold, a tied block at the threshold accepting any k of its n
    patterns at its expected error."""
    g, w = margins(outputs).tolist(), is_wrong(outputs, labels).double().tolist()
    best = 0
    for v in sorted(set(g), reverse=True):
        ahead = [e for gi, e in zip(g, w) if gi > v]
        block = [e for gi, e in zip(g, w) if gi == v]
        for k in range(len(block) + 1):
            accepted = len(ahead) + k
            if accepted and sum(ahead) + k * sum(block) / len(block) <= target * accepted + 1e-9:
                best = max(best, accepted)
    return 1 - best / len(g)


def test_a_tied_block_at_the_threshold_is_accepted_in_part():
    # 100 right patterns with distinct large gaps, then 100 tied at one gap of which 5 are wrong, then 50 wrong
    gaps = [1.0 + i / 1000 for i in range(100)] + [0.5] * 100 + [0.1 + i / 1000 for i in range(50)]
    right = [True] * 100 + [i >= 5 for i in range(100)] + [False] * 50
    out, y = outputs_with_gaps(gaps, right)
    # whole blocks only: 100 accepted (the tied block at 5% error cannot be taken whole); 25 of it can be
    # taken at its expected error: (0 + 25 * 0.05) / 125 = 1%
    assert rejection_for_error(out, y, 0.01) == pytest.approx(1 - 125 / 250)


def test_a_tied_block_on_top_that_errs_above_the_target_needs_everything_rejected():
    # the committed usps relu seed 0 in small: a saturated block with the largest gap errs at 2%
    out, y = outputs_with_gaps([2.0] * 100 + [1.0] * 10, [i >= 2 for i in range(100)] + [True] * 10)
    assert rejection_for_error(out, y, 0.01) == 1.0
    assert rejection_for_error(out, y, 0.02) == 0.0  # 2/110 errors accepted whole


def test_rejection_equals_the_brute_force_search_with_and_without_ties():
    gen = torch.Generator().manual_seed(0)
    for trial in range(60):
        n = int(torch.randint(5, 25, (1,), generator=gen))
        raw = torch.randint(0, 3, (n, 10), generator=gen).float() if trial % 2 else torch.randn(n, 10, generator=gen)
        y = torch.randint(0, 10, (n,), generator=gen)
        for target in (0.0, 0.01, 0.1, 0.3):
            assert rejection_for_error(raw, y, target) == pytest.approx(brute_force(raw, y, target), abs=1e-12)


def test_collapse_rule():
    assert not is_collapsed(0.02, diverged=False)
    assert not is_collapsed(COLLAPSE_TRAIN_ERROR, diverged=False)
    assert is_collapsed(COLLAPSE_TRAIN_ERROR + 1e-6, diverged=False)
    assert is_collapsed(0.01, diverged=True)
    assert is_collapsed(None, diverged=False)  # diverged in the first pass: no final figures


def test_committed_records_rarely_end_near_the_collapse_threshold():
    """The rule's reason, checked (repro/net/collapse.py): the rule is what every record says; fewer than 1% of
    the committed runs end between 40% and 60% training error (measured: 5 of 2,561, at 16 factorial seeds),
    so the threshold decides few runs; and every run counted as collapsed ends above 55% test error too."""
    near = total = 0
    for path in sorted((REPO / "results" / "runs").glob("*/*.json")):
        rec = RunRecord.from_json(json.loads(path.read_text()))
        train, test = rec.final["train_error"], rec.final["test_error"]
        assert rec.collapsed == (train > COLLAPSE_TRAIN_ERROR), path
        if rec.collapsed:
            assert test > 0.55, path
        near += 0.4 < train < 0.6
        total += 1
    assert near < 0.01 * total, f"{near} of {total} runs end between 40% and 60% training error"


# ----------------------------------------------------------------------------------------- statistics of outcomes
def test_clopper_pearson_matches_known_values():
    from repro.report.stats import clopper_pearson

    assert clopper_pearson(0, 16) == pytest.approx((0.0, 1 - 0.025 ** (1 / 16)), abs=1e-9)
    assert clopper_pearson(2, 16) == pytest.approx((0.01551, 0.38348), abs=1e-4)
    assert clopper_pearson(16, 16) == pytest.approx((0.025 ** (1 / 16), 1.0), abs=1e-9)


def test_share_difference_matches_newcombes_examples():
    """Newcombe (1998), Statistics in Medicine 17:873, method 10 (hybrid score), his examples (a) and (h)."""
    from repro.report.stats import share_difference

    c = share_difference(48, 80, 56, 70)  # 56/70 - 48/80
    assert (c.value, c.low, c.high) == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)
    c = share_difference(0, 10, 0, 10)
    assert (c.low, c.high, c.p) == pytest.approx((-0.2775, 0.2775, 1.0), abs=1e-4)
    c = share_difference(0, 16, 16, 16)  # never the point: the t interval's failure at shares of 0 and 1
    assert c.value == 1.0 and c.low < 0.8 and c.high == pytest.approx(1.0) and c.p < 1e-8


def test_holm_rejects_step_down():
    from repro.report.stats import holm

    assert holm([0.01, 0.04, 0.03, 0.5]) == [True, False, False, False]  # 0.01 <= 0.05/4; 0.03 > 0.05/3
    assert holm([0.001, 0.02, 0.04, float("nan")]) == [True, True, True, False]  # family of 3
    assert holm([]) == []


def test_far_runs_find_the_tail_of_a_bimodal_row():
    from repro.report.stats import far_runs

    assert far_runs([5.0, 5.1, 4.9, 5.2, 5.05, 12.0, 47.0]) == [12.0, 47.0]
    assert far_runs([5.0, 5.01, 5.02, 5.3]) == []  # tight seeds: 1 point at least


def test_tables_count_collapses_apart(tmp_path, ladder_dir):
    from tests.test_report import make_record, report, table, write

    res = tmp_path / "results"
    for seed, err in enumerate((0.05, 0.06, 0.07)):
        write(res, make_record(label="baseline", seed=seed, test_error=err))
    for seed, err in enumerate((0.04, 0.05, 0.05)):
        write(res, make_record(label="relu", seed=seed, test_error=err))
    write(res, make_record(label="relu", seed=3, test_error=1.0, train_error=1.0))  # collapsed
    report(tmp_path, ladder_dir, make_figures=False)
    relu = table(tmp_path).set_index("label").loc["relu"]
    assert (relu.seeds, relu.collapsed) == (4, 1)
    assert (relu.test_error_mean, relu.test_error_max, relu.test_error_median) == pytest.approx((14 / 3, 5.0, 5.0))
    assert (relu.collapse_rate_low, relu.collapse_rate_high) == pytest.approx((0.63, 80.59), abs=0.01)
    assert relu.delta_test_error == pytest.approx(14 / 3 - 6.0, rel=1e-5)  # stable runs on both sides (CSV: 6 digits)
    assert relu.outcome.startswith("1/4 collapsed [1–81%]")
    md = (res / "results.md").read_text()
    assert "| `relu` | 3 | 4 | 1/4 collapsed [1–81%] |" in md and "Holm" in md


def test_bold_follows_holm_over_the_table(tmp_path, ladder_dir):
    from tests.test_report import make_record, report, table, write

    res = tmp_path / "results"
    base = (0.050, 0.051, 0.052, 0.049, 0.050, 0.051)
    for seed, err in enumerate(base):
        write(res, make_record(label="baseline", seed=seed, test_error=err))
        write(res, make_record(label="relu", seed=seed, test_error=err + 0.02))  # a clear step
        write(res, make_record(label="adamw", seed=seed, test_error=err + 0.02 + 0.001 * (seed % 2)))  # none
    report(tmp_path, ladder_dir, make_figures=False)
    df = table(tmp_path).set_index("label")
    assert df.loc["relu", "delta_holm"] == 1 and df.loc["adamw", "delta_holm"] == 0
    md = (res / "results.md").read_text()
    assert "**+2.00 [" in md


@pytest.mark.parametrize("train_errors, diverge, collapsed", [
    ((0.30, 0.02), False, False),
    ((0.30, 0.90), False, True),
    ((0.30, 0.02), True, True),  # the loss turns non-finite in the second pass
])
def test_the_runner_writes_collapsed_by_the_rule(train_errors, diverge, collapsed):
    from repro.config import Config
    from repro.data import Dataset
    from repro.jobs.ladder import PlannedConfig, Rung
    from repro.jobs.runner import MemberHistory, MemberResult, build_record

    n = 40
    ds = Dataset("usps", torch.zeros(n, 16, 16), torch.arange(n) % 10, torch.zeros(n, 16, 16), torch.arange(n) % 10, "fp")
    history = MemberHistory()
    for p, err in enumerate(train_errors):
        history.add(p, float("nan") if diverge and p == 1 else 0.5, err, 0.5, err)
    result = MemberResult(0, history, {}, torch.randn(n, 10), {}, 1.0, 1)
    planned = PlannedConfig("f:relu", Rung(0, "f:relu", "t", "", ""), Config().replace(passes=2), "factorial", ("relu",))
    rec = build_record(planned, ds, result, "population", torch.device("cpu"))
    assert rec.collapsed is collapsed and rec.to_json()["collapsed"] is collapsed
    assert (rec.mode, rec.changes) == ("factorial", ["relu"])  # the planned configuration's, not parsed from its label
