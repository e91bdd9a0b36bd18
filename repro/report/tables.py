"""Tables of the report: one pandas DataFrame per dataset, written as CSV, LaTeX and Markdown.

The DataFrame holds plain numbers (errors and rejection in %, losses as recorded); the text formats are
made from it here. LaTeX is written by a small function of our own (pandas' to_latex needs jinja2).
A row with one finished run shows that run's numbers: no ± and no range (its std is empty in the CSV).

Collapsed runs (repro.net.collapse) are an outcome of their own: a row counts them, with an exact
(Clopper-Pearson) 95% interval for the collapse rate, and every error statistic (mean, std, median, range, t
interval of the mean, Δ) is over the runs that did not collapse. A row whose remaining runs hold some far from
the rest (repro.report.stats.far_runs) says so in its `outcome`; every error cell shows the median and range
beside mean ± std. Bold Δ: Holm's correction over the table's comparisons (stats.HOLM_TEXT).
"""

from __future__ import annotations

import math

import pandas as pd

from repro.report import fmt
from repro.report.records import Group, Inputs, comparison_label, difference
from repro.report.references import REFERENCES
from repro.report.stats import (
    CI_METHOD, FAR_MADS, FAR_MIN_PP, HOLM_TEXT, clopper_pearson, far_runs, holm, mean_interval, summarize)

INT_COLUMNS = ("passes", "seeds", "diverged", "collapsed", "rejection_1pct_unreached", "delta_holm", "delta_paired")
TEXT_COLUMNS = ("kind", "label", "title", "outcome", "delta_vs", "source")
COLUMNS = (
    "kind", "label", "title", "passes", "seeds", "diverged", "collapsed", "collapse_rate_low", "collapse_rate_high",
    "outcome",
    "train_error_mean", "train_error_std", "train_error_min", "train_error_max", "train_error_median",
    "test_error_mean", "test_error_std", "test_error_min", "test_error_max", "test_error_median",
    "test_error_ci_low", "test_error_ci_high",
    "test10k_error_mean", "test10k_error_std",
    "train_loss_mean", "train_loss_std", "test_loss_mean", "test_loss_std", "rejection_1pct_mean", "rejection_1pct_std",
    "rejection_1pct_unreached",
    "delta_vs", "delta_test_error", "delta_ci_low", "delta_ci_high", "delta_df", "delta_p", "delta_holm", "source",
    "delta_paired", "delta_corr",
)


def outcome_text(n_runs: int, n_collapsed: int, stable_test_errors: list[float]) -> str:
    """How a row's runs ended, beyond mean ± std: collapses (k/n, exact 95% interval) and runs far from the
    rest of the row (their number and range), e.g. `2/16 collapsed [2–38%]; 3 of 14 far from the median: 12.10–47.18`."""
    parts = []
    if n_collapsed:
        low, high = clopper_pearson(n_collapsed, n_runs)
        parts.append(f"{n_collapsed}/{n_runs} collapsed [{100 * low:.0f}–{100 * high:.0f}%]")
    far = far_runs(stable_test_errors)
    if far:
        parts.append(f"{len(far)} of {len(stable_test_errors)} far from the median: {far[0]:.2f}–{far[-1]:.2f}")
    return "; ".join(parts)


def build_table(groups: dict[tuple[str, str], Group], dataset: str, order: list[str], ladder: list[str],
                references=REFERENCES) -> pd.DataFrame:
    """One row per label of `dataset` in `order`, then the reference rows that belong to this dataset."""
    rows = []
    for label in order:
        g = groups[(dataset, label)]
        row = {"kind": "run", "label": label, "title": g.first["rung_title"], "passes": g.first["passes"],
               "seeds": len(g.records), "diverged": g.n_diverged, "collapsed": g.n_collapsed, "source": ""}
        low, high = clopper_pearson(g.n_collapsed, len(g.records))
        row["collapse_rate_low"], row["collapse_rate_high"] = 100.0 * low, 100.0 * high
        row["outcome"] = outcome_text(len(g.records), g.n_collapsed, g.stable_values("test_error", 100.0))
        for key in ("train_error", "test_error"):
            s = summarize(g.stable_values(key, 100.0))
            row.update({f"{key}_mean": s.mean, f"{key}_std": s.std, f"{key}_min": s.min, f"{key}_max": s.max,
                        f"{key}_median": s.median})
        row["test_error_ci_low"], row["test_error_ci_high"] = mean_interval(g.stable_values("test_error", 100.0))
        for key in ("train_loss", "test_loss"):
            s = summarize(g.stable_values(key))
            row[f"{key}_mean"], row[f"{key}_std"] = s.mean, s.std
        if g.stable and all("test10k_error" in r["final"] for r in g.stable):  # mnist16: the full MNIST test set too
            s = summarize(g.stable_values("test10k_error", 100.0))
            row["test10k_error_mean"], row["test10k_error_std"] = s.mean, s.std
        rej = summarize(g.stable_values("test_rejection_at_1pct", 100.0))
        row["rejection_1pct_mean"], row["rejection_1pct_std"] = rej.mean, rej.std
        # 100%: no accepted set reaches 1% (the largest-gap block of saturated outputs already errs above it)
        row["rejection_1pct_unreached"] = sum(v >= 100.0 for v in g.stable_values("test_rejection_at_1pct", 100.0))
        vs = comparison_label(label, g.mode, order, ladder)
        step = difference(groups[(dataset, vs)], g) if vs else None
        iv = step.interval if step else None
        row["delta_paired"] = int(step.paired) if step else None
        row["delta_corr"] = step.corr if step else math.nan
        row["delta_vs"] = vs or ""
        row["delta_test_error"] = iv.diff if iv else math.nan
        row["delta_ci_low"] = iv.low if iv else math.nan
        row["delta_ci_high"] = iv.high if iv else math.nan
        row["delta_df"] = iv.df if iv else math.nan
        row["delta_p"] = iv.p if iv else math.nan
        rows.append(row)
    for row, significant in zip(rows, holm([r["delta_p"] for r in rows])):
        row["delta_holm"] = int(significant) if fmt.ok(row["delta_p"]) else None
    for ref in references:
        if ref.dataset != dataset:
            continue
        rows.append({"kind": "reference", "label": ref.name, "title": "", "passes": ref.passes, "seeds": 1,
                     "diverged": 0, "outcome": "", "train_error_mean": ref.train_error, "test_error_mean": ref.test_error,
                     "train_loss_mean": ref.train_loss, "test_loss_mean": ref.test_loss,
                     "rejection_1pct_mean": ref.rejection_1pct, "delta_vs": "", "source": ref.source})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for c in INT_COLUMNS:
        df[c] = df[c].astype("Int64")
    for c in COLUMNS:
        if c not in INT_COLUMNS and c not in TEXT_COLUMNS:
            df[c] = df[c].astype("float64")
    return df


PAPER_LOSS_NOTE = (
    "Loss, ours: (y − t)² averaged over the 10 outputs and the patterns; the paper's convention: ½ (y − t)² "
    "averaged the same way (the energy ½ Σ (y − t)² of back-propagation in 1989; the paper calls its figures "
    "MSE and gives no formula, so this reading is our assumption), i.e. half of ours. The paper's reported "
    "losses are shown in its convention only.")


def with_paper_loss(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the losses also in the paper's convention (½ of ours, PAPER_LOSS_NOTE): run rows get half of
    theirs; a reference row's reported losses move to those columns, and its columns in our convention stay
    empty, since converting them would rest on the assumed convention."""
    df = df.copy()
    run = df.kind == "run"
    for key in ("train_loss", "test_loss"):
        df[f"{key}_paper_mean"] = (0.5 * df[f"{key}_mean"]).where(run, df[f"{key}_mean"])
        df[f"{key}_paper_std"] = (0.5 * df[f"{key}_std"]).where(run, math.nan)
        df.loc[~run, [f"{key}_mean", f"{key}_std"]] = math.nan
    return df


def to_csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.6g", lineterminator="\n")


# ----------------------------------------------------------------------------------------- formatting


def _range(lo, hi, dash: str = "–") -> str:
    return f"{lo:.2f}{dash}{hi:.2f}" if fmt.ok(lo) and fmt.ok(hi) else ""


def error_cell(mean, std, lo, hi, median, pm: str = " ± ", dash: str = "–") -> str:
    """An error over seeds: mean ± std, then (min–max) and the median, so that a skewed or bimodal row is never
    described by mean ± std alone; a single run: its value."""
    if not fmt.ok(std):
        return fmt.mean_std(mean, std, pm=pm)
    return f"{fmt.mean_std(mean, std, pm=pm)} ({_range(lo, hi, dash)}), median {fmt.num(median)}"


def _delta(row, lb: str = "[", rb: str = "]", bold: tuple[str, str] = ("**", "**")) -> str:
    if not fmt.ok(row.delta_test_error):
        return ""
    ci = (" " + fmt.interval(row.delta_ci_low, row.delta_ci_high, lb=lb, rb=rb)) if fmt.ok(row.delta_ci_low) else ""
    text = fmt.num(row.delta_test_error, sign=True) + ci
    return f"{bold[0]}{text}{bold[1]}" if fmt.ok(row.delta_holm) and row.delta_holm else text


def _seeds(row) -> str:
    if row.kind == "reference":
        return "1 (reported)"
    return str(row.seeds) + (f" ({row.diverged} diverged)" if row.diverged else "")


def _unreached(row) -> str:
    """How many runs of a row cannot reach 1% error by rejection short of rejecting everything (they count
    as 100% in the mean)."""
    k = row.rejection_1pct_unreached
    return f" ({k} at 100%)" if fmt.ok(k) and k else ""


def holm_caption(df: pd.DataFrame) -> str:
    """The multiple-comparison rule behind the table's bold, with the size of its family."""
    return HOLM_TEXT.format(k=int(df["delta_p"].notna().sum()))


MD_HEADER = ("rung", "passes", "seeds", "collapsed, outliers", "train error % (min–max), median",
             "test error % (min–max), median", "train / test loss", "rejection for 1% error, %",
             "Δ test error, pp [95% CI]", "compared with")


def markdown_table(df: pd.DataFrame) -> str:
    """The table in Markdown; with the columns of with_paper_loss, a loss column in the paper's convention
    follows ours. Error statistics are over the runs that did not collapse."""
    paper_loss = "test_loss_paper_mean" in df.columns
    full_test = bool(df["test10k_error_mean"].notna().any())
    header = list(MD_HEADER)
    loss_at = header.index("train / test loss")
    if paper_loss:
        header[loss_at:loss_at + 1] = ["train / test loss, ours", "train / test loss, paper's convention (½ of ours)"]
    if full_test:
        header.insert(loss_at, "test error %, all 10,000 MNIST test digits")
    align = ["---" if h in ("rung", "collapsed, outliers", "compared with") else "--:" for h in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row in df.itertuples(index=False):
        name = f"`{row.label}`" if row.kind == "run" else f"*{row.label}*"
        cells = [
            name, str(row.passes) if fmt.ok(row.passes) else "", _seeds(row),
            (row.outcome or "none") if row.kind == "run" else "",
            error_cell(row.train_error_mean, row.train_error_std, row.train_error_min, row.train_error_max,
                       row.train_error_median),
            error_cell(row.test_error_mean, row.test_error_std, row.test_error_min, row.test_error_max,
                       row.test_error_median),
            " / ".join(fmt.sci(m, sd) for m, sd in ((row.train_loss_mean, row.train_loss_std),
                                                 (row.test_loss_mean, row.test_loss_std))) if fmt.ok(row.test_loss_mean) else "",
            fmt.mean_std(row.rejection_1pct_mean, row.rejection_1pct_std, 1) + _unreached(row),
            _delta(row), f"`{row.delta_vs}`" if row.delta_vs else "",
        ]
        if full_test:
            cells.insert(loss_at, fmt.mean_std(row.test10k_error_mean, row.test10k_error_std))
        if paper_loss:
            cells.insert(loss_at + 1 + full_test, " / ".join(fmt.sci(m, sd) for m, sd in (
                (row.train_loss_paper_mean, row.train_loss_paper_std),
                (row.test_loss_paper_mean, row.test_loss_paper_std))) if fmt.ok(row.test_loss_paper_mean) else "")
        if row.kind == "run" and not fmt.ok(row.test_error_mean):
            cells[4:len(header) - 2] = ["n/a (no run that finished without collapsing)"] + [""] * (len(header) - 7)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(c, c) for c in str(text))


def to_latex(df: pd.DataFrame, dataset: str) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); run rows, a rule, then the reference rows."""
    header = ["Rung", "Passes", "Seeds", "Collapsed", r"Train err.\ (\%)", r"Test err.\ (\%)", r"Test range (\%)",
              r"Test median (\%)", r"Rej.\ @1\% (\%)", r"$\Delta$ test, pp [95\% CI]"]
    lines = [
        f"% {dataset}: generated by `repro report` from results/runs; errors are mean $\\pm$ sample std over the "
        "seeds that did not collapse (repro/net/collapse.py); Collapsed: collapsed runs of all.",
        f"% Delta: {CI_METHOD}; {holm_caption(df)}.",
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    ruled = False
    for row in df.itertuples(index=False):
        if row.kind == "reference" and not ruled:
            lines.append(r"\midrule")
            ruled = True
        name = tex_escape(row.label) if row.kind == "run" else r"\textit{" + tex_escape(row.label) + "}"
        cells = [
            name, str(row.passes) if fmt.ok(row.passes) else "", tex_escape(_seeds(row)),
            f"{row.collapsed}/{row.seeds}" if row.kind == "run" else "",
            fmt.mean_std(row.train_error_mean, row.train_error_std, pm=r" $\pm$ "),
            fmt.mean_std(row.test_error_mean, row.test_error_std, pm=r" $\pm$ "),
            _range(row.test_error_min, row.test_error_max, "--") if fmt.ok(row.test_error_std) else "",
            fmt.num(row.test_error_median) if fmt.ok(row.test_error_std) else "",
            fmt.mean_std(row.rejection_1pct_mean, row.rejection_1pct_std, 1, pm=r" $\pm$ "),
            _delta(row, bold=(r"\textbf{", "}")).replace("-", "$-$").replace("+", "$+$"),
        ]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- results.md
def _all_multi(frames: dict[str, pd.DataFrame]) -> bool:
    """Every run row rests on two or more finished runs (or has none)."""
    return all(int(r.seeds) - int(r.diverged) != 1 for df in frames.values() for r in df[df.kind == "run"].itertuples())


def _provenance(groups: list[Group]) -> list[str]:
    recs = [r for g in groups for r in g.records]

    def distinct(fn) -> str:
        return ", ".join(f"`{v}`" for v in sorted({fn(r) for r in recs}))

    return [
        f"- dataset fingerprint: {distinct(lambda r: r['dataset_fingerprint'])}",
        f"- engine: {distinct(lambda r: r['engine'])}; device: {distinct(lambda r: r['device'])}",
        f"- versions: repro {distinct(lambda r: r['versions']['repro'])}; torch {distinct(lambda r: r['versions'].get('torch', '?'))}; "
        f"numpy {distinct(lambda r: r['versions'].get('numpy', '?'))}; python {distinct(lambda r: r['versions'].get('python', '?'))}",
        f"- git commit: {distinct(lambda r: r['git_commit'])}",
    ]


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {k}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def provenance_summary(records: list[dict]) -> list[str]:
    """What the records read are, from the records alone: how many of each mode per dataset, and the commits
    their `git_commit` fields name (with how many records each)."""
    modes: dict[str, dict[str, int]] = {}
    commits: dict[str, int] = {}
    for r in records:
        per = modes.setdefault(r["dataset"], {})
        per[r["mode"]] = per.get(r["mode"], 0) + 1
        commits[r["git_commit"]] = commits.get(r["git_commit"], 0) + 1
    out = [f"- {ds}: {sum(c.values()):,} records ({_counted(c)})" for ds, c in sorted(modes.items())]
    shown = ", ".join(f"`{c[:7]}{'-dirty' if c.endswith('-dirty') else ''}` ({n:,})"
                      for c, n in sorted(commits.items(), key=lambda kv: (-kv[1], kv[0])))
    out.append(f"- records made at commits {shown} (each record's `git_commit`; `-dirty`: `repro/` had "
               "uncommitted changes when its job started)")
    return out


def results_markdown(frames: dict[str, pd.DataFrame], groups: dict[tuple[str, str], Group],
                     order: dict[str, list[str]], inputs: Inputs, notes: list[str], rungs,
                     figures: dict[str, tuple[str, str]], faithful: pd.DataFrame | None = None,
                     *, runs: str = "results/runs/", title: str = "Results",
                     sections: tuple[str, ...] = ()) -> str:
    """The report's text: `figures` maps file name -> (link, caption); `runs` names the folder read;
    `sections` (Markdown, each with its own heading) go after the tables and before the figures."""
    n_dropped = sum(len(g.dropped) for g in groups.values())
    in_tables = sum(len(g.records) for g in groups.values())
    out = [
        f"# {title}",
        "",
        f"Generated by `repro report` from the run records under `{runs}`: {len(inputs.records):,} valid records "
        f"read ({in_tables:,} in the tables by dataset below"
        + ("; the others in their own sections" if in_tables < len(inputs.records) else "") + "), "
        f"{len(inputs.skipped)} file(s) skipped as damaged or foreign, {n_dropped} "
        "record(s) dropped as incompatible (see Warnings). Rerunning `repro report` on the same records gives "
        "identical files.",
        "",
        *provenance_summary(inputs.records),
        "",
    ]
    if rungs:
        out += ["Ladder (cumulative: each rung adds one change to the rung above it):", ""]
        out += [f"{i}. `{r.name}`: {r.title}" for i, r in enumerate(rungs)]
        extra = sorted({(lb, groups[(ds, lb)].first["rung_title"]) for ds, labels in order.items()
                        for lb in labels if lb not in {r.name for r in rungs}})
        if extra:
            out += ["", "Other configurations:", ""] + [f"- `{lb}`: {t}" for lb, t in extra]
        out.append("")
    for ds, df in frames.items():
        gs = [groups[(ds, lb)] for lb in order[ds]]
        out += [f"## {ds}", "", markdown_table(df), ""]
        out += ["Provenance of these runs:", ""] + _provenance(gs) + [""]
    if frames:
        out += [
            "Notes on the tables:",
            "",
            "- A run *collapsed* when it diverged or ended above 50% training error (`repro/net/collapse.py` gives "
            "the rule and its reason). *collapsed, outliers*: collapsed runs of all seeds with an exact "
            "(Clopper–Pearson) 95% interval for the collapse rate, and the runs that did not collapse but lie far "
            f"from their row's median (more than {FAR_MADS:g} normal-scaled median absolute deviations and "
            f"{FAR_MIN_PP:g} point away), with their range.",
            "- Errors and rejection in %, over the runs that did not collapse: mean ± sample standard deviation "
            "(ddof=1), (min–max) and the median" + ("" if _all_multi(frames) else "; a row with one such run "
                                                   "shows its value alone") + ". *seeds*: runs found; runs that "
            "diverged (non-finite loss, `diverged_at_pass` set) are counted as collapsed.",
            f"- Δ test error: mean test error of the row minus that of the row named in *compared with* "
            f"(the previous rung of the ladder; the baseline for rows outside the ladder), in percentage points, "
            f"over the runs that did not collapse on either side, with a {CI_METHOD}; "
            "bold: significant at 5% family-wise error after Holm's correction over the comparisons of that "
            "table (Welch t tests).",
            "- Loss: the training loss of the run: mean squared error averaged over the 10 outputs (targets ±1) "
            "for tanh outputs, cross-entropy for softmax outputs; the paper's targets lay inside ±1, so its "
            "losses are comparable in order of magnitude only.",
            "- Rejection for 1% error: smallest share of the test set to reject (patterns whose two largest "
            "outputs are closest) so that the error on the rest is at most 1%; patterns with exactly tied gaps "
            "may be rejected in part, at their expected error (`repro/net/metrics.py`); 100% when the patterns "
            "with the largest gap already err above 1%.",
            "- Runs of one (dataset, label) must share dataset fingerprint, config digest and repro version; "
            "otherwise only the most common combination is kept and the rest is listed under Warnings.",
            "- Reference rows (single runs, italic):",
        ]
        out += [f"  - *{ref.name}*: {ref.source}" for ref in REFERENCES]
        out.append("")
    if faithful is not None:
        out += [faithful_block(faithful, heading=True), ""]
    for section in sections:
        out += [section.rstrip(), ""]
    if figures:
        out += ["## Figures", ""]
        out += [f"![{caption}]({path})\n" for path, caption in figures.values()]
        out.append("")
    out += ["## Warnings", ""]
    out += [f"- {n}" for n in notes] or ["- none"]
    out.append("")
    return "\n".join(out)


def paper_results_block(frames: dict[str, pd.DataFrame], figures: dict[str, tuple[str, str]]) -> str:
    """The generated part of paper.md's results section: every table, then the figures (name -> link, caption)."""
    out = []
    for ds, df in frames.items():
        out += [f"### {ds}", "", markdown_table(df), ""]
    out += ["Errors over the runs that did not collapse (`repro/net/collapse.py`); collapses counted apart with "
            "exact 95% intervals. Δ test error: against the previous rung, percentage points, with a " + CI_METHOD
            + "; bold: significant at 5% family-wise error after Holm's correction over the comparisons of each "
            "table (Welch t tests; " + ", ".join(f"{ds}: {int(df['delta_p'].notna().sum())}"
                                                for ds, df in frames.items()) + ").", ""]
    for path, caption in figures.values():
        out += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    return "\n".join(out)


def _headline_error(r) -> str:
    """Test error over the runs that did not collapse; a row with collapses or far runs adds its median and
    its outcome, so that it is not described by mean ± std alone."""
    text = fmt.mean_std(r.test_error_mean, r.test_error_std)
    if r.kind == "run" and r.outcome:
        text += f" (median {fmt.num(r.test_error_median)}; {r.outcome})"
    return text


def headline_block(frames: dict[str, pd.DataFrame], order: dict[str, list[str]], figures: dict[str, str],
                   faithful: pd.DataFrame | None = None, most_literal: str | None = None,
                   matches: pd.DataFrame | None = None) -> str:
    """README headline: final test error per rung on each dataset (mean ± std over the seeds that did not
    collapse, with collapses and far runs named), the faithfulness study's most literal reading with how many
    of the paper's numbers it matches (`matches`: repro.report.match's table), and the ladder plot."""
    datasets = list(frames)
    if not datasets:
        return "*(no results yet: run `repro ablate --all`, then `repro report`)*"
    labels = [lb for lb in dict.fromkeys(lb for ds in datasets for lb in order[ds])]
    head = ["rung"] + [f"{ds} test error %" for ds in datasets] + [f"{ds} seeds" for ds in datasets]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|--:" * (len(head) - 1) + "|"]
    for lb in labels:
        cells, seeds = [f"`{lb}`"], []
        for ds in datasets:
            df = frames[ds]
            row = df[(df.kind == "run") & (df.label == lb)]
            if len(row):
                r = row.iloc[0]
                cells.append(_headline_error(r))
                seeds.append(_seeds(r))
            else:
                cells.append("")
                seeds.append("")
        lines.append("| " + " | ".join(cells + seeds) + " |")
    refs = [f"*{r.label}*: {fmt.num(r.test_error_mean)}% ({ds})" for ds, df in frames.items()
            for r in df[df.kind == "reference"].itertuples() if fmt.ok(r.test_error_mean)]
    out = ["\n".join(lines), "", "Reference (single runs): " + "; ".join(refs) + "." if refs else ""]
    top = faithful[(faithful.kind == "run") & (faithful.label == most_literal)] if faithful is not None else []
    if len(top):
        r = top.iloc[0]
        ref = faithful[faithful.kind == "reference"].iloc[0]
        out += ["", f"Faithfulness study (`ablations/faithful/`, usps): its most literal reading of the paper, "
                    f"`{r.label}`, scores {fmt.mean_std(r.train_error_mean, r.train_error_std)}% train and "
                    f"{fmt.mean_std(r.test_error_mean, r.test_error_std)}% test error and needs "
                    f"{fmt.mean_std(r.rejection_1pct_mean, r.rejection_1pct_std, 1)}% rejection for 1% error "
                    f"({_seeds(r)} seeds); the paper reports {fmt.num(ref.train_error_mean)}%, "
                    f"{fmt.num(ref.test_error_mean)}% and {fmt.num(ref.rejection_1pct_mean, 1)}%."]
        rows = matches[matches.label == most_literal] if matches is not None else []
        if len(rows):
            out[-1] += (f" By the report's rule for a match (the paper's single run inside the 95% prediction "
                        f"interval for one new run), it matches {(rows.verdict == 'matches').sum()} of the "
                        f"{len(rows)} numbers the paper reports (errors, losses, rejection).")
    if "ladder.png" in figures:
        out += ["", f"![final test error per rung]({figures['ladder.png']})"]
    return "\n".join(out)


def faithful_block(df: pd.DataFrame | None, heading: bool = False) -> str:
    """The faithfulness study's table: which reading of the paper reproduces its numbers."""
    if df is None:
        return "*(no faithfulness runs yet: `repro ablate --ladder-dir ablations/faithful`, then `repro report`)*"
    return "\n".join([
        *(["## Faithfulness study (usps)", ""] if heading else []),
        "Rows of `ablations/faithful/` (cumulative: each rung adds one reading of the paper to the rung above; "
        "Δ against the rung above) and the comparison network `fc40`, next to the paper's own numbers "
        "(train/test error, train/test loss, rejection for 1% error).", "",
        markdown_table(df), "",
        *([PAPER_LOSS_NOTE, ""] if "test_loss_paper_mean" in df.columns else [])])
