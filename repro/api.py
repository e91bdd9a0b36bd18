"""A small Python API for notebooks: the functions the `repro` command line itself uses.

    from repro import api
    usps = api.load_dataset("usps")                        # 7,291 / 2,007 digits, verified by checksum
    cfg = api.rung_config("dropout", passes=5)             # a rung of the ladder, with overrides
    runs = api.train(cfg, usps, seeds=[0, 1], label="dropout-5")   # trains, writes records to the workspace
    df = api.load_results()                                # every record of the workspace, one row per run
    df.groupby(["dataset", "label"])["test_error"].agg(["mean", "std", "count"])

Records go to the workspace (see repro.jobs.workspace) unless `results_dir` says otherwise; a run whose record
exists is not trained again (`force=True` retrains).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from repro.config import Config
from repro.data import Dataset
from repro.data import load_dataset as _load_dataset
from repro.jobs.ladder import DEFAULT_LADDER_DIR, PlannedConfig, Rung, extra_rungs, load_rungs, plan
from repro.jobs.job import JobRequest, run_job
from repro.jobs.record import RunRecord, read_records
from repro.jobs.runner import resolve_device
from repro.jobs.workspace import default_workspace

__all__ = ["load_dataset", "rung_config", "train", "load_results", "Config"]


def load_dataset(name: str = "usps", data_dir: str | Path | None = None) -> Dataset:
    """The prepared dataset `name` ("usps" or "mnist16"), as `repro data` prepares it."""
    return _load_dataset(name, data_dir)


def rung_config(rung: str = "baseline", ladder_dir: str | Path = DEFAULT_LADDER_DIR, **overrides: Any) -> Config:
    """The configuration of a rung of the cumulative ladder (extra rungs too), with fields overridden."""
    ladder_dir = Path(ladder_dir)
    (planned,) = plan(load_rungs(ladder_dir), "cumulative", [rung], extra_rungs(ladder_dir))
    return planned.config.replace(**overrides) if overrides else planned.config


def train(cfg: Config, dataset: Dataset, seeds: Iterable[int] = (0,), label: str | None = None,
          engine: str = "auto", device: str = "cpu", results_dir: str | Path | None = None,
          force: bool = False, progress: bool = True) -> pd.DataFrame:
    """Train `cfg` on `dataset` for each seed as `repro train`/`ablate` do (the same job: the folder's checks,
    damaged records set aside, each run locked while it trains, the code version pinned) and return their
    records as `load_results` rows. `label` names the configuration in records and reports (default: the
    digest). `device`: "cpu", "cuda" or "auto"."""
    folder = Path(results_dir) if results_dir is not None else default_workspace()
    label = label or f"config-{cfg.digest()}"
    planned = PlannedConfig(label, Rung(0, label, label, "", "user"), cfg)
    request = JobRequest([planned], [dataset.name], list(seeds), folder, resolve_device(device), engine,
                         force=force)
    done = run_job(request, data={dataset.name: dataset}, log=_log, progress=progress)
    return records_frame(done.records())


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def load_results(results_dir: str | Path | None = None) -> pd.DataFrame:
    """Every run record in a results folder (default: the workspace; `repro.jobs.workspace.STUDY_DIR` is the
    committed study) as a DataFrame: one row per run, final metrics and config fields as columns. Files that are not
    valid records are left out (`repro report` names them and says why)."""
    folder = Path(results_dir) if results_dir is not None else default_workspace()
    return records_frame(read_records(folder).records)


ROW_FIELDS = ("dataset", "label", "rung", "seed", "passes", "engine", "diverged_at_pass", "collapsed", "wall_time_s",
              "config_digest")


def records_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per record: the fields above, the scalars of `final`, then every config field."""
    rows = []
    for rec in records:
        row = {k: getattr(rec, k) for k in ROW_FIELDS}
        row.update({k: v for k, v in rec.final.items() if not isinstance(v, dict)})
        row.update(rec.config)
        rows.append(row)
    return pd.DataFrame(rows)
