"""Whether a reading of the paper matches the paper's numbers: one stated rule, the same for every reading of the
faithfulness study and for each number the paper reports.

The rule. The paper reports one run, so the question for each number is whether one new run of the reading
could plausibly land on it. A reading *matches* a number when the paper's figure lies inside the 95% t
prediction interval for one new run, computed from the reading's seeds that did not collapse:
mean ± t(0.975, n − 1) · s · √(1 + 1/n). Otherwise it *does not match*, and only then does the report speak of
a gap. Each row also gives the paper's figure as a standardised distance from our mean, in units of the
prediction's spread s · √(1 + 1/n), and the two-sided probability of a new run at least that far away.

Scales. Errors and rejection are compared in percent, as reported. Losses are compared on the log scale (the
interval of log loss, turned back into a loss), since a loss is positive and its spread over seeds grows
with its size; the paper's losses are read in its convention, ½ (y − t)² averaged over outputs and patterns,
half of ours (repro.report.tables.PAPER_LOSS_NOTE: an assumption, the paper gives no formula).

The 1989 net's readings are compared with the paper's Net-1989 column, the fully connected `fc40` with its
FC-40 column (which gives no losses). Nothing here is chosen on the test set: the rule is the same for every
number, train and test alike.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from repro.report import fmt
from repro.report.records import Group
from repro.report.references import PAPER, PAPER_FC40, Reference
from repro.report.stats import t_cdf, t_quantile

LEVEL = 0.95
# (record key, what it is, factor from the record's value to the paper's scale, scale of the comparison)
MEASURES: tuple[tuple[str, str, float, str], ...] = (
    ("train_error", "training error, %", 100.0, "linear"),
    ("test_error", "test error, %", 100.0, "linear"),
    ("train_loss", "training loss, paper's convention", 0.5, "log"),
    ("test_loss", "test loss, paper's convention", 0.5, "log"),
    ("test_rejection_at_1pct", "rejection for 1% error, %", 100.0, "linear"),
)
_REFERENCE_FIELD = {"train_error": "train_error", "test_error": "test_error", "train_loss": "train_loss",
                    "test_loss": "test_loss", "test_rejection_at_1pct": "rejection_1pct"}
COLUMNS = ("label", "measure", "what", "scale", "paper", "seeds", "mean", "std", "pi_low", "pi_high", "distance",
           "p_new_run", "ratio", "verdict")


def reference_for(group: Group) -> Reference:
    """The paper's column a reading is compared with: FC-40 for the fully connected net, else Net-1989."""
    return PAPER_FC40 if group.first["config"].get("architecture") == "fc40" else PAPER


def prediction(values, paper: float, scale: str) -> dict:
    """The rule for one number: the 95% t prediction interval for one new run from `values`, on `scale`
    ("linear" or "log"), and where `paper` lies against it."""
    v = np.asarray(list(values), dtype=np.float64)
    n = len(v)
    if n < 2 or not math.isfinite(paper) or (scale == "log" and (paper <= 0 or (v <= 0).any())):
        raise ValueError(f"a prediction interval needs 2 or more positive values and a figure ({n} values)")
    w = np.log(v) if scale == "log" else v
    p = math.log(paper) if scale == "log" else paper
    mean, spread = float(w.mean()), float(w.std(ddof=1)) * math.sqrt(1.0 + 1.0 / n)
    half = t_quantile(0.5 + LEVEL / 2.0, n - 1) * spread
    lo, hi = mean - half, mean + half
    distance = (p - mean) / spread if spread > 0 else math.copysign(math.inf, p - mean)
    back = math.exp if scale == "log" else (lambda x: x)
    return {"seeds": n, "mean": float(v.mean()), "std": float(v.std(ddof=1)), "pi_low": back(lo),
            "pi_high": back(hi), "distance": distance,
            "p_new_run": 2.0 * (1.0 - t_cdf(abs(distance), n - 1)) if math.isfinite(distance) else 0.0,
            "ratio": float(v.mean()) / paper, "verdict": "matches" if lo <= p <= hi else "does not match"}


def build_table(groups: dict[tuple[str, str], Group], order: list[str], dataset: str) -> pd.DataFrame:
    """One row per (reading in `order` with 2 or more runs that did not collapse, number the paper reports for
    it); empty when no reading has 2."""
    rows = []
    for label in order:
        g = groups[(dataset, label)]
        ref = reference_for(g)
        for key, what, factor, scale in MEASURES:
            paper = getattr(ref, _REFERENCE_FIELD[key])
            if paper is None:
                continue
            values = [factor * x for x in g.stable_values(key)]
            if len(values) < 2:  # one run gives no interval: the reading is left out of the table
                continue
            rows.append({"label": label, "measure": key, "what": what, "scale": scale, "paper": paper,
                         **prediction(values, paper, scale)})
    return pd.DataFrame(rows, columns=list(COLUMNS))


RULE_TEXT = (
    "A reading *matches* a number of the paper when the paper's single run lies inside the 95% t prediction "
    "interval for one new run of the reading, mean ± t(0.975, n − 1) · s · √(1 + 1/n) over its seeds "
    "(`repro/report/match.py`); otherwise it does not match. Errors and rejection in percent; losses on the log "
    "scale, in the paper's convention (½ (y − t)², half of ours: an assumption, the paper gives no formula). "
    "Distance: the paper's figure minus our mean in units of s · √(1 + 1/n) (log scale for losses); `p_new_run` "
    "in the table's file: the two-sided probability that one new run lies at least that far. The 1989 net's readings are set against the "
    "paper's Net-1989 column, `fc40` against its FC-40 column (no losses given).")


def _cell(row) -> str:
    mean, low, high = row["mean"], row["pi_low"], row["pi_high"]
    if row["scale"] == "log":
        value = f"{mean:.2e} [{low:.2e}, {high:.2e}]"
    else:
        value = f"{fmt.num(mean)} [{fmt.num(low)}, {fmt.num(high)}]"
    mark = "" if row["verdict"] == "matches" else "**"
    return f"{mark}{value}: {row['verdict']} ({row['distance']:+.1f}){mark}"


def markdown(df: pd.DataFrame, heading: str = "## ") -> str:
    """The match table: readings down, the paper's numbers across; each cell our mean, the prediction
    interval, the verdict and the paper's distance."""
    measures = [m for m in MEASURES if m[0] in set(df.measure)]
    paper_cells = {}
    for key, *_ in measures:
        sub = df[df.measure == key]
        paper_cells[key] = " / ".join(dict.fromkeys(_paper_text(v, key) for v in sub.paper))
    lines = [f"{heading}Does a reading match the paper?\n" if heading else "", RULE_TEXT, "",
             "| reading | " + " | ".join(f"{what} (paper: {paper_cells[key]})" for key, what, *_ in measures) + " |",
             "|---|" + "---|" * len(measures)]
    for label in dict.fromkeys(df.label):
        sub = df[df.label == label].set_index("measure")
        cells = [_cell(sub.loc[key]) if key in sub.index else "not reported" for key, *_ in measures]
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    lines += ["", "Bold: the paper's figure lies outside the interval. Readings of the 1989 net against Net-1989; "
              "`fc40` against FC-40, where the paper's figure is given second."]
    return "\n".join(line for line in lines if line is not None).strip() + "\n"


def _paper_text(value: float, key: str) -> str:
    return f"{value:.1e}" if "loss" in key else f"{value:.2f}"
