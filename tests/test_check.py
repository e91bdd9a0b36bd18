"""Tests for `repro report --check` (repro.report.compare) and its calibration (repro.report.calibration): the
exact tests, the committed study against itself, synthetic studies that must be flagged (more collapses, a
tripled train error), and the family-wise false-flag rate and power on synthetic records."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from repro.net.collapse import is_collapsed
from repro.report import calibration, compare
from repro.report.records import Group, group_records, load_records

from .conftest import REPO

COMMITTED = REPO / "results"
LADDER = ("baseline", "relu", "adamw", "lr-decay", "dropout", "shift", "long")
FAITHFUL = ("scaled-tanh", "literal-init", "paper", "target-1.2", "fc40")


@pytest.fixture(scope="module")
def reference() -> dict:
    return group_records(load_records(COMMITTED).records)


def copy_study(ws: Path, dataset: str, labels) -> list[Path]:
    """Copy the committed records of `labels` on `dataset` into the workspace `ws`; the copies' paths."""
    out = []
    for label in labels:
        for path in sorted((COMMITTED / "runs" / dataset).glob(f"{label}-*-s*.json")):
            if json.loads(path.read_text())["label"] != label:  # `relu-*` also names relu-sgd-3e-3's files
                continue
            target = ws / "runs" / dataset / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            out.append(target)
    return out


def edit(path: Path, **final) -> None:
    """Set final figures (fractions) of a copied record, its last history entries with them."""
    rec = json.loads(path.read_text())
    for key, value in final.items():
        rec["final"][key] = value
        rec[key][-1] = value
    rec["collapsed"] = is_collapsed(rec["final"]["train_error"], rec["diverged_at_pass"] is not None)
    path.write_text(json.dumps(rec))


# ----------------------------------------------------------------------------------------- the tests
def test_fisher_exact_against_hand_values():
    # 6 of 16 against 1 of 16: tables as probable or less are x = 0, 1, 6, 7 of the 7 collapses on one side.
    total = math.comb(32, 7)
    by_hand = (2 * math.comb(16, 7) + 2 * 16 * math.comb(16, 6)) / total
    assert compare.fisher_exact(6, 16, 1, 16) == pytest.approx(by_hand, rel=1e-12)
    assert compare.fisher_exact(3, 10, 1, 12) == pytest.approx(0.2932330827, rel=1e-8)  # scipy's value
    assert compare.fisher_exact(0, 16, 0, 16) == 1.0 and compare.fisher_exact(16, 16, 0, 16) < 1e-8
    assert compare.fisher_min_p(1, 16, 16) == 1.0  # a single collapse can never be significant


def test_tarone_counts_only_tests_that_can_reach_the_level():
    assert compare.tarone_level([1.0] * 30 + [0.001], 0.1) == 0.1  # one attainable test: the full level
    assert compare.tarone_level([0.001] * 4, 0.1) == pytest.approx(0.025)
    assert compare.tarone_level([], 0.1) == 0.1


def test_an_exact_copy_of_the_committed_study_agrees(reference):
    cmp = compare.compare_groups(reference, reference)
    assert cmp.all_agree
    assert set(cmp.table["verdict"]) == {"agrees"}, cmp.table.loc[cmp.table["verdict"] != "agrees", "reason"]


def test_six_collapsed_mnist16_relu_seeds_are_flagged(tmp_path, reference):
    ws = tmp_path / "ws"
    copy_study(ws, "usps", LADDER + FAITHFUL)
    paths = copy_study(ws, "mnist16", LADDER)
    relu = [p for p in paths if p.name.startswith("relu-")]
    stable = [p for p in relu if json.loads(p.read_text())["final"]["train_error"] < 0.5]
    committed = len(relu) - len(stable)  # collapsed in the committed study (0 or 1 of 16 so far)
    assert len(relu) == 16 and committed <= 1
    for p in stable[: 6 - committed]:  # six of 16 collapsed in all
        edit(p, train_error=0.893, test_error=0.894)
    runs = group_records(load_records(ws).records)
    cmp = compare.compare_groups(runs, reference)
    t = cmp.table.set_index(["dataset", "label"])
    row = t.loc[("mnist16", "relu")]
    assert (row.collapsed, row.reference_collapsed) == (6, committed)
    assert row.collapse_verdict == "differs" and row.verdict == "differs"
    assert list(t.index[t["verdict"] == "differs"]) == [("mnist16", "relu")]


def test_a_tripled_train_error_of_paper_is_flagged(tmp_path, reference):
    ws = tmp_path / "ws"
    copy_study(ws, "usps", LADDER + FAITHFUL)
    copy_study(ws, "mnist16", LADDER)
    for p in (ws / "runs" / "usps").glob("paper-*-s*.json"):
        rec = json.loads(p.read_text())
        edit(p, train_error=3 * rec["final"]["train_error"])
    cmp = compare.compare_groups(group_records(load_records(ws).records), reference)
    t = cmp.table.set_index(["dataset", "label"])
    row = t.loc[("usps", "paper")]
    assert row.train_error_verdict == "differs" and row.test_error_verdict == "agrees"
    assert row.train_error_ratio == pytest.approx(3.0, rel=1e-6)
    assert list(t.index[t["verdict"] == "differs"]) == [("usps", "paper")]


def test_report_check_on_the_command_line(tmp_path):
    from repro.cli import main

    ws = tmp_path / "ws"
    paths = copy_study(ws, "mnist16", ("relu",))
    runner = CliRunner()
    ok = runner.invoke(main, ["report", "--check", "--no-figures", "--results-dir", str(ws)])
    assert ok.exit_code == 0, ok.output
    for p in [p for p in paths if json.loads(p.read_text())["final"]["train_error"] < 0.5][:5]:
        edit(p, train_error=0.9, test_error=0.9)
    flagged = runner.invoke(main, ["report", "--check", "--no-figures", "--results-dir", str(ws)])
    assert flagged.exit_code != 0 and "mnist16/relu" in flagged.output


# ----------------------------------------------------------------------------------------- calibration
def synthetic_groups(rng: np.random.Generator, configs: int = 19, runs: int = 16) -> dict:
    """`configs` configurations of `runs` normal runs each (test error about 3-6%, train error log-normal); the
    first has one collapsed run, as the committed mnist16 relu row."""
    groups = {}
    for c in range(configs):
        records = []
        for s in range(runs):
            collapsed = c == 0 and s == 0
            test = 0.9 if collapsed else rng.normal(3 + 3 * c / configs, 0.3) / 100
            train = 0.9 if collapsed else math.exp(rng.normal(math.log(0.5), 0.25)) / 100
            records.append({"seed": s, "diverged_at_pass": None, "collapsed": collapsed,
                            "final": {"test_error": test, "train_error": train}})
        groups[("synthetic", f"c{c:02d}")] = Group("synthetic", f"c{c:02d}", records)
    return groups


def test_family_wise_false_flag_rate_holds_on_synthetic_records():
    groups = synthetic_groups(np.random.default_rng(0))
    rate = calibration.false_flag_rate(groups, resamples=4000, rng_seed=1)
    assert rate.value <= 0.01, rate
    assert rate.low <= rate.value <= rate.high


def test_power_on_synthetic_records_is_what_welch_gives():
    groups = synthetic_groups(np.random.default_rng(0), configs=4)
    shifts = calibration.detectable_shifts(groups, resamples=400, rng_seed=2)
    # Normal runs, std 0.3 points, 16 seeds a side, level 0.005 / 8: about (3.7 + 0.84) x 0.3 x sqrt(2/16).
    for d in shifts[1:]:
        assert 0.35 <= d.test_shift_pp <= 0.75, d
        assert 1.15 <= d.train_ratio <= 1.8, d
    assert calibration.smallest_flagged_collapses(1) == 6 and calibration.smallest_flagged_collapses(0) == 5


def test_halves_put_no_run_on_both_sides():
    o = calibration.Outcomes(("s", "c"), np.arange(16.0), np.zeros(16), np.zeros(16, dtype=bool))
    iu, ir = calibration._draws(np.random.default_rng(0), o, 8, 50, halves=True)
    assert iu.shape == ir.shape == (50, 8)
    for a, b in zip(iu, ir):
        assert sorted(np.concatenate([a, b]).tolist()) == list(range(16))  # the two halves of one order
    assert len({tuple(sorted(a)) for a in iu}) > 40  # a new split each draw


def test_the_collapse_family_holds_its_level_where_collapses_are_common():
    """Configurations that collapse in about a third of their runs: the collapse tests are played, and with no
    run on both sides (where Fisher's test is exact) the check flags at most its level."""
    rng = np.random.default_rng(3)
    groups = synthetic_groups(rng, configs=12)
    for c in range(6):
        key = ("synthetic", f"c{c:02d}")
        records = [dict(r, collapsed=bool(rng.random() < 0.35)) for r in groups[key].records]
        for r in records:
            if r["collapsed"]:
                r["final"] = {"test_error": 0.9, "train_error": 0.9}
        groups[key] = Group("synthetic", key[1], records)
    rate = calibration.false_flag_rate(groups, resamples=2000, rng_seed=4, halves=True)
    assert rate.flagged <= rate.by_collapse + rate.by_error
    assert rate.value <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / rate.draws), rate
    boot = calibration.false_flag_rate(groups, resamples=2000, rng_seed=4)
    assert boot.by_collapse > 0  # the collapse family is exercised
