"""Tests for `repro report` (repro.report, repro.tables, repro.plots) on small synthetic stores.

Records are written by `make_record`, which mirrors runner._record (a test checks that the key sets match);
the statistics are checked against values computed by hand. Each test uses its own ladder folder (three
rungs) so edits to ablations/ cannot change the expected rows.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from repro import __version__

from repro.report import plots
from repro.cli import main
from repro.config import Config
from repro.net.model import init_params, run_generator
from repro.report.build import (
    KARPATHY_BASELINE,
    PAPER,
    ReportError,
    load_records,
    summarize,
    t_cdf,
    t_quantile,
    welch_interval,
)
from repro.study.store import atomic_torch_save, atomic_write_json, checkpoint_path, run_path

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
        "schema": 1, "rung": label if label in LADDER else "baseline", "label": label, "mode": "cumulative",
        "rung_title": f"Rung {label}", "dataset": dataset,
        "dataset_fingerprint": fingerprint or FINGERPRINT[dataset], "seed": seed, "config": cfg.to_dict(),
        "config_digest": cfg.digest(), "passes": passes, "presentations": passes * 7291,
        "diverged_at_pass": diverged_at, **history, "final": final, "engine": "population",
        "population_members": 4, "wall_time_s": 1.5, "device": "cpu (test)",
        "versions": {"repro": repro_version, "python": "3.11.7", "torch": "2.13.0", "numpy": "2.4.6"},
        "git_commit": "abc123", "created": created,
    }


def write(results_dir: Path, rec: dict) -> Path:
    path = run_path(results_dir, rec["dataset"], rec["label"], rec["config_digest"], rec["seed"])
    atomic_write_json(path, rec)
    return path


def write_checkpoint(results_dir: Path, rec: dict) -> Path:
    cfg = Config().replace(**rec["config"])
    path = checkpoint_path(results_dir, rec["dataset"], rec["label"], rec["config_digest"], 0)
    atomic_torch_save(path, {"config": rec["config"], "dataset": rec["dataset"], "seed": 0,
                             "state_dict": init_params(cfg, run_generator(7))})
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, ["report", *args])


def report_args(tmp_path: Path, ladder_dir: Path, *extra: str) -> list[str]:
    return ["--results-dir", str(tmp_path / "results"), "--paper-dir", str(tmp_path / "paper"),
            "--ladder-dir", str(ladder_dir), "--data-dir", str(tmp_path / "no-data"), *extra]


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
    from repro.study.ladder import PlannedConfig, Rung
    from repro.study.runner import _record

    cfg = Config().replace(passes=2)
    n = 40
    ds = Dataset("usps", torch.zeros(n, 16, 16), torch.arange(n) % 10, torch.zeros(n, 16, 16),
                 torch.arange(n) % 10, "fp")
    history = {k: [0.5, 0.25] for k in ("train_loss", "train_error", "test_loss", "test_error")}
    real = _record(PlannedConfig("baseline", Rung(0, "baseline", "t", "", ""), cfg), ds, 0, "cumulative", history,
                   None, torch.randn(n, 10), 1.0, 1, "population", torch.device("cpu"))
    fake = make_record(passes=2)
    assert set(fake) == set(real)
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

    r = invoke(*report_args(tmp_path, ladder_dir, "--no-figures"))
    assert r.exit_code == 0, r.output
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
    assert "| `baseline` | 3 | 3 | 0.40 ± 0.20 (0.20–0.60) | 6.00 ± 1.00 (5.00–7.00) |" in md
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
    r = invoke(*report_args(tmp_path, ladder_dir))
    assert r.exit_code == 0, r.output
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

    r = invoke(*report_args(tmp_path, ladder_dir, "--no-figures"))
    assert r.exit_code == 0, r.output
    name_missing = run_path(Path("."), "usps", "baseline", missing["config_digest"], 2).name
    for expected in ("runs/usps/broken.json: not valid JSON", f"runs/usps/{name_missing}: missing field(s) final",
                     "runs/usps/notes.txt: not a run record", "runs/usps/copy-of-run.json: file name does not match"):
        assert expected in r.output
    assert ".tmp" not in r.output
    md = (res / "results.md").read_text()
    assert "4 file(s) skipped" in md and "runs/usps/broken.json" in md
    assert table(tmp_path).iloc[0].seeds == 2

    r = invoke(*report_args(tmp_path, ladder_dir, "--no-figures", "--strict"))
    assert r.exit_code != 0
    assert f"runs/usps/{name_missing}: missing field(s) final" in r.output  # the first bad file in name order
    assert "--strict" in r.output
    (res / "runs" / "usps" / name_missing).unlink()
    with pytest.raises(ReportError, match="runs/usps/broken.json: not valid JSON"):
        load_records(res, strict=True)


def test_strict_passes_on_a_clean_store(tmp_path, ladder_dir):
    write(tmp_path / "results", make_record())
    (tmp_path / "results" / "runs" / "usps" / ".x.json.tmp").write_text("{")
    r = invoke(*report_args(tmp_path, ladder_dir, "--no-figures", "--strict"))
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("field", ["fingerprint", "digest", "version"])
def test_incompatible_records_are_dropped_with_a_warning(tmp_path, ladder_dir, field):
    res = tmp_path / "results"
    for seed, err in enumerate((0.05, 0.06, 0.07)):
        write(res, make_record(seed=seed, test_error=err))
    odd = {"fingerprint": {"fingerprint": "0000000000000000"}, "digest": {"config_changes": {"lr": 0.1}},
           "version": {"repro_version": "0.0.1"}}[field]
    odd_rec = make_record(seed=3, test_error=0.5, created="2027-01-01T00:00:00+00:00", **odd)
    odd_path = write(res, odd_rec)
    r = invoke(*report_args(tmp_path, ladder_dir, "--no-figures"))
    assert r.exit_code == 0, r.output
    base = table(tmp_path).iloc[0]
    assert base.seeds == 3 and base.test_error_mean == pytest.approx(6.0)
    rel = "runs/" + odd_path.relative_to(res / "runs").as_posix()
    shown = {"fingerprint": "dataset_fingerprint 0000000000000000", "digest": f"config_digest {odd_rec['config_digest']}",
             "version": "repro version 0.0.1"}[field]
    for text in (r.output, (res / "results.md").read_text()):
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
    args = report_args(tmp_path, ladder_dir)
    r1 = invoke(*args)
    assert r1.exit_code == 0, r1.output
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file() and "runs" not in p.parts
                   and "checkpoints" not in p.parts and "ladder" not in p.parts)
    first = {p: p.read_bytes() for p in files}
    names = {p.name for p in files}
    assert {"results.md", "usps.csv", "usps.tex", "mnist16.csv", "mnist16.tex", "learning_curves.png", "ladder.png",
            "rejection.png", "h1_kernels_usps.png"} <= names
    assert "misclassified_usps_baseline.png" not in names  # no data in --data-dir: skipped with a warning
    assert "misclassified_usps_baseline.png skipped" in r1.output
    for p in files:
        if p.suffix == ".png":
            assert is_png(p), p
    r2 = invoke(*args)
    assert r2.exit_code == 0, r2.output
    for p in files:
        assert p.read_bytes() == first[p], f"{p} changed between two runs"
    assert oct(os.stat(res / "results.md").st_mode & 0o777) == "0o644"


def test_missing_checkpoint_and_empty_store_are_warnings(tmp_path, ladder_dir):
    r = invoke(*report_args(tmp_path, ladder_dir))
    assert r.exit_code == 0, r.output
    assert "no usable run records" in r.output
    assert (tmp_path / "results" / "results.md").is_file()
    write(tmp_path / "results", make_record())
    r = invoke(*report_args(tmp_path, ladder_dir))
    assert r.exit_code == 0, r.output
    assert "no seed-0 checkpoint checkpoints/usps/baseline-" in r.output
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
