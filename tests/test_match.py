"""The one rule for a match with the paper (repro.report.match) and the collapse-threshold table
(repro.report.thresholds), on known numbers and synthetic records; and the committed claims that read them fail
when the values they read are moved past their conditions."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from repro.report import claims, match, thresholds
from repro.report.records import group_records

from .test_report import make_record

REPO = Path(__file__).resolve().parents[1]


def test_prediction_interval_is_mean_plus_minus_t_s_root_one_plus_one_over_n():
    values = [5.0, 5.2, 5.4, 5.6, 5.8]  # mean 5.4, s = sqrt(0.1); t(0.975, 4) = 2.776445
    half = 2.7764451 * math.sqrt(0.1) * math.sqrt(1 + 1 / 5)
    row = match.prediction(values, 5.0, "linear")
    assert row["pi_low"] == pytest.approx(5.4 - half, abs=1e-6)
    assert row["pi_high"] == pytest.approx(5.4 + half, abs=1e-6)
    assert row["verdict"] == "matches"
    assert match.prediction(values, 5.4 + 1.01 * half, "linear")["verdict"] == "does not match"
    assert match.prediction(values, 5.4 - 1.01 * half, "linear")["verdict"] == "does not match"
    assert row["p_new_run"] == pytest.approx(0.3, abs=0.2)


def test_losses_are_compared_on_the_log_scale():
    values = [1e-3, 2e-3, 4e-3]  # log-symmetric around 2e-3
    row = match.prediction(values, 2e-3, "log")
    assert row["pi_low"] * row["pi_high"] == pytest.approx(4e-6, rel=1e-9)
    assert row["distance"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        match.prediction([1e-3, -1e-3], 1e-3, "log")


def _groups(test_errors, train_errors, label="baseline", **changes):
    recs = [dict(make_record(label=label, seed=s, test_error=te, train_error=tr, config_changes=changes),
                 _file=f"{s}.json") for s, (te, tr) in enumerate(zip(test_errors, train_errors))]
    return group_records(recs)


def test_every_reported_number_gets_a_row_and_fc40_is_set_against_its_own_column():
    g = _groups([0.05, 0.052, 0.054, 0.056], [0.0014] * 3 + [0.0016])
    df = match.build_table(g, ["baseline"], "usps")
    assert list(df.measure) == [m[0] for m in match.MEASURES]
    assert set(df.verdict) <= {"matches", "does not match"}
    fc = _groups([0.08, 0.081, 0.082, 0.083], [0.016, 0.017, 0.015, 0.016], architecture="fc40")
    df = match.build_table(fc, ["baseline"], "usps")
    assert list(df.measure) == ["train_error", "test_error", "test_rejection_at_1pct"]  # FC-40 gives no losses
    assert df.set_index("measure").loc["test_error", "paper"] == 8.1
    assert "8.10" in match.markdown(df)


def test_threshold_table_moves_a_run_between_collapsed_and_stable():
    # one run at 45% training error: collapsed above 40%, not above 50% or 60%; one diverged run: always.
    recs = [make_record(label="relu", seed=s, test_error=0.06, train_error=0.01) for s in range(3)]
    recs.append(make_record(label="relu", seed=3, test_error=0.4, train_error=0.45))
    recs.append(make_record(label="relu", seed=4, diverged_at=2))
    recs += [make_record(label="baseline", seed=s, test_error=0.06 + 0.001 * s) for s in range(4)]
    recs = [dict(r, _file=f"{i}.json") for i, r in enumerate(recs)]
    df = thresholds.build_table(group_records(recs), ["baseline", "relu"])
    counts = df[df.quantity == "ladder `relu`: collapsed runs"].set_index("rule").value
    assert counts.to_dict() == {"above 40%": 2.0, "above 50%": 1.0, "above 60%": 1.0, "diverged only": 1.0}
    text = thresholds.markdown(df)
    assert "| usps | ladder `relu`: collapsed runs | 2 of 5 | 1 of 5 | 1 of 5 | 1 of 5 | yes |" in text


# The committed claims that read the match and threshold tables, each checked to fail when a value it reads is
# moved past its condition (the table's cell rewritten, not deleted).
PERTURBATIONS = [
    ("paper-matches-all-five-numbers", "match-usps", {"label": "paper", "measure": "test_error"}, "verdict",
     "does not match"),
    ("paper-test-error-one-draw-away", "match-usps", {"label": "paper", "measure": "test_error"}, "p_new_run", 0.01),
    ("target-1.2-matches-four-not-test-loss", "match-usps", {"label": "target-1.2", "measure": "test_loss"},
     "verdict", "matches"),
    ("fc40-errors-do-not-match-paper-fc40", "match-usps", {"label": "fc40", "measure": "test_error"}, "verdict",
     "matches"),
    ("paper-and-target-1.2-match-test-error", "match-usps", {"label": "target-1.2", "measure": "test_error"},
     "verdict", "does not match"),
    ("adamw-step-no-collapse-and-its-threshold", "thresholds",
     {"dataset": "usps", "quantity": "ladder step to `adamw`: test error pp", "rule": "above 40%"}, "significant", 0),
]


@pytest.fixture(scope="module")
def committed_groups():
    from repro.report.records import load_records
    return group_records(load_records(REPO / "results", warn=lambda m: None).records)


@pytest.mark.parametrize("name,table,row,column,value", PERTURBATIONS, ids=[p[0] for p in PERTURBATIONS])
def test_a_committed_claim_fails_when_its_table_is_moved(tmp_path, committed_groups, name, table, row, column, value):
    import pandas as pd

    tables_dir = tmp_path / "tables"
    shutil.copytree(REPO / "paper" / "tables", tables_dir)
    claims.evaluate(REPO / "paper" / "claims.toml", tables_dir, committed_groups, {name})  # holds as committed
    df = pd.read_csv(tables_dir / f"{table}.csv", keep_default_na=False, na_values=[""])
    mask = np.ones(len(df), dtype=bool)
    for col, v in row.items():
        mask &= df[col].astype(str) == v
    assert mask.sum() == 1
    df[column] = df[column].astype(object)
    df.loc[mask, column] = value
    df.to_csv(tables_dir / f"{table}.csv", index=False)
    with pytest.raises(claims.ClaimError, match=f"claim {name}: no longer holds"):
        claims.evaluate(REPO / "paper" / "claims.toml", tables_dir, committed_groups, {name})
