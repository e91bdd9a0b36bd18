"""What each change of the ladder buys, whatever the order: attribution from a factorial set of runs
(`repro ablate --mode factorial`, labels `f:<change>+<change>...`, see repro.study.ladder).

Inputs: the groups of one dataset whose labels are factorial, complete: all 2^n subsets of the n changes named
in their labels, each with at least one finished run; otherwise the dataset is not analysed and a note says
which configurations are missing.

Notation: E[S] is the mean final test error (%) over the finished runs of the configuration baseline + the
changes in S; N is the set of all n changes. Every effect is what *adding* a change does to the test error, in
percentage points (pp): negative = the change lowers the error.

- Shapley value of change i: its step averaged over all n! orders of adding the changes,
      phi_i = sum over S in N\\{i} of |S|! (n-|S|-1)! / n! * (E[S + {i}] - E[S]).
  The phi_i sum exactly to E[N] - E[{}] (full recipe minus baseline).
- added alone (what `--mode single` measures):       E[{i}] - E[{}]
- added last (what `--mode leave-one-out` measures): E[N] - E[N \\ {i}], i.e. minus its loss when left out
- ladder step (the cumulative ladder's order l_1..l_n): E[{l_1..l_k}] - E[{l_1..l_(k-1)}] for i = l_k;
  the steps also sum to E[N] - E[{}], but each is one order's answer.
- Pairwise interaction: the Shapley interaction index (Grabisch 1997),
      I(a, b) = sum over S in N\\{a,b} of |S|! (n-|S|-2)! / (n-1)! * D_ab(S),
      D_ab(S) = E[S + {a,b}] - E[S + {a}] - E[S + {b}] + E[S],
  the effect of adding both beyond the sum of adding each, averaged with the weights of random orders (the
  weights sum to 1). Negative: together they lower the error more than their separate effects add up to;
  positive: they overlap or clash. For E[S] = c [a in S][b in S] it is c (and phi_a = phi_b = c/2).

Every quantity is a fixed linear combination of the 2^n configuration means (a row of a contrast matrix).
Intervals: 95% percentile bootstrap over seeds, BOOTSTRAP_RESAMPLES (2,000) resamples drawn from
numpy's default_rng(BOOTSTRAP_SEED), so the same records give the same intervals: each resample redraws, in
every configuration independently, as many of its finished runs (with replacement) as it has, and recomputes
every quantity from the resampled means. Configurations share seeds (the same seed gives the same initial
weights), which independent resampling ignores, so intervals on differences are conservative. "Significant":
the interval excludes 0.

Diverged runs (non-finite loss, `diverged_at_pass` set) are left out of every mean and counted, as in the rest
of the report; runs that finished at a high error (a collapsed net) are kept: that error is what a user of the
configuration gets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from repro.report.records import Group
from repro.report.stats import summarize

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 1989
LEVEL = 0.95
TOP_INTERACTIONS = 5  # pairs shown in the text; the CSV and the heat map have all of them
BOOTSTRAP_TEXT = (f"95% percentile bootstrap intervals over seeds ({BOOTSTRAP_RESAMPLES:,} resamples, runs "
                  f"redrawn with replacement within each configuration independently, RNG seed {BOOTSTRAP_SEED})")


def figure_names(dataset: str) -> tuple[str, str]:
    """File names of the waterfall and the interaction heat map of `dataset`."""
    return f"attribution_{dataset}.png", f"interactions_{dataset}.png"


def is_attribution_figure(name: str) -> bool:
    return name.startswith(("attribution_", "interactions_"))


# ----------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Factorial:
    """The runs of a complete factorial on one dataset. Configuration k holds the changes whose bit is set in k
    (bit i = changes[i])."""

    dataset: str
    changes: tuple[str, ...]  # in ladder order
    labels: tuple[str, ...]  # per configuration
    errors: tuple[np.ndarray, ...]  # per configuration: final test error (%) of each finished run
    diverged: tuple[int, ...]  # per configuration: runs left out as diverged

    @property
    def n(self) -> int:
        return len(self.changes)

    def means(self) -> np.ndarray:
        return np.array([e.mean() for e in self.errors])


def find_factorial(groups: dict[tuple[str, str], Group], dataset: str, ladder: list[str]) -> tuple[Factorial | None, str | None]:
    """The factorial runs of `dataset` among `groups`: (Factorial, None); (None, why) when there are some but
    they cannot be analysed; (None, None) when there are none."""
    from repro.study.ladder import factorial_label, factorial_subset

    subsets: dict[frozenset, Group] = {}
    for (ds, label), g in sorted(groups.items()):
        names = factorial_subset(label) if ds == dataset else None
        if names is None:
            continue
        if len(set(names)) != len(names) or frozenset(names) in subsets:
            return None, f"{dataset}: factorial label `{label}` names a subset twice; attribution skipped"
        subsets[frozenset(names)] = g
    if not subsets:
        return None, None
    rank = {name: i for i, name in enumerate(ladder)}
    changes = tuple(sorted(set().union(*subsets), key=lambda c: (rank.get(c, len(rank)), c)))
    configs = [frozenset(c for i, c in enumerate(changes) if k >> i & 1) for k in range(2 ** len(changes))]
    labels = tuple(factorial_label([c for c in changes if c in s]) for s in configs)
    missing = [lb for s, lb in zip(configs, labels) if s not in subsets]
    if missing:
        return None, (f"{dataset}: factorial incomplete, {len(subsets)} of {len(configs)} configurations of "
                      f"{', '.join(changes)} have runs (missing: {_listing(missing)}); attribution skipped")
    empty = [lb for s, lb in zip(configs, labels) if not subsets[s].ok]
    if empty:
        return None, (f"{dataset}: factorial configuration(s) with no finished run: {_listing(empty)}; "
                      "attribution skipped")
    return Factorial(dataset, changes, tuple(subsets[s].label for s in configs),
                     tuple(np.array(subsets[s].values("test_error", 100.0)) for s in configs),
                     tuple(subsets[s].n_diverged for s in configs)), None


def _listing(labels: list[str], most: int = 8) -> str:
    shown = ", ".join(f"`{lb}`" for lb in labels[:most])
    return shown + (f" and {len(labels) - most} more" if len(labels) > most else "")


# ----------------------------------------------------------------------------------------- contrasts
def shapley_matrix(n: int) -> np.ndarray:
    """(n, 2^n): row i applied to the configuration means gives change i's Shapley value."""
    w = np.zeros((n, 2 ** n))
    for i in range(n):
        for k in range(2 ** n):
            if k >> i & 1:
                continue
            s = bin(k).count("1")
            weight = math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
            w[i, k | 1 << i] += weight
            w[i, k] -= weight
    return w


def interaction_matrix(n: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The pairs (i < j) and (pairs, 2^n): each row gives that pair's Shapley interaction index."""
    pairs = list(combinations(range(n), 2))
    w = np.zeros((len(pairs), 2 ** n))
    for row, (i, j) in enumerate(pairs):
        for k in range(2 ** n):
            if k >> i & 1 or k >> j & 1:
                continue
            s = bin(k).count("1")
            weight = math.factorial(s) * math.factorial(n - s - 2) / math.factorial(n - 1)
            w[row, k | 1 << i | 1 << j] += weight
            w[row, k | 1 << i] -= weight
            w[row, k | 1 << j] -= weight
            w[row, k] += weight
    return pairs, w


def _step(n: int, before: int, after: int) -> np.ndarray:
    row = np.zeros(2 ** n)
    row[after] += 1.0
    row[before] -= 1.0
    return row


def bootstrap_means(fac: Factorial, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(resamples, 2^n): configuration means of each resample (runs redrawn within each configuration)."""
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, len(fac.errors)))
    for k, e in enumerate(fac.errors):
        out[:, k] = e[rng.integers(0, len(e), size=(resamples, len(e)))].mean(axis=1)
    return out


# ----------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Estimate:
    value: float  # from the configuration means of all finished runs
    low: float  # percentile bootstrap interval
    high: float

    @property
    def significant(self) -> bool:
        return not self.low <= 0.0 <= self.high


@dataclass(frozen=True)
class ChangeEffect:
    change: str
    shapley: Estimate
    alone: Estimate
    last: Estimate
    ladder_step: Estimate


@dataclass(frozen=True)
class Interaction:
    a: str
    b: str
    index: Estimate


@dataclass(frozen=True)
class Attribution:
    factorial: Factorial
    effects: tuple[ChangeEffect, ...]  # in ladder order
    interactions: tuple[Interaction, ...]  # largest |index| first
    conflicts: tuple[str, ...]  # where the ladder's order changes a conclusion, one sentence each
    resamples: int
    seed: int

    @property
    def dataset(self) -> str:
        return self.factorial.dataset

    @property
    def baseline(self) -> float:
        return float(self.factorial.errors[0].mean())

    @property
    def full(self) -> float:
        return float(self.factorial.errors[-1].mean())

    def table(self) -> pd.DataFrame:
        """One row per change: each effect with its interval, pp."""
        rows = []
        for e in self.effects:
            row = {"change": e.change}
            for key in ("shapley", "alone", "last", "ladder_step"):
                est = getattr(e, key)
                row.update({key: est.value, f"{key}_low": est.low, f"{key}_high": est.high})
            rows.append(row)
        return pd.DataFrame(rows)

    def interaction_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"a": it.a, "b": it.b, "interaction": it.index.value, "low": it.index.low,
                              "high": it.index.high} for it in self.interactions])

    def configuration_table(self) -> pd.DataFrame:
        """One row per configuration: its changes and the summary of its finished runs (errors in %)."""
        fac = self.factorial
        rows = []
        for k, (label, e, div) in enumerate(zip(fac.labels, fac.errors, fac.diverged)):
            s = summarize(e)
            rows.append({"label": label, **{c: int(k >> i & 1) for i, c in enumerate(fac.changes)},
                         "runs": s.n, "diverged": div, "test_error_mean": s.mean, "test_error_std": s.std,
                         "test_error_min": s.min, "test_error_max": s.max})
        return pd.DataFrame(rows)


def attribute(fac: Factorial, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
              level: float = LEVEL) -> Attribution:
    """Shapley values, single / leave-one-out / ladder steps and pairwise interactions, with bootstrap
    intervals (see the module's docstring)."""
    n, full = fac.n, 2 ** fac.n - 1
    rows = [shapley_matrix(n)]
    rows.append(np.array([_step(n, 0, 1 << i) for i in range(n)]))
    rows.append(np.array([_step(n, full & ~(1 << i), full) for i in range(n)]))
    rows.append(np.array([_step(n, (1 << i) - 1, (1 << (i + 1)) - 1) for i in range(n)]))
    pairs, inter = interaction_matrix(n)
    contrasts = np.vstack(rows + ([inter] if pairs else []))
    point = contrasts @ fac.means()
    boot = bootstrap_means(fac, resamples, seed) @ contrasts.T
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    est = [Estimate(float(v), float(lo), float(hi)) for v, lo, hi in zip(point, low, high)]
    effects = tuple(ChangeEffect(c, est[i], est[n + i], est[2 * n + i], est[3 * n + i]) for i, c in enumerate(fac.changes))
    inters = [Interaction(fac.changes[i], fac.changes[j], est[4 * n + r]) for r, (i, j) in enumerate(pairs)]
    inters.sort(key=lambda it: -abs(it.index.value))
    return Attribution(fac, effects, tuple(inters), tuple(_conflicts(effects)), resamples, seed)


def _verdict(e: Estimate) -> str:
    if not e.significant:
        return "no clear effect"
    return "lowers the error" if e.value < 0 else "raises the error"


def _conflicts(effects: tuple[ChangeEffect, ...]) -> list[str]:
    """Changes whose ladder step and Shapley value differ in sign or in significance, then the ranking of gains
    when the two orders rank them differently."""
    out = []
    for e in effects:
        lad, sh = e.ladder_step, e.shapley
        sign = np.sign(lad.value) != np.sign(sh.value)
        if sign or lad.significant != sh.significant:
            why = "sign" + (" and significance" if lad.significant != sh.significant else "") if sign else "significance"
            out.append(f"`{e.change}` ({why} differ): its ladder step is {_est(lad)} pp ({_verdict(lad)}), its "
                       f"Shapley value {_est(sh)} pp ({_verdict(sh)}).")
    by_ladder = [e.change for e in sorted(effects, key=lambda e: e.ladder_step.value)]
    by_shapley = [e.change for e in sorted(effects, key=lambda e: e.shapley.value)]
    if by_ladder != by_shapley:
        out.append("Ranked by gain (largest drop in error first), the ladder's steps give "
                   f"{' > '.join(f'`{c}`' for c in by_ladder)}; the Shapley values give "
                   f"{' > '.join(f'`{c}`' for c in by_shapley)}.")
    return out


# ----------------------------------------------------------------------------------------- text
def _est(e: Estimate) -> str:
    return f"{e.value:+.2f} [{e.low:+.2f}, {e.high:+.2f}]"


def _cell(e: Estimate) -> str:
    text = _est(e)
    return f"**{text}**" if e.significant else text


def definitions_markdown() -> str:
    """How to read the attribution tables (once per report)."""
    return "\n".join([
        "A factorial run (`repro ablate --mode factorial`) trains the baseline with every subset of the ladder's "
        "changes; each subset's patches are applied in ladder order, and a change brings only its own settings "
        "(in the study's ladder: AdamW's lr 3e-4 only with `adamw`; `lr-decay` decays whichever lr and number of passes the subset has; "
        "80 passes with `long`). The `single` and `leave-one-out` configurations are members of the factorial "
        "(same configuration, same digest): their columns below are computed from the factorial's records.",
        "",
        "Every effect is what adding a change does to the mean final test error, in percentage points "
        "(negative: lower error). *Shapley value*: the change's step averaged over all orders of adding the "
        "changes; the Shapley values sum exactly to full recipe minus baseline. *Alone*: baseline + the change "
        "minus baseline (the `single` mode). *Last*: full recipe minus the full recipe without the change (the "
        "`leave-one-out` mode, sign turned so that it reads as adding). *Ladder step*: the step in the "
        "cumulative ladder's order. *Interaction* of a pair: the Shapley interaction index, the effect of "
        "adding both beyond the sum of adding each, averaged over the subsets of the other changes with the "
        "weights of random orders (negative: together they do better than their separate effects add up to). "
        f"Intervals: {BOOTSTRAP_TEXT}; seeds are shared between configurations, so they are conservative. "
        "Bold: the interval excludes 0. Diverged runs (non-finite loss) are left out of the means and counted; "
        "runs that finished at a high error are kept.",
    ])


def dataset_markdown(att: Attribution, figures: dict[str, tuple[str, str]], heading: str = "###") -> str:
    """The attribution of one dataset: tables, interactions, where the ladder's order misleads, and the figures
    (file name -> (link, caption))."""
    fac = att.factorial
    base, full = summarize(fac.errors[0]), summarize(fac.errors[-1])
    runs, div = sum(len(e) for e in fac.errors), sum(fac.diverged)
    out = [f"{heading} {att.dataset}", "",
           f"`{fac.labels[0]}` scores {_mean_sd(base)}% test error and the full recipe `{fac.labels[-1]}` "
           f"{_mean_sd(full)}%, a change of {att.full - att.baseline:+.2f} pp ({len(fac.errors)} configurations, "
           f"{runs:,} finished runs" + (f", {div} diverged and left out: {_diverged(fac)}" if div else ", none diverged")
           + "). What each change contributes, pp [95% CI]:", "",
           "| change | Shapley value | alone (`single`) | last (`leave-one-out`) | ladder step |",
           "|---|--:|--:|--:|--:|"]
    for e in att.effects:
        out.append(f"| `{e.change}` | {_cell(e.shapley)} | {_cell(e.alone)} | {_cell(e.last)} | {_cell(e.ladder_step)} |")
    total = att.full - att.baseline
    out += [f"| sum | {sum(e.shapley.value for e in att.effects):+.2f} (= full − baseline, {total:+.2f}) | | | "
            f"{sum(e.ladder_step.value for e in att.effects):+.2f} |", ""]
    if att.interactions:
        top = att.interactions[:TOP_INTERACTIONS]
        out += [f"Largest pairwise interactions ({len(top)} of {len(att.interactions)}; Shapley interaction index, "
                "pp [95% CI]):", "", "| pair | interaction |", "|---|--:|"]
        out += [f"| `{it.a}` × `{it.b}` | {_cell(it.index)} |" for it in top]
        out.append("")
    out += ["Where the ladder's order changes a conclusion (ladder step against Shapley value):", ""]
    out += [f"- {c}" for c in att.conflicts] or [
        "- nowhere: every change's ladder step has the sign of its Shapley value, and both intervals agree on "
        "whether they exclude 0."]
    out.append("")
    for link, caption in figures.values():
        out += [f"![{caption}]({link})", ""]
    return "\n".join(out)


def _mean_sd(s) -> str:
    return f"{s.mean:.2f}" + (f" ± {s.std:.2f}" if s.n > 1 else "")


def _diverged(fac: Factorial) -> str:
    return ", ".join(f"`{lb}` {d}" for lb, d in zip(fac.labels, fac.diverged) if d)


def section_markdown(atts: list[Attribution], figures: dict[str, dict[str, tuple[str, str]]],
                     notes: list[str]) -> str:
    """The report's section: definitions, then each dataset (figures: dataset -> its figures), then the notes
    on factorials that could not be analysed."""
    out = ["## What each change buys, whatever the order (factorial)", "", definitions_markdown(), ""]
    for att in atts:
        out += [dataset_markdown(att, figures.get(att.dataset, {})), ""]
    out += [f"- {n}" for n in notes]
    return "\n".join(out).rstrip() + "\n"


def paper_block(atts: list[Attribution], figures: dict[str, dict[str, tuple[str, str]]]) -> str:
    """The generated block of paper.md: the same tables, with the figures captioned as the paper's are."""
    out = [definitions_markdown(), ""]
    for att in atts:
        figs = figures.get(att.dataset, {})
        out += [dataset_markdown(att, {}, heading="####")]
        for link, caption in figs.values():
            out += [f"![{caption}]({link})", "", f"*{caption}*", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------- figures
def captions(dataset: str) -> dict[str, str]:
    waterfall, heat = figure_names(dataset)
    return {waterfall: f"What each change buys on {dataset}: Shapley values from the baseline's test error to "
                       "the full recipe's, with 95% bootstrap intervals",
            heat: f"Pairwise interactions on {dataset}: Shapley interaction index, pp (* interval excludes 0)"}


def make_figures(att: Attribution, render: Callable[[Callable[[], Figure]], bytes]) -> dict[str, bytes]:
    """The waterfall and the interaction heat map as PNG bytes; `render` draws a figure under the report's
    style (repro.report.plots' _styled, which saves with repro.report.png.figure_png)."""
    waterfall, heat = figure_names(att.dataset)
    out = {waterfall: render(lambda: _waterfall(att))}
    if att.interactions:
        out[heat] = render(lambda: _heat_map(att))
    return out


def _waterfall(att: Attribution) -> Figure:
    effects = att.effects
    n = len(effects)
    fig = Figure(figsize=(max(6.0, 0.95 * (n + 2) + 1.2), 4.2), layout="constrained")
    ax = fig.subplots()
    level, tops = att.baseline, [att.baseline, att.full]
    ax.bar(0, att.baseline, color="0.55", width=0.6)
    for x, e in enumerate(effects, start=1):
        v = e.shapley.value
        ax.bar(x, v, bottom=level, width=0.6, color="#2ca02c" if v < 0 else "#d62728")
        end = level + v
        ax.errorbar([x], [end], yerr=[[v - e.shapley.low], [e.shapley.high - v]], color="black", capsize=3, lw=1)
        ax.plot([x - 1 + 0.3, x - 0.3], [level, level], color="0.3", lw=0.7)
        ax.annotate(f"{v:+.2f}", (x, max(level, end) + (e.shapley.high - v)), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7)
        tops += [level, end + (e.shapley.low - v), end + (e.shapley.high - v)]
        level = end
    ax.plot([n + 0.3, n + 0.7], [level, level], color="0.3", lw=0.7)
    ax.bar(n + 1, att.full, color="0.55", width=0.6)
    for x, y in ((0, att.baseline), (n + 1, att.full)):
        ax.annotate(f"{y:.2f}%", (x, y), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                    fontsize=7)
    lo, hi = min(tops), max(tops)
    pad = 0.15 * (hi - lo) if hi > lo else 0.5
    # The running sum is an error only at its two ends: between them it may leave [0, 100] (large contributions
    # of opposite sign), and the axis must then show it rather than cut the bars off at 0.
    ax.set_ylim(lo - pad if lo < 0 else max(0.0, lo - pad), hi + 1.6 * pad)
    if lo < 0:
        ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xticks(range(n + 2), ["baseline"] + [e.change for e in effects] + ["full recipe"], rotation=20)
    ax.set_ylabel("test error (%): baseline + contributions so far")
    ax.set_title(f"{att.dataset}: Shapley contributions, baseline to full recipe")
    ax.grid(axis="x", visible=False)
    return fig


def _heat_map(att: Attribution) -> Figure:
    import matplotlib

    changes = att.factorial.changes
    n = len(changes)
    index = {c: i for i, c in enumerate(changes)}
    mat = np.full((n, n), np.nan)
    marks = {}
    for it in att.interactions:
        i, j = index[it.a], index[it.b]
        mat[i, j] = mat[j, i] = it.index.value
        marks[(i, j)] = marks[(j, i)] = it.index.significant
    vmax = float(np.nanmax(np.abs(mat))) or 1.0
    fig = Figure(figsize=(1.0 * n + 2.4, 0.85 * n + 1.4), layout="constrained")
    ax = fig.subplots()
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.92")
    im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, vmin=-vmax, vmax=vmax)
    for (i, j), sig in marks.items():
        v = mat[i, j]
        ax.text(j, i, f"{v:+.2f}" + ("*" if sig else ""), ha="center", va="center", fontsize=7,
                color="white" if abs(v) > 0.6 * vmax else "black")
    ax.set_xticks(range(n), changes, rotation=30, ha="right")
    ax.set_yticks(range(n), changes)
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="interaction, pp (negative: together better than the sum)")
    ax.set_title(f"{att.dataset}: pairwise interactions (Shapley interaction index)")
    return fig
