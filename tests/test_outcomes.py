"""The rejection needed for a target error (ties included) and the collapse rule, on synthetic outputs and
on the committed records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from repro.net.collapse import COLLAPSE_TRAIN_ERROR, is_collapsed
from repro.net.metrics import is_wrong, margins, rejection_for_error
from repro.study.record import RunRecord, upgraded

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
    for trial in range(200):
        n = int(torch.randint(5, 40, (1,), generator=gen))
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


def test_committed_records_split_cleanly_at_the_collapse_threshold():
    """The rule's reason, checked: no committed run ends between 47% and 57% training error, and every run
    counted as collapsed ends above 55% test error too."""
    for path in sorted((REPO / "results" / "runs").glob("*/*.json")):
        rec = RunRecord.from_json(json.loads(path.read_text()))
        train, test = rec.final["train_error"], rec.final["test_error"]
        assert not 0.47 < train < 0.57, path
        assert rec.collapsed == (train > COLLAPSE_TRAIN_ERROR)
        if rec.collapsed:
            assert test > 0.55, path


def test_schema_1_records_gain_collapsed_after_final():
    obj = json.loads(next((REPO / "results" / "runs" / "usps").glob("*.json")).read_text())
    if obj["schema"] != 1:
        pytest.skip("the committed records are already of the current schema")
    new = upgraded(obj)
    keys = list(new)
    assert keys[keys.index("final") + 1] == "collapsed" and new["schema"] == 2
    assert [k for k in keys if k != "collapsed"] == list(obj)
    assert upgraded(new) is new
