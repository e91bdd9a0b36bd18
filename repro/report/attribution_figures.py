"""The attribution's figures: waterfalls of Shapley values (the stable game's and the mixture's) and the
mixture's interaction heat map (repro.report.attribution computes them)."""

from __future__ import annotations

from typing import Callable

import numpy as np
from matplotlib.figure import Figure

from repro.report.attribution import Attribution, Game


def figure_names(dataset: str) -> tuple[str, str, str]:
    """File names of the mixture's waterfall, its interaction heat map, and the stable game's waterfall."""
    return f"attribution_{dataset}.png", f"interactions_{dataset}.png", f"attribution_stable_{dataset}.png"


def is_attribution_figure(name: str) -> bool:
    return name.startswith(("attribution_", "interactions_"))


def captions(dataset: str) -> dict[str, str]:
    waterfall, heat, stable = figure_names(dataset)
    return {stable: f"What each change buys on {dataset} without collapses: Shapley values of the stable runs' "
                    "test error on the configurations with AdamW on, with 95% t intervals",
            waterfall: f"Mean over collapsed and stable runs, {dataset}: Shapley values from the baseline's test "
                       "error to the full recipe's, with 95% t intervals",
            heat: f"Pairwise interactions on {dataset}, mean over collapsed and stable runs: Shapley interaction "
                  "index, pp (* significant after Holm's correction)"}


def make_figures(att: Attribution, render: Callable[[Callable[[], Figure]], bytes]) -> dict[str, bytes]:
    """The waterfalls and the interaction heat map as PNG bytes; `render` draws a figure under the report's
    style (repro.report.plots' _styled, which saves with repro.png.figure_png)."""
    waterfall, heat, stable = figure_names(att.dataset)
    out = {}
    if att.stable is not None:
        fixed = ", ".join(att.stable.fixed)
        out[stable] = render(lambda: _waterfall(
            att.stable, f"{att.dataset}, {fixed} on, runs that did not collapse: Shapley contributions",
            "+".join(att.stable.fixed), "all changes"))
    out[waterfall] = render(lambda: _waterfall(
        att.mixture_game, f"{att.dataset}, mean over collapsed and stable runs: Shapley contributions",
        "baseline", "full recipe"))
    if att.interactions:
        out[heat] = render(lambda: _heat_map(att))
    return out


def _waterfall(game: Game, title: str, first: str, last: str) -> Figure:
    effects = game.effects
    n = len(effects)
    fig = Figure(figsize=(max(6.0, 0.95 * (n + 2) + 1.2), 4.2), layout="constrained")
    ax = fig.subplots()
    level, tops = game.base, [game.base, game.full]
    ax.bar(0, game.base, color="0.55", width=0.6)
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
    ax.bar(n + 1, game.full, color="0.55", width=0.6)
    for x, y in ((0, game.base), (n + 1, game.full)):
        ax.annotate(f"{y:.2f}%", (x, y), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                    fontsize=7)
    lo, hi = min(tops), max(tops)
    pad = 0.15 * (hi - lo) if hi > lo else 0.5
    # The running sum is an error only at its two ends: between them it may leave [0, 100] (large contributions
    # of opposite sign), and the axis must then show it rather than cut the bars off at 0.
    ax.set_ylim(lo - pad if lo < 0 else max(0.0, lo - pad), hi + 1.6 * pad)
    if lo < 0:
        ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xticks(range(n + 2), [first] + [e.change for e in effects] + [last], rotation=20)
    ax.set_ylabel("test error (%): start + contributions so far")
    ax.set_title(title, fontsize=9)
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
