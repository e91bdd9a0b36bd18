"""Tables of the report: one pandas DataFrame per dataset, written as CSV, LaTeX and Markdown.

The DataFrame holds plain numbers (errors and rejection in %, losses as recorded); the text formats are
made from it here. LaTeX is written by a small function of our own (pandas' to_latex needs jinja2).
A row with one finished run shows that run's numbers: no ± and no range (its std is empty in the CSV).
"""

from __future__ import annotations

import math

import pandas as pd

from repro.report.records import Group, Inputs, comparison_label
from repro.report.references import REFERENCES
from repro.report.stats import CI_METHOD, summarize, welch_interval

INT_COLUMNS = ("passes", "seeds", "diverged")
COLUMNS = (
    "kind", "label", "title", "passes", "seeds", "diverged",
    "train_error_mean", "train_error_std", "train_error_min", "train_error_max",
    "test_error_mean", "test_error_std", "test_error_min", "test_error_max",
    "test10k_error_mean", "test10k_error_std",
    "train_loss_mean", "train_loss_std", "test_loss_mean", "test_loss_std", "rejection_1pct_mean", "rejection_1pct_std",
    "delta_vs", "delta_test_error", "delta_ci_low", "delta_ci_high", "delta_df", "source",
)


def build_table(groups: dict[tuple[str, str], Group], dataset: str, order: list[str], ladder: list[str],
                references=REFERENCES) -> pd.DataFrame:
    """One row per label of `dataset` in `order`, then the reference rows that belong to this dataset."""
    rows = []
    for label in order:
        g = groups[(dataset, label)]
        row = {"kind": "run", "label": label, "title": g.first["rung_title"], "passes": g.first["passes"],
               "seeds": len(g.records), "diverged": g.n_diverged, "source": ""}
        for key in ("train_error", "test_error"):
            s = summarize(g.values(key, 100.0))
            row.update({f"{key}_mean": s.mean, f"{key}_std": s.std, f"{key}_min": s.min, f"{key}_max": s.max})
        for key in ("train_loss", "test_loss"):
            s = summarize(g.values(key))
            row[f"{key}_mean"], row[f"{key}_std"] = s.mean, s.std
        if g.ok and all("test10k_error" in r["final"] for r in g.ok):  # mnist16: the full MNIST test set too
            s = summarize(g.values("test10k_error", 100.0))
            row["test10k_error_mean"], row["test10k_error_std"] = s.mean, s.std
        rej = summarize(g.values("test_rejection_at_1pct", 100.0))
        row["rejection_1pct_mean"], row["rejection_1pct_std"] = rej.mean, rej.std
        vs = comparison_label(label, order, ladder)
        iv = welch_interval(groups[(dataset, vs)].values("test_error", 100.0), g.values("test_error", 100.0)) if vs else None
        row["delta_vs"] = vs or ""
        row["delta_test_error"] = iv.diff if iv else math.nan
        row["delta_ci_low"] = iv.low if iv else math.nan
        row["delta_ci_high"] = iv.high if iv else math.nan
        row["delta_df"] = iv.df if iv else math.nan
        rows.append(row)
    for ref in references:
        if ref.dataset != dataset:
            continue
        rows.append({"kind": "reference", "label": ref.name, "title": "", "passes": ref.passes, "seeds": 1,
                     "diverged": 0, "train_error_mean": ref.train_error, "test_error_mean": ref.test_error,
                     "train_loss_mean": ref.train_loss, "test_loss_mean": ref.test_loss,
                     "rejection_1pct_mean": ref.rejection_1pct, "delta_vs": "", "source": ref.source})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for c in INT_COLUMNS:
        df[c] = df[c].astype("Int64")
    for c in COLUMNS:
        if c not in INT_COLUMNS and c not in ("kind", "label", "title", "delta_vs", "source"):
            df[c] = df[c].astype("float64")
    return df


PAPER_LOSS_COLUMNS = ("train_loss_paper_mean", "train_loss_paper_std", "test_loss_paper_mean", "test_loss_paper_std")
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
def _ok(x) -> bool:
    return x is not None and not pd.isna(x)


def _num(x, digits: int = 2, sign: bool = False) -> str:
    if not _ok(x):
        return ""
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _sci(x, std=None) -> str:
    """Loss in scientific notation, with its spread over seeds when there is one."""
    if not _ok(x):
        return ""
    return f"{x:.2e}" + (f" ± {std:.1e}" if _ok(std) else "")


def _pm(mean, std, digits: int = 2, pm: str = " ± ") -> str:
    if not _ok(mean):
        return ""
    return _num(mean, digits) + (pm + _num(std, digits) if _ok(std) else "")


def _range(lo, hi, dash: str = "–") -> str:
    return f"{lo:.2f}{dash}{hi:.2f}" if _ok(lo) and _ok(hi) else ""


def _delta(row, lb: str = "[", rb: str = "]") -> str:
    if not _ok(row.delta_test_error):
        return ""
    ci = f" {lb}{_num(row.delta_ci_low, sign=True)}, {_num(row.delta_ci_high, sign=True)}{rb}" if _ok(row.delta_ci_low) else ""
    return _num(row.delta_test_error, sign=True) + ci


def _seeds(row) -> str:
    if row.kind == "reference":
        return "1 (reported)"
    return str(row.seeds) + (f" ({row.diverged} diverged)" if row.diverged else "")


MD_HEADER = ("rung", "passes", "seeds", "train error % (min–max)", "test error % (min–max)", "train / test loss",
             "rejection for 1% error, %", "Δ test error, pp [95% CI]", "compared with")


def markdown_table(df: pd.DataFrame) -> str:
    """The table in Markdown; with the columns of with_paper_loss, a loss column in the paper's convention
    follows ours."""
    paper_loss = "test_loss_paper_mean" in df.columns
    full_test = bool(df["test10k_error_mean"].notna().any())
    header = list(MD_HEADER)
    if paper_loss:
        header[5:6] = ["train / test loss, ours", "train / test loss, paper's convention (½ of ours)"]
    if full_test:
        header.insert(5, "test error %, all 10,000 MNIST test digits")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["--:"] * (len(header) - 2) + ["---"]) + "|"]
    for row in df.itertuples(index=False):
        name = f"`{row.label}`" if row.kind == "run" else f"*{row.label}*"
        cells = [
            name, str(row.passes) if _ok(row.passes) else "", _seeds(row),
            _pm(row.train_error_mean, row.train_error_std) + (f" ({_range(row.train_error_min, row.train_error_max)})" if _ok(row.train_error_std) else ""),
            _pm(row.test_error_mean, row.test_error_std) + (f" ({_range(row.test_error_min, row.test_error_max)})" if _ok(row.test_error_std) else ""),
            " / ".join(_sci(m, sd) for m, sd in ((row.train_loss_mean, row.train_loss_std),
                                                 (row.test_loss_mean, row.test_loss_std))) if _ok(row.test_loss_mean) else "",
            _pm(row.rejection_1pct_mean, row.rejection_1pct_std, 1),
            _delta(row), f"`{row.delta_vs}`" if row.delta_vs else "",
        ]
        if full_test:
            cells.insert(5, _pm(row.test10k_error_mean, row.test10k_error_std))
        if paper_loss:
            cells.insert(6 + full_test, " / ".join(_sci(m, sd) for m, sd in (
                (row.train_loss_paper_mean, row.train_loss_paper_std),
                (row.test_loss_paper_mean, row.test_loss_paper_std))) if _ok(row.test_loss_paper_mean) else "")
        if row.kind == "run" and not _ok(row.test_error_mean):
            cells[3:len(header) - 2] = ["n/a (no finished run)"] + [""] * (len(header) - 6)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(c, c) for c in str(text))


def to_latex(df: pd.DataFrame, dataset: str) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); run rows, a rule, then the reference rows."""
    header = ["Rung", "Passes", "Seeds", r"Train err.\ (\%)", r"Test err.\ (\%)", r"Test range (\%)",
              r"Rej.\ @1\% (\%)", r"$\Delta$ test, pp [95\% CI]"]
    lines = [
        f"% {dataset}: generated by `repro report` from results/runs; errors are mean $\\pm$ sample std over seeds.",
        f"% Delta: {CI_METHOD}.",
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
            name, str(row.passes) if _ok(row.passes) else "", tex_escape(_seeds(row)),
            _pm(row.train_error_mean, row.train_error_std, pm=r" $\pm$ "),
            _pm(row.test_error_mean, row.test_error_std, pm=r" $\pm$ "),
            _range(row.test_error_min, row.test_error_max, "--") if _ok(row.test_error_std) else "",
            _pm(row.rejection_1pct_mean, row.rejection_1pct_std, 1, pm=r" $\pm$ "),
            _delta(row).replace("-", "$-$").replace("+", "$+$"),
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


def results_markdown(frames: dict[str, pd.DataFrame], groups: dict[tuple[str, str], Group],
                     order: dict[str, list[str]], inputs: Inputs, notes: list[str], rungs,
                     figures: dict[str, tuple[str, str]], faithful: pd.DataFrame | None = None,
                     faithful_top: str | None = None, *, runs: str = "results/runs/", title: str = "Results",
                     sections: tuple[str, ...] = ()) -> str:
    """The report's text: `figures` maps file name -> (link, caption); `runs` names the folder read;
    `sections` (Markdown, each with its own heading) go after the tables and before the figures."""
    n_dropped = sum(len(g.dropped) for g in groups.values())
    used = sum(len(g.records) for g in groups.values())
    out = [
        f"# {title}",
        "",
        f"Generated by `repro report` from the run records under `{runs}`: {used} runs used, "
        f"{len(inputs.skipped)} file(s) skipped as damaged or foreign, {n_dropped} record(s) dropped as incompatible "
        "(see Warnings). Rerunning `repro report` on the same records gives identical files.",
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
            "- Errors and rejection in %, as mean ± sample standard deviation (ddof=1) over seeds, "
            "(min–max) in parentheses" + ("" if _all_multi(frames) else "; a row with one finished run shows "
                                          "its value alone") + ". *seeds*: finished runs found; runs that diverged (non-finite loss, "
            "`diverged_at_pass` set) are counted but left out of every mean, spread, interval and figure.",
            f"- Δ test error: mean test error of the row minus that of the row named in *compared with* "
            f"(the previous rung of the ladder; the baseline for rows outside the ladder), in percentage points, "
            f"with a {CI_METHOD}. Seeds are shared between rows, so the intervals are conservative.",
            "- Loss: the training loss of the run: mean squared error averaged over the 10 outputs (targets ±1) "
            "for tanh outputs, cross-entropy for softmax outputs; the paper's targets lay inside ±1, so its "
            "losses are comparable in order of magnitude only.",
            "- Rejection for 1% error: smallest share of the test set to reject (patterns whose two largest "
            "outputs are closest) so that the error on the rest is at most 1%.",
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
    out += ["Δ test error: against the previous rung, percentage points, with a " + CI_METHOD + ".", ""]
    for path, caption in figures.values():
        out += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    return "\n".join(out)


def headline_block(frames: dict[str, pd.DataFrame], order: dict[str, list[str]], figures: dict[str, str],
                   faithful: pd.DataFrame | None = None, faithful_top: str | None = None) -> str:
    """README headline: final test error per rung on each dataset (mean ± std over seeds), and the ladder plot."""
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
                cells.append(_pm(r.test_error_mean, r.test_error_std))
                seeds.append(_seeds(r))
            else:
                cells.append("")
                seeds.append("")
        lines.append("| " + " | ".join(cells + seeds) + " |")
    refs = [f"*{r.label}*: {_num(r.test_error_mean)}% ({ds})" for ds, df in frames.items()
            for r in df[df.kind == "reference"].itertuples() if _ok(r.test_error_mean)]
    out = ["\n".join(lines), "", "Reference (single runs): " + "; ".join(refs) + "." if refs else ""]
    top = faithful[(faithful.kind == "run") & (faithful.label == faithful_top)] if faithful is not None else []
    if len(top):  # the faithfulness ladder's last rung: its most literal reading of the paper
        r = top.iloc[0]
        ref = faithful[faithful.kind == "reference"].iloc[0]
        out += ["", f"Faithfulness study (`ablations/faithful/`, usps): its most literal reading of the paper, "
                    f"`{r.label}`, scores {_pm(r.train_error_mean, r.train_error_std)}% train and "
                    f"{_pm(r.test_error_mean, r.test_error_std)}% test error and needs "
                    f"{_pm(r.rejection_1pct_mean, r.rejection_1pct_std, 1)}% rejection for 1% error "
                    f"({_seeds(r)} seeds); the paper reports {_num(ref.train_error_mean)}%, "
                    f"{_num(ref.test_error_mean)}% and {_num(ref.rejection_1pct_mean, 1)}%."]
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
