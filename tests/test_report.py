"""Tests for the report (repro.report) and the run record (repro.jobs.record) on small synthetic stores and
on copies of the committed records.

Records are written by `make_record`, which mirrors runner._record (a test checks that the key sets match);
the statistics are checked against values computed by hand. Each test uses its own ladder folder (three
rungs) so edits to ablations/ cannot change the expected rows. The report is called through its API
(write_report); the command line's flags are tested with the command line.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from repro import __version__
from repro.config import Config
from repro.net.model import init_params, run_generator
from repro.report import compare, plots
from repro.report.build import Report, write_report
from repro.report.records import ReportError, group_records, load_records
from repro.report.references import KARPATHY_BASELINE, PAPER
from repro.report.stats import summarize, t_cdf, t_quantile, welch_interval
from repro.jobs.record import RecordError, RunRecord, read_record, schema_markdown
from repro.atomic_files import atomic_torch_save, atomic_write_json
from repro.jobs.run_key import RunKey

from .conftest import REPO, data_dir

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LADDER = ("baseline", "relu", "adamw")
PATCHES = {"baseline": {}, "relu": {"hidden_activation": "relu"}, "adamw": {"optimizer": "adamw", "lr": 3e-4}}
FINGERPRINT = {"usps": "2c8560c6fec64987", "mnist16": "15263d2375cf273d"}


# ----------------------------------------------------------------------------------------- helpers
@pytest.fixture
def ladder_dir(tmp_path) -> Path:
    d = tmp_path / "ladder"
    d.mkdir()
    for i, name in enumerate(LADDER):
        patch = "".join(f"{k} = {json.dumps(v)}\n" for k, v in PATCHES[name].items())
        (d / f"{i:02d}-{name}.toml").write_text(
            f'name = "{name}"\ntitle = "Rung {name}"\nrationale = "test"\nsource = "test"\n\n[patch]\n{patch}'
        )
    return d


def rung_config(label: str, passes: int, **changes) -> Config:
    patch: dict = {}
    for name in LADDER[: LADDER.index(label) + 1] if label in LADDER else ():
        patch.update(PATCHES[name])
    return Config().replace(**patch, passes=passes, **changes)


def _mode_and_changes(label: str) -> dict:
    """The mode and changes the ladder gives a configuration of this label (repro.jobs.ladder's names)."""
    if label.startswith("f:"):
        return {"mode": "factorial", "changes": [] if label == "f:baseline" else label[2:].split("+")}
    if label.startswith("guess:"):
        on, guess = label[len("guess:"):].split("+", 1)
        return {"mode": "guesses", "changes": [*LADDER[1: LADDER.index(on) + 1], guess] if on in LADDER else [guess]}
    return {"mode": "cumulative", "changes": list(LADDER[1: LADDER.index(label) + 1]) if label in LADDER else []}


def make_record(dataset: str = "usps", label: str = "baseline", seed: int = 0, *, test_error: float = 0.05,
                train_error: float = 0.01, passes: int = 3, diverged_at: int | None = None,
                rejection: float = 0.1, fingerprint: str | None = None, repro_version: str = __version__,
                config_changes: dict | None = None, created: str = "2026-01-01T00:00:00+00:00") -> dict:
    """A valid record (the shape runner._record writes) whose final errors are the given fractions."""
    cfg = rung_config(label, passes, **(config_changes or {}))
    done = passes if diverged_at is None else diverged_at - 1
    decay = [2.0 ** (done - 1 - p) for p in range(done)]  # errors fall to their final value on the last pass
    history = {
        "train_loss": [train_error * 0.5 * d for d in decay],
        "train_error": [train_error * d for d in decay],
        "test_loss": [test_error * 0.4 * d for d in decay],
        "test_error": [test_error * d for d in decay],
    }
    final = {k: v[-1] for k, v in history.items()} if done else {}
    if final:
        final["train_mistakes"] = round(final["train_error"] * 7291)
        final["test_mistakes"] = round(final["test_error"] * 2007)
    if diverged_at is None:
        final["test_rejection_at_1pct"] = rejection
        final["test_rejection_curve"] = {f"{t:g}": max(0.0, rejection * (1 - 40 * (t - 0.01)))
                                         for t in (0.0, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05)}
    return {
        "schema": 2, "rung": label if label in LADDER else "baseline", "label": label, **_mode_and_changes(label),
        "rung_title": f"Rung {label}", "dataset": dataset,
        "dataset_fingerprint": fingerprint or FINGERPRINT[dataset], "seed": seed, "config": cfg.to_dict(),
        "config_digest": cfg.digest(), "passes": passes, "presentations": passes * 7291,
        "diverged_at_pass": diverged_at, **history, "final": final,
        "collapsed": diverged_at is not None or train_error > 0.5, "engine": "population",
        "population_members": 4, "wall_time_s": 1.5, "device": "cpu (test)",
        "versions": {"repro": repro_version, "python": "3.11.7", "torch": "2.13.0", "numpy": "2.4.6"},
        "git_commit": "abc123", "created": created,
    }


def write(results_dir: Path, rec: dict) -> Path:
    path = RunKey.of_record(rec).record_path(results_dir)
    atomic_write_json(path, rec)
    return path


def write_checkpoint(results_dir: Path, rec: dict) -> Path:
    cfg = Config().replace(**rec["config"])
    path = RunKey.of_record({**rec, "seed": 0}).checkpoint_path(results_dir)
    atomic_torch_save(path, {"config": rec["config"], "dataset": rec["dataset"], "seed": 0,
                             "state_dict": init_params(cfg, run_generator(7))})
    return path


def report(tmp_path: Path, ladder_dir: Path, **kw) -> tuple[Report, str]:
    """The study report of tmp_path/results into tmp_path/paper (no data: the digits figure is skipped);
    returns the outcome and the warnings, one per line."""
    lines: list[str] = []
    kw.setdefault("data_dir", str(tmp_path / "no-data"))
    if kw.setdefault("study", True):
        kw.setdefault("paper_dir", tmp_path / "paper")
    outcome = write_report(tmp_path / "results", ladder_dir=ladder_dir, warn=lines.append, **kw)
    return outcome, "\n".join(lines)


def table(tmp_path: Path, dataset: str = "usps") -> pd.DataFrame:
    return pd.read_csv(tmp_path / "paper" / "tables" / f"{dataset}.csv", keep_default_na=False, na_values=[""])


def is_png(path: Path) -> bool:
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return False
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(data)).ndim == 3


# ----------------------------------------------------------------------------------------- statistics
def test_t_quantile_matches_tables_and_closed_forms():
    assert t_quantile(0.975, 10) == pytest.approx(2.228139, abs=2e-6)  # printed t table
    assert t_quantile(0.975, 30) == pytest.approx(2.042272, abs=2e-6)
    assert t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-9)  # Cauchy
    p = 0.975  # df = 2 has the closed form t = (2p - 1) / sqrt(2 p (1 - p))
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=2e-6)
    assert t_quantile(0.025, 10) == pytest.approx(-2.228139, abs=2e-6)


def test_t_cdf_fractional_df_against_numerical_integration():
    df, t = 7.5, 2.1
    x = np.linspace(0.0, t, 200_001)
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    dens = np.exp(logc - (df + 1) / 2 * np.log1p(x * x / df))
    integral = float(np.sum((dens[1:] + dens[:-1]) / 2 * np.diff(x)))
    assert t_cdf(t, df) == pytest.approx(0.5 + integral, abs=1e-9)
    assert t_cdf(t_quantile(0.975, df), df) == pytest.approx(0.975, abs=1e-12)


def test_summary_and_welch_interval_by_hand():
    s = summarize([5.0, 6.0, 7.0])
    assert (s.n, s.mean, s.std, s.min, s.max) == (3, 6.0, 1.0, 5.0, 7.0)
    assert math.isnan(summarize([4.0]).std)
    # equal n and variances: Welch df = 2 (n - 1) = 10, se = sqrt(2 * 3.5 / 6)
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    iv = welch_interval(a, [v + 2 for v in a])
    half = 2.228139 * math.sqrt(7 / 6)
    assert iv.df == pytest.approx(10.0)
    assert (iv.diff, iv.low, iv.high) == pytest.approx((2.0, 2.0 - half, 2.0 + half), abs=1e-5)
    # unequal: var 1 (n 3) against var 20/3 (n 4): df = 2^2 / ((1/3)^2/2 + (5/3)^2/3) = 216/53
    iv = welch_interval([1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0])
    assert iv.df == pytest.approx(216 / 53)
    assert iv.diff == pytest.approx(3.0)
    assert iv.high - iv.diff == pytest.approx(t_quantile(0.975, 216 / 53) * math.sqrt(2.0))
    assert math.isnan(welch_interval([1.0], [2.0, 3.0]).low)


# ----------------------------------------------------------------------------------------- records
def test_make_record_has_the_shape_runner_writes():
    from repro.data import Dataset
    from repro.jobs.ladder import PlannedConfig, Rung
    from repro.jobs.runner import MemberHistory, MemberResult, build_record

    cfg = Config().replace(passes=2)
    n = 40
    ds = Dataset("usps", torch.zeros(n, 16, 16), torch.arange(n) % 10, torch.zeros(n, 16, 16),
                 torch.arange(n) % 10, "fp")
    history = MemberHistory()
    for p in range(2):
        history.add(p, 0.5, 0.25, 0.5, 0.25)
    result = MemberResult(0, history, {}, torch.randn(n, 10), {}, 1.0, 1)
    real = build_record(PlannedConfig("baseline", Rung(0, "baseline", "t", "", ""), cfg), ds, result, "population",
                        torch.device("cpu")).to_json()
    fake = make_record(passes=2)
    assert RunRecord.from_json(fake).to_json() == fake
    assert list(fake) == list(real)
    assert set(fake["final"]) == set(real["final"])
    assert set(fake["final"]["test_rejection_curve"]) == set(real["final"]["test_rejection_curve"])
    assert set(fake["versions"]) == set(real["versions"])


def test_table_rows_order_and_statistics(tmp_path, ladder_dir):
    res = tmp_path / "results"
    for seed, err in enumerate((0.05, 0.06, 0.07)):
        write(res, make_record(label="baseline", seed=seed, test_error=err, train_error=0.002 * (seed + 1),
                               rejection=0.10 + 0.01 * seed))
    for seed, err in enumerate((0.04, 0.05)):
        write(res, make_record(label="adamw", seed=seed, test_error=err))
    write(res, make_record(label="zz-extra", config_changes={"dropout": 0.5}))
    write(res, make_record(label="aa-extra", config_changes={"dropout": 0.25}))
    write(res, make_record("mnist16", label="relu", test_error=0.03))

    report(tmp_path, ladder_dir, make_figures=False)
    df = table(tmp_path)
    assert list(df["label"]) == ["baseline", "adamw", "aa-extra", "zz-extra", PAPER.name]  # ladder, then sorted
    assert list(df["kind"]) == ["run"] * 4 + ["reference"]
    base = df.iloc[0]
    assert (base.seeds, base.diverged, base.passes) == (3, 0, 3)
    assert (base.test_error_mean, base.test_error_std, base.test_error_min, base.test_error_max) == pytest.approx(
        (6.0, 1.0, 5.0, 7.0))
    assert (base.train_error_mean, base.train_error_std) == pytest.approx((0.4, 0.2))
    assert base.test_loss_mean == pytest.approx(0.4 * 0.06)
    assert (base.rejection_1pct_mean, base.rejection_1pct_std) == pytest.approx((11.0, 1.0))
    assert math.isnan(base.delta_test_error)
    adamw = df.iloc[1]
    iv = welch_interval([5.0, 6.0, 7.0], [4.0, 5.0])
    assert adamw.delta_vs == "baseline"  # relu has no usps runs: the previous rung present
    assert (adamw.delta_test_error, adamw.delta_ci_low, adamw.delta_ci_high) == pytest.approx(
        (-1.5, iv.low, iv.high), rel=1e-5)
    assert list(df["delta_vs"].fillna("")) == ["", "baseline", "baseline", "baseline", ""]
    assert list(table(tmp_path, "mnist16")["label"]) == ["relu", KARPATHY_BASELINE.name, "Karpathy 2022: modernised"]

    md = (tmp_path / "results" / "results.md").read_text()
    assert md.index("## usps") < md.index("## mnist16")
    assert ("| `baseline` | 3 | 3 | none | 0.40 ± 0.20 (0.20–0.60), median 0.40 | 6.00 ± 1.00 (5.00–7.00), "
            "median 6.00 |") in md
    assert "Welch" in md
    tex = (tmp_path / "paper" / "tables" / "usps.tex").read_text()
    assert r"6.00 $\pm$ 1.00" in tex and r"\textit{paper: Net-1989, its own data}" in tex
    assert "aa-extra" in tex and r"\end{tabular}" in tex


def test_diverged_runs_are_counted_not_averaged(tmp_path, ladder_dir):
    res = tmp_path / "results"
    for seed, err in enumerate((0.05, 0.06, 0.07)):
        write(res, make_record(seed=seed, test_error=err))
    write(res, make_record(seed=3, test_error=0.9, diverged_at=3))  # final holds pass 2's numbers
    write(res, make_record(seed=4, diverged_at=1))  # diverged in the first pass: empty history and final
    report(tmp_path, ladder_dir)
    base = table(tmp_path).iloc[0]
    assert (base.seeds, base.diverged) == (5, 2)
    assert (base.test_error_mean, base.test_error_std, base.test_error_max) == pytest.approx((6.0, 1.0, 7.0))
    assert "| `baseline` | 3 | 5 (2 diverged) |" in (res / "results.md").read_text()
    assert is_png(tmp_path / "paper" / "figures" / "learning_curves.png")


def test_damaged_and_foreign_files_warn_or_stop_under_strict(tmp_path, ladder_dir):
    res = tmp_path / "results"
    write(res, make_record(seed=0))
    write(res, make_record(seed=1, test_error=0.07))
    (res / "runs" / "usps" / "broken.json").write_text('{"schema": 1, "label": ')
    missing = make_record(seed=2)
    del missing["final"]
    write(res, missing)
    (res / "runs" / "usps" / "notes.txt").write_text("not a record\n")
    moved = make_record(seed=5)
    atomic_write_json(res / "runs" / "usps" / "copy-of-run.json", moved)
    (res / "runs" / "usps" / ".baseline-x-s009.json.abc.tmp").write_text("{")  # a write in progress: ignored

    _, out = report(tmp_path, ladder_dir, make_figures=False)
    name_missing = RunKey.of_record(missing).file_name
    for expected in ("runs/usps/broken.json: not valid JSON", f"runs/usps/{name_missing}: missing field(s) final",
                     "runs/usps/notes.txt: not a run record", "runs/usps/copy-of-run.json: file name does not match"):
        assert expected in out
    assert ".tmp" not in out
    md = (res / "results.md").read_text()
    assert "4 file(s) skipped" in md and "runs/usps/broken.json" in md
    assert table(tmp_path).iloc[0].seeds == 2

    with pytest.raises(ReportError) as e:
        report(tmp_path, ladder_dir, make_figures=False, strict=True)
    assert f"runs/usps/{name_missing}: missing field(s) final" in str(e.value)  # the first bad file in name order
    assert "--strict" in str(e.value)
    (res / "runs" / "usps" / name_missing).unlink()
    with pytest.raises(ReportError, match="runs/usps/broken.json: not valid JSON"):
        load_records(res, strict=True)


def test_strict_passes_on_a_clean_store(tmp_path, ladder_dir):
    write(tmp_path / "results", make_record())
    (tmp_path / "results" / "runs" / "usps" / ".x.json.tmp").write_text("{")
    report(tmp_path, ladder_dir, make_figures=False, strict=True)


@pytest.mark.parametrize("field", ["fingerprint", "digest", "version"])
def test_incompatible_records_are_dropped_with_a_warning(tmp_path, ladder_dir, field):
    res = tmp_path / "results"
    for seed, err in enumerate((0.05, 0.06, 0.07)):
        write(res, make_record(seed=seed, test_error=err))
    odd = {"fingerprint": {"fingerprint": "0000000000000000"}, "digest": {"config_changes": {"lr": 0.1}},
           "version": {"repro_version": "0.0.1"}}[field]
    odd_rec = make_record(seed=3, test_error=0.5, created="2027-01-01T00:00:00+00:00", **odd)
    odd_path = write(res, odd_rec)
    _, out = report(tmp_path, ladder_dir, make_figures=False)
    base = table(tmp_path).iloc[0]
    assert base.seeds == 3 and base.test_error_mean == pytest.approx(6.0)
    rel = "runs/" + odd_path.relative_to(res / "runs").as_posix()
    shown = {"fingerprint": "dataset_fingerprint 0000000000000000", "digest": f"config_digest {odd_rec['config_digest']}",
             "version": "repro version 0.0.1"}[field]
    for text in (out, (res / "results.md").read_text()):
        assert "usps/baseline: dropped 1 record(s)" in text and rel in text and shown in text
        assert "1 record(s) dropped as incompatible" in text or "dropped 1 record(s)" in text


def test_report_is_deterministic_and_writes_valid_pngs(tmp_path, ladder_dir):
    res = tmp_path / "results"
    for ds in ("usps", "mnist16"):
        for k, label in enumerate(LADDER):
            for seed in range(3):
                rec = make_record(ds, label, seed, test_error=0.06 - 0.01 * k + 0.002 * seed, train_error=0.001 * seed)
                write(res, rec)
                if seed == 0 and ds == "usps" and label != "relu":
                    write_checkpoint(res, rec)
    write(res, make_record("usps", "adamw", 3, diverged_at=2))
    _, out = report(tmp_path, ladder_dir)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file() and "runs" not in p.parts
                   and "checkpoints" not in p.parts and "ladder" not in p.parts)
    first = {p: p.read_bytes() for p in files}
    names = {p.name for p in files}
    assert {"results.md", "usps.csv", "usps.tex", "mnist16.csv", "mnist16.tex", "learning_curves.png", "ladder.png",
            "rejection.png", "h1_kernels_usps.png"} <= names
    assert "misclassified_usps_baseline.png" not in names  # no data in --data-dir: skipped with a warning
    assert "misclassified_usps_baseline.png skipped" in out
    for p in files:
        if p.suffix == ".png":
            assert is_png(p), p
    report(tmp_path, ladder_dir)
    for p in files:
        assert p.read_bytes() == first[p], f"{p} changed between two runs"
    assert oct(os.stat(res / "results.md").st_mode & 0o777) == "0o644"


def test_missing_checkpoint_is_a_warning_and_an_empty_store_an_error(tmp_path, ladder_dir):
    with pytest.raises(ReportError, match=f"no run records under {tmp_path / 'results' / 'runs'}"):
        report(tmp_path, ladder_dir)
    with pytest.raises(ReportError, match="no run records"):
        report(tmp_path, ladder_dir, study=False)
    assert not (tmp_path / "results" / "results.md").exists() and not (tmp_path / "results" / "report").exists()
    (tmp_path / "results" / "runs" / "usps").mkdir(parents=True)
    (tmp_path / "results" / "runs" / "usps" / "broken.json").write_text("{")
    with pytest.raises(ReportError, match="1 file.s. there skipped"):
        report(tmp_path, ladder_dir)
    write(tmp_path / "results", make_record())
    _, out = report(tmp_path, ladder_dir)
    assert "no seed-0 checkpoint checkpoints/usps/baseline-" in out
    assert is_png(tmp_path / "paper" / "figures" / "ladder.png")


def test_misclassified_figure_from_a_checkpointed_net():
    cfg = Config()
    params = init_params(cfg, run_generator(0))
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(60, 16, 16, generator=gen) * 2 - 1
    y = torch.randint(0, 10, (60,), generator=gen)
    png, n_wrong = plots.misclassified_figure(params, cfg, x, y, "test")
    from repro.net.model import forward

    assert n_wrong == int((forward(params, x, cfg).argmax(-1) != y).sum())
    assert png.startswith(PNG_SIGNATURE)


# ----------------------------------------------------------------------------------------- the run record
COMMITTED = REPO / "results"


def test_committed_records_load_and_round_trip():
    paths = sorted((COMMITTED / "runs").glob("*/*.json"))
    assert paths
    for path in paths:
        assert read_record(path).to_json() == json.loads(path.read_text()), path
        obj = json.loads(path.read_text())
        rec = RunRecord.from_json(obj)
        assert rec.to_json() == obj and list(rec.to_json()) == list(obj)
        assert rec.file_name == path.name


def test_the_committed_schema_table_is_the_definition():
    from repro.report.blocks import markers
    from repro.report.sections.record_schema import SCHEMA_BLOCK

    doc = (COMMITTED / "README.md").read_text()
    start, end = markers(SCHEMA_BLOCK)
    assert f"{start}\n{schema_markdown()}\n{end}" in doc, "results/README.md's schema table is stale: run `repro report --study`"
    assert "| `diverged_at_pass` | int or null |" in schema_markdown()
    assert "| `train_error`, `test_error` | list of float |" in schema_markdown()


@pytest.mark.parametrize("damage, message", [
    (lambda r: r.pop("final"), "missing field(s) final"),
    (lambda r: r.update(seed="0"), "wrong type for field(s) seed (str, expected int)"),
    (lambda r: r.update(passes=True), "wrong type for field(s) passes (bool, expected int)"),
    (lambda r: r.update(diverged_at_pass=1.5), "diverged_at_pass (float, expected int or null)"),
    (lambda r: r["test_error"].__setitem__(0, "x"), "test_error (list, expected list of float)"),
    (lambda r: r.update(schema=1), "schema 1 (this version reads schema 2)"),
    (lambda r: r.update(collapsed=0), "wrong type for field(s) collapsed (int, expected bool)"),
    (lambda r: r.update(extra=1), "unknown field(s) extra"),
    (lambda r: r["final"].pop("test_rejection_curve"), "missing field(s) final.test_rejection_curve"),
    (lambda r: r["train_loss"].pop(), "per-pass lists differ in length"),
])
def test_from_json_names_what_is_wrong(damage, message):
    rec = make_record()
    damage(rec)
    with pytest.raises(RecordError) as e:
        RunRecord.from_json(rec)
    assert message in str(e.value)
    with pytest.raises(RecordError):
        RunRecord.from_json([rec])


def test_building_a_bad_record_fails_at_once():
    fields = RunRecord.from_json(make_record()).to_json()
    with pytest.raises(RecordError, match="wrong type for field.s. wall_time_s"):
        RunRecord(**{**fields, "wall_time_s": "1.5"})


def problem(path: Path) -> str | None:
    """Why read_record refuses the file at `path`, or None."""
    try:
        read_record(path)
    except RecordError as e:
        return str(e)
    return None


def test_read_record_names_what_is_wrong_with_a_file(tmp_path):
    good = write(tmp_path, make_record())
    assert problem(good) is None
    text = good.read_text()
    cut = good.with_name("cut.json")
    cut.write_text(text[: len(text) // 2])
    assert problem(cut).startswith("not valid JSON")
    assert problem(tmp_path / "missing.json").startswith("not readable")
    renamed = good.with_name("baseline-0000000000-s000.json")
    renamed.write_text(text)
    assert "file name does not match its contents" in problem(renamed)
    moved = tmp_path / "runs" / "mnist16" / good.name
    moved.parent.mkdir()
    moved.write_text(text)
    assert "stored in folder 'mnist16'" in problem(moved)
    odd = make_record()
    odd["config_digest"] = 5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(odd))
    assert "config_digest (int, expected str)" in problem(bad)


# ----------------------------------------------------------------------------------------- workspace and check
def copy_committed(ws: Path, dataset: str, label: str, seeds, shift_pp: float = 0.0) -> None:
    """Copy committed records into the workspace `ws`, their test errors (history and final) shifted."""
    for path in sorted((COMMITTED / "runs" / dataset).glob(f"{label}-*-s*.json")):
        rec = json.loads(path.read_text())
        if rec["seed"] not in seeds:
            continue
        if shift_pp:
            rec["test_error"] = [v + shift_pp / 100 for v in rec["test_error"]]
            rec["final"]["test_error"] += shift_pp / 100
        write(ws, rec)


def files_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def test_workspace_report_agrees_with_the_committed_study(tmp_path):
    ws = tmp_path / "ws"
    copy_committed(ws, "usps", "baseline", range(4))
    copy_committed(ws, "mnist16", "adamw", range(10, 13))
    copy_committed(ws, "usps", "long", [5])  # a single seed: checked against the reference's range
    write(ws, make_record(label="baseline+c92f10b25e", passes=2, config_changes={"lr": 0.5}))  # not in the reference
    committed_before = files_under(COMMITTED)
    outcome = write_report(ws, reference_dir=COMMITTED, data_dir=str(data_dir()))
    assert files_under(COMMITTED) == committed_before
    assert all(ws / "report" in p.parents for p in outcome.written), outcome.written
    names = {p.relative_to(ws / "report").as_posix() for p in outcome.written}
    assert {"report.md", "tables/usps.csv", "tables/mnist16.csv", "tables/comparison.csv",
            "figures/ladder.png"} <= names
    cmp = outcome.comparison
    assert outcome.all_agree and cmp.all_agree
    t = cmp.table.set_index(["dataset", "label"])
    assert t.loc[("usps", "baseline+c92f10b25e"), "verdict"] == "not in the reference"
    assert list(t["verdict"]).count("agrees") == 3
    assert outcome.comparison_text.startswith("check: all 3 configuration(s) compared agree")
    md = (ws / "report" / "report.md").read_text()
    assert "## Check against the committed study" in md and "Welch's t-test" in md and "Holm" in md


def test_shifted_errors_differ_from_the_committed_study(tmp_path):
    ws = tmp_path / "ws"
    copy_committed(ws, "usps", "baseline", range(8), shift_pp=2.0)  # 8 seeds: a test at the family's level
    copy_committed(ws, "mnist16", "adamw", range(3))
    copy_committed(ws, "usps", "long", [5], shift_pp=2.0)
    outcome = write_report(ws, reference_dir=COMMITTED, make_figures=False)
    assert not outcome.all_agree
    t = outcome.comparison.table.set_index(["dataset", "label"])
    base = t.loc[("usps", "baseline")]
    assert base.verdict == "differs" and base.test_error_verdict == "differs" and base.train_error_verdict == "agrees"
    assert base.test_error_delta == pytest.approx(base.test_error_mean - base.reference_test_error_mean)
    assert 1.0 < base.test_error_delta < 3.0 and base.test_error_ci95_low > 0
    assert t.loc[("usps", "long"), "verdict"] == "differs"  # one seed, outside the reference's range
    assert t.loc[("mnist16", "adamw"), "verdict"] == "agrees"
    assert "2 of 3 configuration(s) compared differ" in outcome.comparison_text
    assert "usps/baseline" in outcome.comparison_text and "**differs**" in (ws / "report" / "report.md").read_text()


def test_single_run_verdict_rule():
    v = compare.single_run_verdict
    ref = [5.0, 5.5, 6.0, 6.5, 5.2, 5.8]
    assert v([6.7], ref)[0] == "agrees" and v([6.9], ref)[0] == "differs"  # range 5.0-6.5, +- 0.3
    assert v([12.0], ref, relative=True)[0] == "agrees" and v([14.0], ref, relative=True)[0] == "differs"  # x 2
    assert v(ref, [4.6])[0] == "differs" and v(ref, [4.8])[0] == "agrees"
    assert v([5.0], [6.0], [0], [1])[0] == "inconclusive"  # one run each, different seeds
    assert v([5.0], [5.1], [3], [3])[0] == "agrees" and v([5.0], [6.0], [3], [3])[0] == "differs"
    assert v([], ref)[0] == "inconclusive"


def test_nothing_in_common_is_not_a_passing_check(tmp_path):
    ws = tmp_path / "ws"
    write(ws, make_record(passes=2, config_changes={"lr": 0.5}))
    outcome = write_report(ws, reference_dir=COMMITTED, make_figures=False)
    assert not outcome.all_agree
    assert "no configuration could be compared" in outcome.comparison_text
    assert "another configuration" in outcome.comparison.table.iloc[0].reason or \
        "no usps configuration" in outcome.comparison.table.iloc[0].reason


def test_workspace_report_refuses_committed_folders_and_study_arguments(tmp_path):
    from repro.report.sections.context import DEFAULT_PAPER_DIR

    ws = tmp_path / "ws"
    write(ws, make_record())
    with pytest.raises(ReportError, match="committed study is written only when asked"):
        write_report(ws, out_dir=DEFAULT_PAPER_DIR / "x", make_figures=False)
    with pytest.raises(ReportError, match="paper_dir is only for the committed study"):
        write_report(ws, paper_dir=tmp_path / "paper", make_figures=False)
    with pytest.raises(ReportError, match="out_dir and reference_dir are for a workspace"):
        write_report(ws, study=True, reference_dir=COMMITTED, make_figures=False)
    assert not (ws / "report").exists()


# ----------------------------------------------------------------------------------------- what was run
@pytest.fixture
def captured(monkeypatch):
    """The matplotlib Figures the report draws, by title of their first axes (the PNG writer is bypassed)."""
    figs = []

    def keep(draw, rc=None):
        figs.append(draw())
        return b"png"

    monkeypatch.setattr(plots, "styled_png", keep)
    return figs


def test_one_short_single_seed_run_gets_figures_and_tables_for_itself(tmp_path, ladder_dir, captured):
    ws = tmp_path / "ws"
    rec = make_record(label="baseline+c92f10b25e", passes=2, test_error=0.0887, config_changes={"lr": 0.5})
    write(ws, rec)
    write_checkpoint(ws, rec)
    lines: list[str] = []
    outcome = write_report(ws, ladder_dir=ladder_dir, data_dir=str(data_dir()), warn=lines.append)
    names = {p.name for p in outcome.written}
    assert {"learning_curves.png", "ladder.png", "rejection.png", "h1_kernels_usps.png",
            "misclassified_usps_baseline_c92f10b25e.png"} <= names
    assert not any("baseline runs yet" in m or "no seed-0 checkpoint" in m for m in lines), lines
    curves, ladder, rejection = captured[:3]
    assert curves.axes[0].get_xlim()[1] < 3  # 2 passes, not the paper's 23
    assert all(t.get_text() == "" or float(t.get_text()) == int(float(t.get_text()))
               for t in curves.axes[0].get_xticklabels())  # whole passes
    assert "one seed per configuration" in curves._suptitle.get_text()
    assert "not drawn: the runs are shorter" in curves._suptitle.get_text()
    assert ladder.axes[0].get_title() == "Final test error of baseline+c92f10b25e"
    legend = [t.get_text() for t in ladder.legends[0].get_texts()]
    assert "usps: one seed" in legend and not any("±" in t or "paper" in t for t in legend)
    assert rejection.axes[0].get_title() == "usps: error-rejection (one seed)"
    md = (ws / "report" / "report.md").read_text()
    assert "8.87" in md and "8.87 ±" not in md and "8.87–8.87" not in md and "±0.00" not in md
    assert "# Report on ws/" in md and "`ws/runs/`" in md
    assert "![Final test error per configuration: one seed each](figures/ladder.png)" in md
    row = pd.read_csv(ws / "report" / "tables" / "usps.csv").iloc[0]
    assert row.test_error_mean == pytest.approx(8.87) and math.isnan(row.test_error_std)
    assert r"8.87 &" in (ws / "report" / "tables" / "usps.tex").read_text()


def test_partial_ladder_and_full_ladder_titles():
    ladder = ["baseline", "relu", "adamw"]
    assert plots.ladder_title(["baseline", "relu", "adamw"], ladder).startswith("Test error along the ladder")
    assert plots.ladder_title(["baseline", "adamw"], ladder).startswith("Test error of 2 of the ladder's 3 rungs")
    assert plots.ladder_title(["baseline", "x"], ladder) == "Final test error per configuration"


def test_error_bars_leaving_the_log_axis_are_cut_and_labelled(tmp_path, ladder_dir, captured):
    res = tmp_path / "results"
    for seed, err in enumerate((0.04, 0.045, 0.05, 0.9, 0.92)):  # two collapsed seeds: std > mean
        write(res, make_record("mnist16", "relu", seed, test_error=err, passes=23))
    report(tmp_path, ladder_dir)
    ax = captured[1].axes[0]
    lo, hi = ax.get_ylim()
    values = [100 * e for e in (0.04, 0.045, 0.05, 0.9, 0.92)]
    assert 0 < lo < min(values) and hi > max(values)
    std = float(np.std(values, ddof=1))
    texts = [t.get_text() for t in ax.texts]
    assert f"mean − std = {np.mean(values) - std:.1f}".replace("-", "−") in texts


def test_an_empty_reference_is_not_a_passing_check(tmp_path):
    ws = tmp_path / "ws"
    copy_committed(ws, "usps", "baseline", range(2))
    lines: list[str] = []
    outcome = write_report(ws, reference_dir=tmp_path / "nothing", make_figures=False, warn=lines.append)
    assert not outcome.all_agree and "nothing to check the runs against" in "\n".join(lines)
    assert list(outcome.comparison.table["verdict"]) == ["not in the reference"]


def test_report_modules_import_one_way():
    """stats, fmt, references, records, tables, measured, plots, compare, calibration, attribution, guesses, claims,
    tie_rule, peers, speed, blocks, the sections (context first), build: each imports only modules before it (the PNG
    writer is repro/png.py, below them all)."""
    import ast

    sections = ["kinds", "context", "part", "ladder", "faithfulness", "match", "comparison", "baseline_tables",
                "guesses", "peers", "attribution", "tie_rule", "thresholds", "figures", "page", "measured", "headline",
                "readme_check", "speed", "record_schema", "packaged_study", "report_text", "documents", "order"]
    order = ["stats", "fmt", "references", "records", "tables", "measured", "match", "plots", "compare",
             "calibration", "attribution", "attribution_text", "attribution_figures", "thresholds", "guesses",
             "claims", "tie_rule", "peers", "speed", "blocks", *(f"sections/{name}" for name in sections), "build"]
    folder = REPO / "repro" / "report"
    present = {p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.py") if p.stem != "__init__"}
    assert sorted(present) == sorted(order)
    for i, name in enumerate(order):
        tree = ast.parse((folder / f"{name}.py").read_text())
        used = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("repro.report"):
                inside = node.module.split(".")[2:]  # the module's path below repro.report
                if inside in ([], ["sections"]):
                    used |= {"/".join([*inside, a.name]) for a in node.names}
                else:
                    used.add("/".join(inside))
        assert used <= set(order[:i]), f"repro/report/{name}.py imports {sorted(used - set(order[:i]))}"


def test_faithful_table_shows_the_loss_in_the_paper_convention_too():
    """Our loss is (y - t)^2 per output and pattern; the paper's is read as half of it (tables.PAPER_LOSS_NOTE):
    run rows get both, the paper's reported losses stand in its own convention only."""
    from repro.report import tables
    from repro.report.references import FAITHFUL_REFERENCES

    recs = [dict(make_record("usps", "baseline", s, train_error=0.004 * (s + 1)), _file=f"usps/{s}.json")
            for s in range(2)]
    groups = group_records(recs)
    df = tables.with_paper_loss(tables.build_table(groups, "usps", ["baseline"], ["baseline"], FAITHFUL_REFERENCES))
    run, ref = df.iloc[0], df[df.label == PAPER.name].iloc[0]
    assert run.train_loss_paper_mean == pytest.approx(run.train_loss_mean / 2)
    assert run.test_loss_paper_std == pytest.approx(run.test_loss_std / 2)
    assert (ref.train_loss_paper_mean, ref.test_loss_paper_mean) == (PAPER.train_loss, PAPER.test_loss)
    assert pd.isna(ref.train_loss_mean) and pd.isna(ref.test_loss_mean)
    text = tables.faithful_block(df)
    header, rule, first = text.split("\n\n")[1].splitlines()[:3]
    assert "train / test loss, ours" in header and "paper's convention (½ of ours)" in header
    assert header.count("|") == rule.count("|") == first.count("|")
    assert tables.PAPER_LOSS_NOTE in text and "2.50e-03 / 1.80e-02" in text
    assert "paper's convention" not in tables.markdown_table(tables.build_table(groups, "usps", ["baseline"], ["baseline"]))


def test_tie_rule_table_scores_collapsed_checkpoints_as_their_records():
    """repro.report.tie_rule on the committed factorial: each collapsed seed-0 checkpoint scores, under the tie
    rule, what its record says (within one test digit: the record comes from a training engine, this from the
    plain forward), argmax never counts more errors, and under either rule the run stays above the collapse
    threshold on its training data."""
    from repro.net.collapse import COLLAPSE_TRAIN_ERROR
    from repro.report import tie_rule

    results = Path(__file__).resolve().parents[1] / "results"
    groups = group_records(load_records(results).records)
    factorial = {k: g for k, g in groups.items() if k[1].startswith("f:")}
    warnings: list[str] = []
    table = tie_rule.build_table(factorial, results, None, warnings.append)
    assert len(table) > 0 and not warnings
    assert (table.test_error_tie - table.recorded_test_error).abs().max() < 100 / 2007
    assert (table.test_error_argmax <= table.test_error_tie).all()
    assert (table.train_error_argmax > 100 * COLLAPSE_TRAIN_ERROR).all()
