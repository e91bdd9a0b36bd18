"""Checks a user's runs against the committed study (the reference): are they the same experiment's numbers?

For every configuration of the user's runs, the reference configuration it is compared with is the one of
the same dataset, label and config digest (or, when the label differs, the one configuration of the same
dataset and config digest). Configurations without one are listed as "not in the reference".

Rule (applied to final test error and to final train error, in percentage points; finished runs only):

- both sides have 2 or more runs: the configuration **differs** when the 99% Welch interval of the
  difference of means excludes 0 *and* the difference is larger than MARGIN_PP (0.3 points). The interval
  alone would flag a consistent difference too small to matter; the margin alone would flag the spread of a
  few seeds. Runs that differ from the reference only by floating-point rounding (another device, engine or
  library version) are new samples of the same distribution: their mean lies within the interval.
- one side has a single run: it **differs** when that run's value lies outside the other side's range of
  values (min to max) widened by MARGIN_PP on both sides.
- a single run on each side: compared (as above, |difference| > MARGIN_PP) only when both are the same seed;
  otherwise **inconclusive** (the seed-to-seed spread is unknown), as is a side with no finished run.

A configuration differs when its test error or its train error differs; otherwise it **agrees**.
The 95% Welch interval is shown beside each difference (for reading, not for the verdict).
`all_agree` is True when at least one configuration was compared and none differs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, NamedTuple

import pandas as pd

from repro.report.records import Group, group_records, load_records
from repro.report.stats import summarize, welch_interval

MARGIN_PP = 0.3
CHECK_LEVEL = 0.99
METRICS = ("test_error", "train_error")
AGREES, DIFFERS, INCONCLUSIVE, NOT_IN_REFERENCE = "agrees", "differs", "inconclusive", "not in the reference"
RULE = (
    f"A configuration *differs* from the committed study when its mean test or train error does: with 2 or more "
    f"runs on both sides, when the {CHECK_LEVEL:.0%} Welch interval of the difference excludes 0 and the "
    f"difference exceeds {MARGIN_PP} percentage points; with a single run on one side, when that value lies "
    f"outside the other side's min–max range widened by {MARGIN_PP} points; with a single run on each side, "
    f"when they are the same seed and differ by more than {MARGIN_PP} points (different seeds: inconclusive). "
    "Runs that differ only by floating-point rounding (another device, engine or library) agree: they are new "
    "samples of the same distribution of errors."
)
COLUMNS = (
    "dataset", "label", "config_digest", "reference_label", "passes", "seeds", "diverged", "reference_seeds",
    "reference_diverged", "same_data",
    *(f"{p}{m}_{s}" for m in METRICS for p in ("", "reference_") for s in ("mean", "std", "min", "max")),
    *(f"{m}_{s}" for m in METRICS for s in ("delta", "ci95_low", "ci95_high", "ci99_low", "ci99_high")),
    *(f"{m}_verdict" for m in METRICS), "verdict", "reason",
)


class Comparison(NamedTuple):
    """`table`: one row per configuration of the user's runs (COLUMNS; errors in %); `all_agree`: at least
    one configuration compared and none differs."""

    table: pd.DataFrame
    all_agree: bool


def metric_verdict(user: list[float], ref: list[float], user_seeds: list[int] = (), ref_seeds: list[int] = (),
                   margin: float = MARGIN_PP, level: float = CHECK_LEVEL) -> tuple[str, str]:
    """(verdict, why) for one metric: values in %, of the finished runs on each side (see the module rule)."""
    if not user or not ref:
        return INCONCLUSIVE, "no finished run on " + ("either side" if not user and not ref
                                                      else "the user's side" if not user else "the reference side")
    if len(user) >= 2 and len(ref) >= 2:
        iv = welch_interval(ref, user, level)
        excludes = iv.low > 0 or iv.high < 0
        if excludes and abs(iv.diff) > margin:
            return DIFFERS, (f"difference {iv.diff:+.2f} pp, {level:.0%} interval [{iv.low:+.2f}, {iv.high:+.2f}] "
                             f"excludes 0 and exceeds {margin} pp")
        return AGREES, (f"difference {iv.diff:+.2f} pp, {level:.0%} interval [{iv.low:+.2f}, {iv.high:+.2f}]"
                        + (" includes 0" if not excludes else f", within {margin} pp"))
    if len(user) == 1 and len(ref) == 1:
        if list(user_seeds) != list(ref_seeds) or not user_seeds:
            return INCONCLUSIVE, "one run on each side, different seeds: the spread over seeds is unknown"
        d = user[0] - ref[0]
        return (DIFFERS if abs(d) > margin else AGREES), f"same seed, difference {d:+.2f} pp (margin {margin} pp)"
    single, many, whose = (user[0], ref, "reference") if len(user) == 1 else (ref[0], user, "user's")
    lo, hi = min(many) - margin, max(many) + margin
    inside = lo <= single <= hi
    return (AGREES if inside else DIFFERS), (f"single value {single:.2f} {'inside' if inside else 'outside'} the "
                                             f"{whose} range {min(many):.2f}–{max(many):.2f} ± {margin} pp")


def _match(g: Group, reference: dict[tuple[str, str], Group]) -> tuple[Group | None, str]:
    ref = reference.get((g.dataset, g.label))
    if ref is not None and ref.digest == g.digest:
        return ref, ""
    same = [r for r in reference.values() if r.dataset == g.dataset and r.digest == g.digest]
    if len(same) == 1:
        return same[0], ""
    if ref is not None:
        a, b = g.first["config"], ref.first["config"]
        diff = ", ".join(f"{k} {a.get(k)!r} (reference {b.get(k)!r})" for k in sorted(set(a) | set(b))
                         if a.get(k) != b.get(k))
        return None, f"the reference ran {g.label} with another configuration: {diff}"
    return None, f"no {g.dataset} configuration with config digest {g.digest} in the reference"


def compare_groups(runs: dict[tuple[str, str], Group], reference: dict[tuple[str, str], Group],
                   margin: float = MARGIN_PP, level: float = CHECK_LEVEL) -> Comparison:
    """The comparison of grouped runs (repro.report.records.group_records) with the reference's groups."""
    rows = []
    for (ds, label), g in sorted(runs.items()):
        ref, why = _match(g, reference)
        row = {"dataset": ds, "label": label, "config_digest": g.digest, "passes": g.passes,
               "seeds": len(g.records), "diverged": g.n_diverged}
        if ref is None:
            rows.append({**row, "reference_label": "", "verdict": NOT_IN_REFERENCE, "reason": why})
            continue
        row.update(reference_label=ref.label, reference_seeds=len(ref.records), reference_diverged=ref.n_diverged,
                   same_data=g.first["dataset_fingerprint"] == ref.first["dataset_fingerprint"])
        verdicts, reasons = [], []
        for m in METRICS:
            u, r = g.values(m, 100.0), ref.values(m, 100.0)
            for prefix, vals in (("", u), ("reference_", r)):
                s = summarize(vals)
                row.update({f"{prefix}{m}_mean": s.mean, f"{prefix}{m}_std": s.std, f"{prefix}{m}_min": s.min,
                            f"{prefix}{m}_max": s.max})
            i95, i99 = welch_interval(r, u), welch_interval(r, u, level)
            row.update({f"{m}_delta": i95.diff, f"{m}_ci95_low": i95.low, f"{m}_ci95_high": i95.high,
                        f"{m}_ci99_low": i99.low, f"{m}_ci99_high": i99.high})
            verdict, reason = metric_verdict(u, r, [x["seed"] for x in g.ok], [x["seed"] for x in ref.ok],
                                             margin, level)
            row[f"{m}_verdict"] = verdict
            verdicts.append(verdict)
            reasons.append(f"{m.replace('_', ' ')}: {reason}")
        row["verdict"] = DIFFERS if DIFFERS in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else AGREES
        if not row["same_data"]:
            reasons.append("the dataset fingerprints differ (other data)")
        row["reason"] = "; ".join(reasons)
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for c in ("passes", "seeds", "diverged", "reference_seeds", "reference_diverged"):
        df[c] = df[c].astype("Int64")
    for c in COLUMNS:
        if c.endswith(("_mean", "_std", "_min", "_max", "_delta", "_low", "_high")):
            df[c] = df[c].astype("float64")
    compared = df["verdict"].isin([AGREES, DIFFERS])
    return Comparison(df, bool(compared.any()) and not bool((df["verdict"] == DIFFERS).any()))


def compare_runs(results_dir: Path, reference_dir: Path, *, strict: bool = False,
                 warn: Callable[[str], None] = lambda m: None) -> Comparison:
    """Load and group the records of `results_dir` and of `reference_dir`, and compare them."""
    runs = group_records(load_records(results_dir, strict=strict, warn=warn).records, warn=warn)
    reference = group_records(load_records(reference_dir).records)
    return compare_groups(runs, reference)


# ----------------------------------------------------------------------------------------- text
def _pm(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.2f}" + ("" if math.isnan(std) else f" ± {std:.2f}")


def _delta(row, m: str) -> str:
    d = row[f"{m}_delta"]
    if pd.isna(d):
        return ""
    lo, hi = row[f"{m}_ci95_low"], row[f"{m}_ci95_high"]
    return f"{d:+.2f}" + ("" if pd.isna(lo) else f" [{lo:+.2f}, {hi:+.2f}]")


def comparison_markdown(cmp: Comparison, reference_name: str = "the committed study") -> str:
    """The report's section on the check: the table, the rule, and the verdict."""
    df = cmp.table
    out = [f"## Check against {reference_name}", ""]
    if df.empty:
        return "\n".join(out + ["*(no configurations to compare)*", ""])
    head = ("configuration", "runs (yours / reference)", "test error % yours", "reference", "Δ pp [95% CI]",
            "train error % yours", "reference", "Δ pp [95% CI]", "verdict")
    out += ["| " + " | ".join(head) + " |", "|---|--:|--:|--:|--:|--:|--:|--:|---|"]
    for _, row in df.iterrows():
        name = f"{row.dataset} `{row.label}`" + (f" (reference `{row.reference_label}`)"
                                                if row.reference_label and row.reference_label != row.label else "")
        if row.verdict == NOT_IN_REFERENCE:
            out.append(f"| {name} | {_runs(row.seeds, row.diverged)} / – | | | | | | | {row.verdict} |")
            continue
        cells = [name, f"{_runs(row.seeds, row.diverged)} / {_runs(row.reference_seeds, row.reference_diverged)}"]
        for m in METRICS:
            cells += [_pm(row[f"{m}_mean"], row[f"{m}_std"]), _pm(row[f"reference_{m}_mean"], row[f"reference_{m}_std"]),
                      _delta(row, m)]
        cells.append(f"**{row.verdict}**" if row.verdict == DIFFERS else row.verdict)
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += ["", RULE, ""]
    out += [f"- {row.dataset} `{row.label}`: {row.reason}" for _, row in df.iterrows()]
    out += ["", summary_line(cmp), ""]
    return "\n".join(out)


def _runs(n, diverged) -> str:
    return f"{n}" + (f" ({diverged} diverged)" if diverged else "")


def summary_line(cmp: Comparison) -> str:
    """One line for the terminal: how many configurations were compared and which differ."""
    df = cmp.table
    compared = df[df["verdict"].isin([AGREES, DIFFERS])]
    differ = df[df["verdict"] == DIFFERS]
    rest = len(df) - len(compared)
    tail = f" ({rest} not compared: not in the reference or inconclusive)" if rest else ""
    if compared.empty:
        return f"check: no configuration could be compared with the committed study{tail}"
    if differ.empty:
        return f"check: all {len(compared)} configuration(s) compared agree with the committed study{tail}"
    names = ", ".join(f"{r.dataset}/{r.label}" for r in differ.itertuples())
    return f"check: {len(differ)} of {len(compared)} configuration(s) compared differ from the committed study: {names}{tail}"
