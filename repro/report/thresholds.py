"""How the collapse-based numbers depend on where a collapse starts: every one of them recomputed with the
threshold of repro.net.collapse moved to 40% and 60% final training error, and with diverged runs alone
counted as collapsed, beside the rule's 50%.

Each rule re-labels every record (`collapsed`) and recomputes, by the report's own code, the numbers that read
collapses: the factorial's collapse count and where collapses fall (all in ReLU nets trained by SGD, or not),
the collapse game's Shapley values with their Holm flags (repro.report.attribution), the ladder's `relu`
count and its `relu` and `adamw` steps with the ladder table's Holm flag (repro.report.tables), and the
collapse count of each ReLU + SGD row at a small learning rate. A row whose conclusion (a sign, a Holm flag,
where collapses fall) differs between rules says so in its last column.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from repro.report import attribution, fmt, tables
from repro.report.records import Group, label_order

RULES: tuple[tuple[str, float | None], ...] = (("above 40%", 0.4), ("above 50%", 0.5), ("above 60%", 0.6),
                                               ("diverged only", None))
LADDER_STEPS = ("relu", "adamw")  # the ladder's rungs whose step reads collapses (ReLU's spread, AdamW's repair)
SMALL_RATE_ROWS = ("relu-sgd-3e-3", "relu-sgd-3e-4", "recipe-sgd-3e-3", "recipe-sgd-3e-4")
COLUMNS = ("dataset", "quantity", "rule", "value", "low", "high", "significant", "text")


def relabelled(groups: dict[tuple[str, str], Group], threshold: float | None) -> dict[tuple[str, str], Group]:
    """`groups` with each record's `collapsed` set by the rule: diverged, or final training error above
    `threshold` (None: diverged only)."""
    def collapsed(r: dict) -> bool:
        if r["diverged_at_pass"] is not None:
            return True
        return threshold is not None and r["final"]["train_error"] > threshold
    return {k: dataclasses.replace(g, records=[dict(r, collapsed=collapsed(r)) for r in g.records])
            for k, g in groups.items()}


def _rows_for_rule(groups, rule: str, threshold, ladder: list[str]) -> list[dict]:
    g = relabelled(groups, threshold)
    rows = []

    def add(ds, quantity, value, low=None, high=None, significant=None, text=""):
        rows.append({"dataset": ds, "quantity": quantity, "rule": rule, "value": value, "low": low, "high": high,
                     "significant": significant, "text": text})

    for ds in sorted({d for d, _ in g}, key=lambda d: (d != "usps", d)):
        fac_groups = {k: v for k, v in g.items() if k[0] == ds and v.mode == "factorial"}
        fac, _ = attribution.find_factorial(fac_groups, ds, ladder) if fac_groups else (None, None)
        if fac is not None:
            k, _ = fac.collapse_counts()
            where = {lb for lb, n in zip(fac.labels, k) if n}
            changes = {lb: v.changes for (_, lb), v in fac_groups.items()}
            relu_sgd = all("relu" in changes[lb] and "adamw" not in changes[lb] for lb in where)
            add(ds, "factorial: collapsed runs", float(k.sum()), text=f"{int(k.sum())} in {len(where)} configurations")
            add(ds, "factorial: every collapse a ReLU net trained by SGD", float(relu_sgd),
                text="yes" if relu_sgd else "no")
            game = attribution.collapse_game(fac)
            for e in game.effects:
                s = e.shapley
                add(ds, f"collapse game: `{e.change}`", s.value, s.low, s.high, int(s.significant),
                    f"{s.value:+.1f} [{s.low:+.1f}, {s.high:+.1f}]" + (" (Holm)" if s.significant else ""))
        ladder_here = [lb for lb in ladder if (ds, lb) in g]
        if len(ladder_here) > 1:
            frame = tables.build_table(g, ds, label_order(ladder_here, ladder), ladder, ())
            for step in LADDER_STEPS:
                row = frame[frame.label == step]
                if not len(row):
                    continue
                r = row.iloc[0]
                if step == "relu":
                    add(ds, "ladder `relu`: collapsed runs", float(r.collapsed), text=f"{r.collapsed} of {r.seeds}")
                add(ds, f"ladder step to `{step}`: test error pp", r.delta_test_error, r.delta_ci_low,
                    r.delta_ci_high, None if pd.isna(r.delta_holm) else int(r.delta_holm),
                    f"{fmt.num(r.delta_test_error, sign=True)} {fmt.interval(r.delta_ci_low, r.delta_ci_high)}"
                    + (" (Holm)" if r.delta_holm == 1 else ""))
        for label in SMALL_RATE_ROWS:
            if (ds, label) in g:
                n_col = g[(ds, label)].n_collapsed
                add(ds, f"`{label}`: collapsed runs", float(n_col), text=f"{n_col} of {len(g[(ds, label)].records)}")
    return rows


def build_table(groups: dict[tuple[str, str], Group], ladder: list[str]) -> pd.DataFrame:
    """Every collapse-based number under each rule of RULES, one row per (dataset, quantity, rule)."""
    rows = [row for rule, threshold in RULES for row in _rows_for_rule(groups, rule, threshold, ladder)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _conclusion(row) -> tuple:
    """What a row concludes under one rule: the sign and the Holm flag of an effect, the value of a count."""
    return (row.value,) if pd.isna(row.low) else (row.value > 0, row.significant)


def markdown(df: pd.DataFrame) -> str:
    """The table with the rules across; `changes` says where a count, a sign or a Holm flag differs between
    rules."""
    rules = [rule for rule, _ in RULES]
    lines = ["## Collapse threshold",
             "",
             "Every number that reads collapses, with a collapse starting above 40%, 50% (the rule, "
             "`repro/net/collapse.py`) or 60% final training error, or with diverged runs alone counted "
             "(`repro/report/thresholds.py`). Effects in percentage points with 95% intervals; (Holm): "
             "significant after Holm's correction over its own family (the collapse game's effects and "
             "interactions; the ladder table's steps). *changes*: the count, the sign or the Holm flag differs "
             "between rules.", "",
             "| dataset | quantity | " + " | ".join(rules) + " | changes |",
             "|---|---|" + "---|" * len(rules) + "---|"]
    for (ds, quantity), sub in df.groupby(["dataset", "quantity"], sort=False):
        by_rule = {r.rule: r.text for r in sub.itertuples()}
        changes = "yes" if len({_conclusion(r) for r in sub.itertuples()}) > 1 else "no"
        lines.append(f"| {ds} | {quantity} | " + " | ".join(by_rule.get(rule, "") for rule in rules)
                     + f" | {changes} |")
    return "\n".join(lines) + "\n"
