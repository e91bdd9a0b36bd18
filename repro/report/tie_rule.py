"""The tie rule against argmax, where it matters: the collapsed runs.

A pattern counts as an error unless its label's output is strictly the largest (repro.net.metrics.is_wrong);
the earlier reproductions score by argmax, where a tie goes to the first class. The two rules differ only
where outputs tie for the top, and they tie for almost every pattern only in collapsed runs (every output
at -1). Which rule is used then sets the size of a collapsed run's error, and so the size of the factorial's
mixture values, but not whether a run collapsed (above 50% training error under either rule, shown here)
nor the stable game (no collapsed runs). This table scores the seed-0 checkpoint of every factorial
configuration whose seed 0 collapsed, both ways, on both splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from repro.data import DataError, load_dataset
from repro.net.metrics import is_wrong
from repro.net.model import forward, outputs
from repro.report.plots import seed0_checkpoint
from repro.report.records import Group

COLUMNS = ["dataset", "label", "seed", "train_error_tie", "train_error_argmax", "test_error_tie",
           "test_error_argmax", "recorded_test_error"]


def _errors(state: dict, cfg, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """% of patterns wrong under the tie rule and under argmax."""
    with torch.no_grad():
        values = outputs(cfg, forward(state, x, cfg))
    tie = is_wrong(values, y).double().mean().item()
    argmax = (values.argmax(dim=-1) != y).double().mean().item()
    return 100 * tie, 100 * argmax


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
                data[ds] = load_dataset(ds, data_dir, download=False)
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
