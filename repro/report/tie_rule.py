"""The tie rule against argmax, where it matters: the collapsed runs.

A pattern counts as an error unless its label's output is strictly the largest (repro.net.metrics.is_wrong);
the earlier reproductions score by argmax, where a tie goes to the first class. The two rules differ only
where outputs tie for the top, and they tie for almost every pattern only in collapsed runs (every output
at -1). Which rule is used then sets the size of a collapsed run's error, and so the size of the factorial's
mixture values, but not whether a run collapsed (above 50% training error under either rule, shown here)
nor the stable game (no collapsed runs). This table scores the seed-0 checkpoint of every factorial
configuration whose seed 0 collapsed, both ways, on both splits.

`argmax_errors` scores every run of a configuration whose checkpoints are all kept (the mnist16 rungs the
peers' figures stand beside, scripts/keep_checkpoints.py) by argmax, so that the peers' figures, scored so,
are set against ours scored the same way (repro.report.peers).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from repro.data import DataError, load_dataset, resolve_data_dir
from repro.net.metrics import is_wrong
from repro.net.model import forward, outputs
from repro.report.plots import read_checkpoint, seed0_checkpoint
from repro.report.records import Group

COLUMNS = ["dataset", "label", "seed", "train_error_tie", "train_error_argmax", "test_error_tie",
           "test_error_argmax", "recorded_test_error"]


def _dataset(name: str, data_dir: str | None):
    """The prepared dataset, loaded once for both tables (mnist16's preparation takes a while where its cache
    cannot be written), per folder it is read from."""
    return _loaded(name, str(resolve_data_dir(data_dir)))


@lru_cache(maxsize=2)
def _loaded(name: str, root: str):
    return load_dataset(name, root, download=False)


def _errors(state: dict, cfg, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """% of patterns wrong under the tie rule and under argmax."""
    with torch.no_grad():
        values = outputs(cfg, forward(state, x, cfg))
    tie = is_wrong(values, y).double().mean().item()
    argmax = (values.argmax(dim=-1) != y).double().mean().item()
    return 100 * tie, 100 * argmax


def argmax_errors(groups: dict[tuple[str, str], Group], dataset: str, labels: list[str], results_dir: Path,
                  data_dir: str | None, warn: Callable[[str], None]) -> dict[str, dict[str, list[float]]]:
    """Per label of `labels` whose finished runs all have a checkpoint: the runs' final `train_error` and
    `test_error` (%) scored by argmax. Each checkpoint is scored by the tie rule too, and a label is left out
    (with a warning) unless that gives its records' errors within one pattern a split (the check that a
    checkpoint is its record's run; the record comes from a training engine, this from the plain forward)."""
    out, ds = {}, None
    for label in labels:
        g = groups.get((dataset, label))
        if g is None or not g.ok:
            continue
        paths = [g.config_key.run(r["seed"]).checkpoint_path(results_dir) for r in g.ok]
        if not all(p.is_file() for p in paths):
            continue
        if ds is None:
            try:
                ds = _dataset(dataset, data_dir)
            except DataError as e:
                warn(f"argmax scores of {dataset} skipped: data not available ({str(e).splitlines()[0]})")
                return {}
        scores = {"train_error": [], "test_error": []}
        for rec, path in zip(g.ok, paths):
            ck = read_checkpoint(path, results_dir, warn, f"the argmax scores of {dataset} `{label}`")
            if ck is None:
                break
            train = _errors(*ck, ds.x_train, ds.y_train)
            test = _errors(*ck, ds.x_test, ds.y_test)
            recorded = (100 * rec["final"]["train_error"], 100 * rec["final"]["test_error"])
            one = (100.5 / len(ds.y_train), 100.5 / len(ds.y_test))  # one pattern, and rounding
            if abs(train[0] - recorded[0]) > one[0] or abs(test[0] - recorded[1]) > one[1]:
                warn(f"{path.name} scored by the tie rule gives {train[0]:.4f}% / {test[0]:.4f}%, its record "
                     f"{recorded[0]:.4f}% / {recorded[1]:.4f}%: the argmax scores of `{label}` are skipped")
                break
            scores["train_error"].append(train[1])
            scores["test_error"].append(test[1])
        else:
            out[label] = scores
    return out


def build_table(factorial_groups: dict[tuple[str, str], Group], results_dir: Path, data_dir: str | None,
                warn: Callable[[str], None]) -> pd.DataFrame:
    """One row per factorial configuration whose seed 0 collapsed (and whose checkpoint and data are here)."""
    rows, data = [], {}
    for (ds, label), g in sorted(factorial_groups.items()):
        rec = next((r for r in g.records if r["seed"] == 0), None)
        if rec is None or not rec.get("collapsed"):
            continue
        ck = seed0_checkpoint(results_dir, g, ds, label, warn, "its row of the tie-rule table")
        if ck is None:
            continue
        if ds not in data:
            try:
                data[ds] = _dataset(ds, data_dir)
            except DataError as e:
                warn(f"the tie-rule table skips {ds}: data not available ({str(e).splitlines()[0]})")
                data[ds] = None
        if data[ds] is None:
            continue
        state, cfg = ck
        train = _errors(state, cfg, data[ds].x_train, data[ds].y_train)
        test = _errors(state, cfg, data[ds].x_test, data[ds].y_test)
        rows.append(dict(zip(COLUMNS, (ds, label, 0, *train, *test, 100 * rec["final"]["test_error"]))))
    return pd.DataFrame(rows, columns=COLUMNS)


def section_markdown(table: pd.DataFrame) -> str:
    lines = ["## The tie rule against argmax, on collapsed runs", "",
             "Seed 0 of every factorial configuration where it collapsed, scored from its checkpoint under "
             "the package's rule (a tie for the top output is an error) and under argmax (a tie goes to the "
             "first class, as the earlier reproductions score). Error %.", "",
             "| dataset | configuration | train, tie rule | train, argmax | test, tie rule | test, argmax |",
             "|---|---|--:|--:|--:|--:|"]
    for r in table.itertuples():
        lines.append(f"| {r.dataset} | `{r.label}` | {r.train_error_tie:.2f} | {r.train_error_argmax:.2f} | "
                     f"{r.test_error_tie:.2f} | {r.test_error_argmax:.2f} |")
    return "\n".join(lines)
