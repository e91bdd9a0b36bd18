"""repro.report.peers on synthetic runs: where a peer's single figure falls among our seeds, and the distance of
our run from the peer's initial weights to what the peer's code gives."""

import io
import math

import pandas as pd
import pytest

from repro.data import dataset_spec
from repro.report import peers
from repro.report.records import Group
from repro.report.references import PEER_DRAW, PEER_FIGURES, PEER_SEED, PEER_WEIGHTS_LABEL, PeerFigure, Reference

RERUNS = peers.code_reruns()
THEIRS = RERUNS.table.set_index("draw").loc[PEER_DRAW]


def _group(label: str, test_errors: list[float], train_errors: list[float] | None = None, *, seeds=None,
           dataset: str = "mnist16", losses=(4e-3, 3e-2)) -> Group:
    """A group of finished runs whose final errors (fractions) are the given ones."""
    train_errors = train_errors or [0.006] * len(test_errors)
    seeds = seeds or list(range(len(test_errors)))
    recs = [{"seed": s, "passes": 23, "engine": "reference", "diverged_at_pass": None, "collapsed": False,
             "final": {"train_error": tr, "test_error": te, "train_loss": losses[0], "test_loss": losses[1]}}
            for s, tr, te in zip(seeds, train_errors, test_errors)]
    return Group(dataset, label, recs)


FIG = PeerFigure(Reference(name="peer", dataset="mnist16", source="src", passes=23, train_error=0.3,
                           test_error=4.0), "baseline", "its difference", True)


def test_percentile_is_mid_rank_and_where_names_the_side():
    ours = [1.0, 2.0, 3.0, 4.0]
    assert peers.percentile(2.5, ours) == 50.0
    assert peers.percentile(2.0, ours) == 100.0 * 1.5 / 4  # one below, one equal
    assert peers.percentile(0.5, ours) == 0.0 and peers.percentile(9.0, ours) == 100.0
    assert math.isnan(peers.percentile(1.0, []))
    assert peers.where(0.5, ours) == "below our range" and peers.where(9.0, ours) == "above our range"
    assert peers.where(1.0, ours) == peers.where(4.0, ours) == "inside our range"
    assert peers.where(1.0, []) == "no runs of ours"


def test_table_places_each_split_of_a_figure_among_our_seeds():
    test = [0.030, 0.035, 0.045, 0.050]
    train = [0.004, 0.006, 0.007, 0.009]
    table = peers.build_table({("mnist16", "baseline"): _group("baseline", test, train)}, "mnist16", (FIG,))
    assert list(table["split"]) == ["train", "test"]
    row = table.set_index("split").loc["test"]
    ours = [100 * e for e in test]
    assert row["peer %"] == 4.0 and row["seeds"] == 4 and row["kind"] == peers.REPRODUCIBLE
    assert row["ours median %"] == pytest.approx(sorted(ours)[1] / 2 + sorted(ours)[2] / 2)
    assert row["ours min %"] == pytest.approx(min(ours)) and row["ours max %"] == pytest.approx(max(ours))
    assert row["percentile"] == peers.percentile(4.0, ours) and row["where"] == "inside our range"
    assert table.set_index("split").loc["train", "where"] == "below our range"
    assert row["differs"] == "its difference"


def test_a_rung_without_runs_is_shown_empty_and_missing_splits_are_skipped():
    only_test = PeerFigure(Reference(name="p", dataset="mnist16", source="s", test_error=1.6), "modern-2022", "", False)
    table = peers.build_table({}, "mnist16", (only_test,))
    assert len(table) == 1 and table.loc[0, "seeds"] == 0 and table.loc[0, "where"] == "no runs of ours"
    assert table.loc[0, "kind"] == peers.DRAW
    assert "| `modern-2022` |" in peers.section_markdown(table, "mnist16", None)


def test_every_peer_figure_stands_beside_a_rung_we_define():
    from repro.jobs.ladder import DEFAULT_LADDER_DIR, extra_rungs, load_rungs

    names = set()
    for folder in (DEFAULT_LADDER_DIR, DEFAULT_LADDER_DIR / "peers"):
        names |= {r.name for r in load_rungs(folder) + extra_rungs(folder)}
    assert {f.rung for f in PEER_FIGURES} <= names
    assert PEER_WEIGHTS_LABEL in names


def test_rerun_distance_counts_misses_from_the_peer_code():
    spec = dataset_spec("mnist16")
    train, test = THEIRS.train_misses + 2, THEIRS.test_misses - 1
    g = _group(PEER_WEIGHTS_LABEL, [test / spec.n_test], [train / spec.n_train], seeds=[PEER_SEED])
    text = peers.rerun_distance({("mnist16", PEER_WEIGHTS_LABEL): g}, RERUNS)
    assert f"ends at {train} train / {test} test misses" in text
    assert "Distance: +2 train, -1 test misses" in text
    other_seed = _group(PEER_WEIGHTS_LABEL, [0.04], seeds=[0])
    assert peers.rerun_distance({("mnist16", PEER_WEIGHTS_LABEL): other_seed}, RERUNS) is None
    assert peers.rerun_distance({}, RERUNS) is None


def test_write_puts_csv_and_markdown_and_returns_the_section(tmp_path):
    written = {}
    groups = {("mnist16", "baseline"): _group("baseline", [0.04, 0.042, 0.038])}
    sections = peers.write(groups, tmp_path, lambda path, data: written.__setitem__(path, data))
    assert set(written) == {tmp_path / "peers-mnist16.csv", tmp_path / "peers-mnist16.md"}
    assert len(sections) == 1 and sections[0] + "\n" == written[tmp_path / "peers-mnist16.md"].decode()
    csv = pd.read_csv(io.StringIO(written[tmp_path / "peers-mnist16.csv"].decode()))
    assert list(csv.columns) == list(peers.COLUMNS)
    assert len(csv) == sum((f.ref.train_error is not None) + (f.ref.test_error is not None) for f in PEER_FIGURES)
    assert peers.write({("usps", "baseline"): _group("baseline", [0.05], dataset="usps")}, tmp_path,
                       lambda p, d: None) == []
    rerun_only = {("mnist16", PEER_WEIGHTS_LABEL): _group(PEER_WEIGHTS_LABEL, [0.04], seeds=[PEER_SEED])}
    (section,) = peers.write(rerun_only, tmp_path, lambda p, d: None)
    assert "Distance:" in section


def test_the_report_writes_the_peers_table_and_section(tmp_path):
    from tests.test_report import make_record, report, write

    from repro.jobs.ladder import DEFAULT_LADDER_DIR

    for seed, err in enumerate((0.040, 0.042, 0.038)):
        write(tmp_path / "results", make_record("mnist16", "baseline", seed, test_error=err, passes=23))
    write(tmp_path / "results", make_record("mnist16", PEER_WEIGHTS_LABEL, PEER_SEED, passes=23,
                                            test_error=85 / 2007, train_error=44 / 7291,
                                            config_changes={"init": "repro2022"}))
    outcome, _ = report(tmp_path, DEFAULT_LADDER_DIR, make_figures=False)
    assert tmp_path / "paper" / "tables" / "peers-mnist16.md" in outcome.written
    text = (tmp_path / "results" / "results.md").read_text()
    assert "The peers' single runs beside our seeds (mnist16)" in text
    assert "Distance: +0 train, +1 test misses" in text


def test_the_peer_codes_reruns_on_both_draws_are_committed_data_the_report_reads():
    assert list(RERUNS.table.draw) == ["test-first", "train-first"]
    assert RERUNS.command.startswith("REPRO_DATA_DIR=") and "rerun_peer_code.py" in RERUNS.command
    text = peers.code_rerun_text(RERUNS)
    for r in RERUNS.table.itertuples():
        assert f"{r.draw}: {r.train_misses} / {r.test_misses}" in text
    assert set(RERUNS.table.our_run) == {PEER_WEIGHTS_LABEL} and set(RERUNS.table.seed) == {PEER_SEED}


def test_argmax_scores_give_each_figure_a_percentile_under_both_rules():
    test, train = [0.030, 0.035, 0.045, 0.050], [0.004, 0.006, 0.007, 0.009]
    groups = {("mnist16", "baseline"): _group("baseline", test, train)}
    argmax = {"mnist16": {"baseline": {"test_error": [2.0, 3.0, 4.5, 5.0], "train_error": [0.1, 0.2, 0.3, 0.4]}}}
    table = peers.build_table(groups, "mnist16", (FIG,), argmax=argmax).set_index("split")
    assert table.loc["test", "argmax seeds"] == 4
    assert table.loc["test", "argmax percentile"] == peers.percentile(4.0, [2.0, 3.0, 4.5, 5.0]) == 50.0
    assert table.loc["test", "percentile"] == peers.percentile(4.0, [100 * e for e in test])
    assert table.loc["train", "argmax where"] == "inside our range"
    plain = peers.build_table(groups, "mnist16", (FIG,)).set_index("split")
    assert plain.loc["test", "argmax seeds"] == 0 and math.isnan(plain.loc["test", "argmax percentile"])
    assert "| percentile, argmax |" in peers.section_markdown(table.reset_index(), "mnist16", None)


def test_committed_checkpoints_scored_by_argmax_never_count_more_errors_than_the_tie_rule():
    """The committed mnist16 rungs beside the peers' figures with every seed's checkpoint kept: argmax scores
    each run at most as many errors as its record (ties counted as errors), within one pattern of the plain
    forward's rounding, and every such rung is scored."""
    from pathlib import Path

    from repro.report.records import group_records, load_records

    results = Path(__file__).resolve().parents[1] / "results"
    groups = group_records(load_records(results, warn=lambda m: None).records)
    warnings: list[str] = []
    scores = peers.argmax_scores(groups, results, None, warnings.append)["mnist16"]
    assert not warnings and scores
    for rung, by_key in scores.items():
        g = groups[("mnist16", rung)]
        for key, n in (("test_error", 2007), ("train_error", 7291)):
            recorded = g.values(key, 100.0)
            assert len(by_key[key]) == len(recorded) == 16
            assert all(a <= t + 100.5 / n for a, t in zip(by_key[key], recorded)), (rung, key)
