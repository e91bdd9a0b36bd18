"""Guesses judged on training data: `repro ablate --mode guesses` trains one rung and, on top of it, each
other reading of something the paper leaves open (the ladder's guesses/ folder; labels `guess:<on>+<name>`).

The rule, fixed before any guess was run, looks at training error and training loss only. The test set plays
no part in it, and this table does not show test figures (they are in the records).

  A guess is *better* when its training loss is lower (the 99% Welch interval of the difference lies below
  0) and its training error is not higher (that interval does not lie above 0), or when its training error
  is lower (99% interval below 0) and its training loss is not higher. It is *worse* when either interval
  lies above 0 and it is not better. Otherwise: *no difference*.
  Where a guess changes the target values, losses measure distances to different targets and are not
  compared: training error decides alone.

A better guess becomes a rung of the ladder it was measured on (a new TOML file there); the table says which
guesses qualify, it does not move files.
"""

from __future__ import annotations

import math

import pandas as pd

from repro.config import config_from_dict
from repro.report import fmt
from repro.report.records import Group
from repro.report.stats import summarize, welch_interval
from repro.jobs.ladder import guess_parts

RULE_LEVEL = 0.99
BETTER, WORSE, SAME = "better", "worse", "no difference"
RULE_TEXT = (
    "A guess is **better** when its training loss is lower (the 99% Welch interval of the difference over seeds "
    "lies below 0) and its training error is not higher (that interval does not lie above 0), or when its "
    "training error is lower and its training loss not higher; **worse** when either interval lies above 0 "
    "and it is not better; otherwise **no difference**. Where a guess changes the targets, losses are "
    "distances to different targets and training error decides alone. The test set plays no part: test "
    "figures of these runs are in their records and not shown here.")


def build_table(groups: dict[tuple[str, str], Group], all_groups: dict[tuple[str, str], Group]) -> pd.DataFrame:
    """One row per guess (dataset, base rung, guess), against its base rung's runs in `all_groups`."""
    rows = []
    for (ds, label), g in sorted(groups.items()):
        on, name = guess_parts(label)
        base = all_groups.get((ds, on))
        rows.append(_row(ds, on, name, g, base))
    return pd.DataFrame(rows)


def _row(ds: str, on: str, name: str, g: Group, base: Group | None) -> dict:
    cfg, changes = _config(g), {}
    if base is not None:  # records written before a field existed hold its default: compare full configs
        base_cfg = _config(base)
        changes = {k: v for k, v in cfg.items() if base_cfg[k] != v}
    err, loss = summarize(g.values("train_error", 100.0)), summarize(g.values("train_loss"))
    row = {"dataset": ds, "measured on": on, "guess": name,
           "changes": ", ".join(f"{k} = {v}" for k, v in changes.items()), "seeds": err.n,
           "train error %": _pm(err, 2), "train loss": _pm(loss, None)}
    if base is None:
        row.update({"Δ train error, pp [99% CI]": "", "Δ train loss [99% CI]": "",
                    "verdict": f"no runs of {on!r} to compare with"})
        return row
    d_err = welch_interval(base.values("train_error", 100.0), g.values("train_error", 100.0), RULE_LEVEL)
    comparable = cfg["target"] == base_cfg["target"]
    d_loss = welch_interval(base.values("train_loss"), g.values("train_loss"), RULE_LEVEL) if comparable else None
    row["Δ train error, pp [99% CI]"] = f"{d_err.diff:+.3f} [{d_err.low:+.3f}, {d_err.high:+.3f}]"
    row["Δ train loss [99% CI]"] = ("not compared (other targets)" if d_loss is None else
                                    f"{d_loss.diff:+.2e} [{d_loss.low:+.2e}, {d_loss.high:+.2e}]")
    row["verdict"] = verdict(d_err, d_loss)
    return row


def _config(g: Group) -> dict:
    return config_from_dict(g.first["config"], source=f"record of {g.label}").to_dict()


def verdict(d_err, d_loss) -> str:
    """The rule of the module docstring, from the intervals of (guess - base); d_loss None: not compared."""
    def below(iv):
        return iv is not None and iv.high < 0

    def above(iv):
        return iv is not None and iv.low > 0

    if any(iv is not None and math.isnan(iv.low) for iv in (d_err, d_loss)):
        return "too few seeds to judge"
    if (below(d_loss) and not above(d_err)) or (below(d_err) and not above(d_loss)):
        return BETTER
    if above(d_err) or above(d_loss):
        return WORSE
    return SAME


def _pm(s, digits: int | None) -> str:
    """A summary as mean ± std (scientific for losses: digits=None)."""
    if s.n == 0:
        return ""
    return fmt.sci(s.mean, s.std) if digits is None else fmt.mean_std(s.mean, s.std, digits)


def section_markdown(table: pd.DataFrame, heading: str = "## Guesses judged on training data") -> str:
    """The rule, then the table (results.md's section, and the paper's block with another heading)."""
    lines = [heading, "",
             "Each row is one rung (`measured on`) with one other reading of something the paper leaves open "
             "(`ablations/faithful/guesses/`, `repro ablate --ladder-dir ablations/faithful --mode guesses`); "
             "Δ is the guess minus the rung, over seeds. " + RULE_TEXT, "", _markdown(table)]
    per_rung = []
    for on, rows in table.groupby("measured on", sort=False):
        better = [f"`{g}`" for g in rows.loc[rows["verdict"] == BETTER, "guess"]]
        per_rung.append(f"on `{on}`: {', '.join(better) if better else 'none'}")
    lines += ["", "Better by the rule: " + "; ".join(per_rung) + "."]
    return "\n".join(lines)


def _markdown(table: pd.DataFrame) -> str:
    cols = [c for c in table.columns if not (c == "dataset" and table[c].nunique() == 1)]
    numeric = {"seeds"}
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("--:" if c in numeric else "---" for c in cols) + "|"]
    for _, row in table.iterrows():
        cells = [f"`{row[c]}`" if c in ("guess", "measured on") else str(row[c]) for c in cols]
        cells = [f"**{c}**" if c == BETTER else c for c in cells]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
