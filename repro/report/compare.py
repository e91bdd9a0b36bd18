"""Checks a user's runs against the committed study (the reference): are they the same experiment's numbers?

For every configuration of the user's runs, the reference configuration it is compared with is the one of
the same dataset, label and config digest (or, when the label differs, the one configuration of the same
dataset and config digest). Configurations without one are listed as "not in the reference".

A run is *collapsed* by the record's `collapsed` field (repro.net.collapse: diverged, or final training error
above 50%). Collapses are an outcome of their own, so each configuration with 2 or more runs on both sides
gets three tests:

- **collapse rate**: Fisher's exact test (two-sided, tables as probable as the observed one or less) on the
  collapsed counts k/n of the two sides. The collapse tests form their own family, at family-wise level
  COLLAPSE_ALPHA by Tarone's Bonferroni for discrete tests: a test whose smallest attainable p-value (with the
  total number of collapses fixed) could never reach the level is not counted, so configurations in which
  nothing or almost nothing collapsed do not dilute the others. The level is high because at 16 seeds no level
  near 1% could flag even 6 of 16 collapses against 1 of 16 (p = 0.08); Fisher's test is discrete, and where
  collapses are rare its false-flag rate lies far below its level (repro.report.calibration measures it).
- **test error**, percentage points, of the runs that did not collapse: Welch's t-test of the difference of means.
- **train error**, relative: Welch's t-test on log(train error %) of the runs that did not collapse (floored at
  TRAIN_FLOOR_PP), so that a configuration at 0.1% train error is flagged when it triples just as one at 1% is;
  the ratio shown is the ratio of geometric means.

The error tests of all configurations compared form one family: a test is flagged by Holm's step-down
procedure at family-wise level ERROR_ALPHA, half of the 1% aimed at for the whole check: at levels near 1e-4
Welch's test is only approximately right for 16 runs, and the collapse tests add their own share; the
measured total (repro.report.calibration, quoted in the README) is the figure that counts. An error test
needs 2 or more runs that did not collapse on each side; without them only the collapse counts are compared.
There is no margin: a real difference, however small, is a difference, and runs that differ from the
reference only by floating-point rounding (another device, engine or library version) are new samples of the
same distribution.

With a single run on one side (no test is possible) a configuration differs when that run's test error lies
outside the other side's min–max range widened by MARGIN_PP, or its train error outside that range widened by
the factor TRAIN_RATIO (collapsed runs included: a collapse lands far outside); a single run on each side is
compared so only when both are the same seed, otherwise it is *inconclusive*, as is a side with no finished run.
These single-run verdicts are outside the family-wise control.

A configuration differs when any of its tests does; otherwise it **agrees**. `all_agree` is True when at least
one configuration was compared and none differs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from repro.report import fmt
from repro.report.records import Group
from repro.report.stats import fisher_exact, holm, summarize, welch_interval

ERROR_ALPHA = 0.005  # family-wise level of the error tests (Holm over every configuration compared)
COLLAPSE_ALPHA = 0.1  # family-wise level of the collapse tests (Fisher's exact test, Tarone's Bonferroni)
TRAIN_FLOOR_PP = 0.01  # log scale floor for train error: below one pattern in 7,291
MARGIN_PP = 0.3  # single-run comparisons only
TRAIN_RATIO = 2.0  # single-run comparisons only
METRICS = ("test_error", "train_error")
AGREES, DIFFERS, INCONCLUSIVE, NOT_IN_REFERENCE = "agrees", "differs", "inconclusive", "not in the reference"
RULE = (
    "A configuration *differs* from the committed study when, with 2 or more runs on both sides, its rate of "
    f"collapsed runs differs (Fisher's exact test; Tarone's Bonferroni for discrete tests over the configurations "
    f"compared, family-wise level {COLLAPSE_ALPHA:.0%}), or the mean test "
    "error (percentage points) or the mean log train error (a relative scale) of its runs that did not collapse "
    f"differs (Welch's t-test; Holm's procedure over all configurations compared, family-wise level "
    f"{ERROR_ALPHA:.0%}); with a single run on one side, when that run's test error lies outside the other "
    f"side's min–max range widened by {MARGIN_PP} points or its train error outside that range widened by a "
    f"factor {TRAIN_RATIO:g}; with a single run on each side, when they are the same seed and differ that much "
    "(different seeds: inconclusive). Runs that differ only by floating-point rounding (another device, engine "
    "or library) agree: they are new samples of the same distribution."
)
COLUMNS = (
    "dataset", "label", "config_digest", "reference_label", "passes", "seeds", "diverged", "reference_seeds",
    "reference_diverged", "same_data", "collapsed", "reference_collapsed", "collapse_p", "collapse_verdict",
    *(f"{p}{m}_{s}" for m in METRICS for p in ("", "reference_") for s in ("mean", "std", "min", "max")),
    *(f"{m}_{s}" for m in METRICS for s in ("delta", "ci95_low", "ci95_high", "p")),
    "train_error_ratio", *(f"{m}_verdict" for m in METRICS), "verdict", "reason",
)


class Comparison(NamedTuple):
    """`table`: one row per configuration of the user's runs (COLUMNS; errors in %, statistics of the runs that
    did not collapse); `all_agree`: at least one configuration compared and none differs."""

    table: pd.DataFrame
    all_agree: bool


# ----------------------------------------------------------------------------------------- tests
def fisher_min_p(k: int, n1: int, n2: int) -> float:
    """The smallest p-value Fisher's test can give with k collapses in all among n1 and n2 runs."""
    lo, hi = max(0, k - n2), min(k, n1)
    return min(fisher_exact(lo, n1, k - lo, n2), fisher_exact(hi, n1, k - hi, n2))


def tarone_level(min_ps: list[float], alpha: float) -> float:
    """Tarone's Bonferroni level for discrete tests: alpha / K for the smallest K such that at most K of the
    tests can attain alpha / K (the others cannot be rejected at that level and are not counted)."""
    for count in range(1, len(min_ps) + 1):
        if sum(p <= alpha / count for p in min_ps) <= count:
            return alpha / count
    return alpha / max(1, len(min_ps))


def log_train(values_pp) -> list[float]:
    """The relative scale of train error: log of the percentage, floored at TRAIN_FLOOR_PP."""
    return [math.log(max(v, TRAIN_FLOOR_PP)) for v in values_pp]


def single_run_verdict(user: list[float], ref: list[float], user_seeds=(), ref_seeds=(), *,
                       relative: bool = False) -> tuple[str, str]:
    """(verdict, why) for one metric when a side has a single run (values in %): outside the other side's range
    widened by MARGIN_PP (relative=True: by the factor TRAIN_RATIO) differs."""
    if not user or not ref:
        return INCONCLUSIVE, "no finished run on " + ("either side" if not user and not ref
                                                      else "the user's side" if not user else "the reference side")

    def widened(lo: float, hi: float) -> tuple[float, float]:
        return (lo / TRAIN_RATIO, hi * TRAIN_RATIO) if relative else (lo - MARGIN_PP, hi + MARGIN_PP)

    how = f"× or ÷ {TRAIN_RATIO:g}" if relative else f"± {MARGIN_PP} pp"
    if len(user) == 1 and len(ref) == 1:
        if list(user_seeds) != list(ref_seeds) or not user_seeds:
            return INCONCLUSIVE, "one run on each side, different seeds: the spread over seeds is unknown"
        lo, hi = widened(ref[0], ref[0])
        inside = lo <= user[0] <= hi
        return (AGREES if inside else DIFFERS), f"same seed, {user[0]:.2f} against {ref[0]:.2f} ({how})"
    single, many, whose = (user[0], ref, "reference") if len(user) == 1 else (ref[0], user, "user's")
    lo, hi = widened(min(many), max(many))
    inside = lo <= single <= hi
    return (AGREES if inside else DIFFERS), (f"single value {single:.2f} {'inside' if inside else 'outside'} the "
                                             f"{whose} range {min(many):.2f}–{max(many):.2f} {how}")


# ----------------------------------------------------------------------------------------- comparison
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


def compare_groups(runs: dict[tuple[str, str], Group], reference: dict[tuple[str, str], Group]) -> Comparison:
    """The comparison of grouped runs (repro.report.records.group_records) with the reference's groups."""
    rows, family = [], []  # family: (row index, metric, p) of every error test, for Holm
    collapse_tests = []  # (row index, smallest attainable p) of every collapse test, for Tarone
    for (ds, label), g in sorted(runs.items()):
        ref, why = _match(g, reference)
        row = {"dataset": ds, "label": label, "config_digest": g.digest, "passes": g.passes,
               "seeds": len(g.records), "diverged": g.n_diverged, "reasons": []}
        rows.append(row)
        if ref is None:
            row.update(reference_label="", verdict=NOT_IN_REFERENCE, reasons=[why])
            continue
        n, n_ref, k, k_ref = len(g.records), len(ref.records), g.n_collapsed, ref.n_collapsed
        row.update(reference_label=ref.label, reference_seeds=n_ref, reference_diverged=ref.n_diverged,
                   same_data=g.first["dataset_fingerprint"] == ref.first["dataset_fingerprint"],
                   collapsed=k, reference_collapsed=k_ref)
        many = n >= 2 and n_ref >= 2
        if many:
            row["collapse_p"] = fisher_exact(k, n, k_ref, n_ref)
            collapse_tests.append((len(rows) - 1, fisher_min_p(k + k_ref, n, n_ref)))
        for m in METRICS:
            u, r = g.stable_values(m, 100.0), ref.stable_values(m, 100.0)
            for prefix, vals in (("", u), ("reference_", r)):
                s = summarize(vals)
                row.update({f"{prefix}{m}_mean": s.mean, f"{prefix}{m}_std": s.std, f"{prefix}{m}_min": s.min,
                            f"{prefix}{m}_max": s.max})
            i95 = welch_interval(r, u)
            row.update({f"{m}_delta": i95.diff, f"{m}_ci95_low": i95.low, f"{m}_ci95_high": i95.high})
            relative = m == "train_error"
            if relative and u and r:
                row["train_error_ratio"] = math.exp(float(np.mean(log_train(u)) - np.mean(log_train(r))))
            if many:
                p = (welch_interval(log_train(r), log_train(u)) if relative else welch_interval(r, u)).p
                row[f"{m}_p"] = p
                if math.isnan(p):  # the collapse test has compared these runs; nothing is left to compare here
                    row["reasons"].append(f"{m.replace('_', ' ')}: not tested, fewer than 2 runs that did not "
                                          "collapse on a side")
                else:
                    family.append((len(rows) - 1, m, p))
            else:
                all_u, all_r = g.values(m, 100.0), ref.values(m, 100.0)
                verdict, reason = single_run_verdict(all_u, all_r, [x["seed"] for x in g.ok],
                                                     [x["seed"] for x in ref.ok], relative=relative)
                row[f"{m}_verdict"] = verdict
                row["reasons"].append(f"{m.replace('_', ' ')}: {reason}")
    level = tarone_level([q for _, q in collapse_tests], COLLAPSE_ALPHA)
    for i, _ in collapse_tests:
        row = rows[i]
        flag = row["collapse_p"] <= level
        row["collapse_verdict"] = DIFFERS if flag else AGREES
        row["reasons"].append(f"collapsed {row['collapsed']}/{row['seeds']} against {row['reference_collapsed']}/"
                              f"{row['reference_seeds']}, Fisher p = {row['collapse_p']:.3g}"
                              + (f" (flagged: at most {level:.3g})" if flag else ""))
    flagged = holm([p for _, _, p in family], ERROR_ALPHA)
    for (i, m, p), flag in zip(family, flagged):
        rows[i][f"{m}_verdict"] = DIFFERS if flag else AGREES
        what = "ratio of geometric means {:.2f}".format(rows[i]["train_error_ratio"]) if m == "train_error" else \
            f"difference {rows[i][f'{m}_delta']:+.2f} pp"
        rows[i]["reasons"].append(f"{m.replace('_', ' ')}: {what}, Welch p = {p:.3g}"
                                  + (" (flagged by Holm)" if flag else ""))
    for row in rows:
        if row.get("verdict") == NOT_IN_REFERENCE:
            row["reason"] = "; ".join(row.pop("reasons"))
            continue
        verdicts = [row.get(f"{m}_verdict") for m in ("collapse", *METRICS)]
        row["verdict"] = DIFFERS if DIFFERS in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else AGREES
        if not row["same_data"]:
            row["reasons"].append("the dataset fingerprints differ (other data)")
        row["reason"] = "; ".join(row.pop("reasons"))
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for c in ("passes", "seeds", "diverged", "reference_seeds", "reference_diverged", "collapsed",
              "reference_collapsed"):
        df[c] = df[c].astype("Int64")
    for c in COLUMNS:
        if c.endswith(("_mean", "_std", "_min", "_max", "_delta", "_low", "_high", "_p", "_ratio")):
            df[c] = df[c].astype("float64")
    compared = df["verdict"].isin([AGREES, DIFFERS])
    return Comparison(df, bool(compared.any()) and not bool((df["verdict"] == DIFFERS).any()))


# ----------------------------------------------------------------------------------------- text
def _pm(mean: float, std: float) -> str:
    return fmt.mean_std(mean, std) or "n/a"


def _delta(row) -> str:
    d = row["test_error_delta"]
    if pd.isna(d):
        return ""
    lo, hi = row["test_error_ci95_low"], row["test_error_ci95_high"]
    return f"{d:+.2f}" + ("" if pd.isna(lo) else f" [{lo:+.2f}, {hi:+.2f}]")


def _p(value) -> str:
    return "" if pd.isna(value) else f"{value:.2g}"


def comparison_markdown(cmp: Comparison, reference_name: str = "the committed study") -> str:
    """The report's section on the check: the table, the rule, and the verdict."""
    df = cmp.table
    out = [f"## Check against {reference_name}", ""]
    if df.empty:
        return "\n".join(out + ["*(no configurations to compare)*", ""])
    head = ("configuration", "runs (yours / reference)", "collapsed (yours / reference)", "collapse p",
            "test error % yours", "reference", "Δ pp [95% CI]", "p", "train error % yours", "reference",
            "ratio", "p", "verdict")
    out += ["| " + " | ".join(head) + " |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for _, row in df.iterrows():
        name = f"{row.dataset} `{row.label}`" + (f" (reference `{row.reference_label}`)"
                                                if row.reference_label and row.reference_label != row.label else "")
        if row.verdict == NOT_IN_REFERENCE:
            out.append(f"| {name} | {_runs(row.seeds, row.diverged)} / – |" + " |" * 10 + f" {row.verdict} |")
            continue
        cells = [name, f"{_runs(row.seeds, row.diverged)} / {_runs(row.reference_seeds, row.reference_diverged)}",
                 f"{row.collapsed} / {row.reference_collapsed}", _p(row.collapse_p),
                 _pm(row.test_error_mean, row.test_error_std),
                 _pm(row.reference_test_error_mean, row.reference_test_error_std), _delta(row), _p(row.test_error_p),
                 _pm(row.train_error_mean, row.train_error_std),
                 _pm(row.reference_train_error_mean, row.reference_train_error_std),
                 "" if pd.isna(row.train_error_ratio) else f"×{row.train_error_ratio:.2f}", _p(row.train_error_p),
                 f"**{row.verdict}**" if row.verdict == DIFFERS else row.verdict]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += ["", "Errors: mean ± std of the runs that did not collapse; *ratio*: of their geometric mean train "
            "errors (yours / reference).", "", RULE, ""]
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
