"""Figures of the report, drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend).

Every figure is rendered under one fixed style (matplotlib defaults + STYLE, ignoring any matplotlibrc) and
saved by repro.png, so the same records give byte-identical PNG files.

Each figure fits what was run: titles name a single configuration or a partial ladder as such, learning
curves span the passes the runs made, a configuration with one finished seed is drawn as that value (no
spread, no "mean"), and an error bar that would leave the axes is cut at the edge, with an arrow and its
value. The published references (paper, earlier reproduction) are drawn only next to runs at least as long
as the run they report. A figure whose inputs are missing is skipped with a warning.
"""

from __future__ import annotations

import re

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure

from repro.config import ConfigError, config_from_dict
from repro.data import DataError, load_dataset
from repro.net.model import forward, init_params, run_generator
from repro.png import styled_png
from repro.report.records import Group
from repro.report.references import KARPATHY_BASELINE, KARPATHY_TOP, PAPER
from repro.jobs.run_key import safe_label

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "savefig.dpi": 150,
    "figure.dpi": 100,
}
DATASET_COLORS = {"usps": "#1f77b4", "mnist16": "#d62728"}
REFERENCE_COLOR = "black"
N_TRAIN, N_TEST = 7291, 2007  # only for the floor of log-scale axes (half a mistake)
MAX_MISCLASSIFIED = 120

CAPTIONS = {  # the committed study's captions; a workspace's figures get captions that fit what it holds
    "learning_curves.png": "Train and test error per pass, mean over seeds with min-max band",
    "ladder.png": "Final test error per rung: seeds (dots) and mean ± std",
    "rejection.png": "Error-rejection curves, mean over seeds",
    "misclassified_usps_baseline.png": "Test digits misclassified by the baseline (usps, seed 0)",
    "h1_kernels_usps.png": "The 12 learned H1 kernels, baseline and top rung (usps, seed 0)",
}
REFERENCE_PASSES = PAPER.passes  # the published numbers are drawn only next to runs at least this long


@dataclass(frozen=True)
class FigureFile:
    png: bytes
    caption: str


def _styled(draw: Callable[[], Figure]) -> bytes:
    return styled_png(draw, STYLE)


def _rung_colors(labels: list[str]) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {lb: cmap(i % cmap.N) for i, lb in enumerate(labels)}


def _all_labels(order: dict[str, list[str]]) -> list[str]:
    seen: list[str] = []
    for labels in order.values():
        seen += [lb for lb in labels if lb not in seen]
    return seen


def _plotted_datasets(groups: dict[tuple[str, str], Group], order: dict[str, list[str]]) -> list[str]:
    """The datasets with at least one usable group of runs, in report order."""
    return [ds for ds in order if any(groups[(ds, lb)].ok for lb in order[ds])]


def _max_seeds(groups: dict[tuple[str, str], Group], order: dict[str, list[str]], datasets: list[str]) -> int:
    """The most finished runs any plotted configuration has (1: every configuration is a single run)."""
    return max((len(groups[(ds, lb)].ok) for ds in datasets for lb in order[ds]), default=0)


def _max_passes(groups: dict[tuple[str, str], Group], order: dict[str, list[str]], datasets: list[str]) -> int:
    return max((groups[(ds, lb)].passes for ds in datasets for lb in order[ds] if groups[(ds, lb)].ok), default=0)


# ----------------------------------------------------------------------------------------- 1. curves
def learning_curves(groups: dict[tuple[str, str], Group], order: dict[str, list[str]]) -> FigureFile | None:
    datasets = _plotted_datasets(groups, order)
    if not datasets:
        return None
    colors = _rung_colors(_all_labels(order))
    many = _max_seeds(groups, order, datasets) > 1
    left_out: set[str] = set()

    def draw() -> Figure:
        fig = Figure(figsize=(max(7.0, 5.0 * len(datasets) + 0.5), 7.4), layout="constrained")
        axes = fig.subplots(2, len(datasets), squeeze=False, sharex="col")
        handles = {}
        clipped = False
        for j, ds in enumerate(datasets):
            longest = _max_passes(groups, order, [ds])
            for i, (split, n) in enumerate((("test", N_TEST), ("train", N_TRAIN))):
                ax = axes[i, j]
                floor = 100.0 * 0.5 / n
                for lb in order[ds]:
                    ok = groups[(ds, lb)].ok
                    if not ok:
                        continue
                    curves = np.array([r[f"{split}_error"] for r in ok], dtype=np.float64) * 100.0
                    clipped |= bool((curves < floor).any())
                    curves = np.maximum(curves, floor)
                    x = np.arange(1, curves.shape[1] + 1)
                    marker = "o" if len(x) == 1 else None
                    (line,) = ax.plot(x, curves.mean(axis=0), color=colors[lb], lw=1.4, marker=marker, ms=4)
                    handles.setdefault(lb, line)
                    if len(ok) > 1:
                        if len(x) == 1:
                            ax.errorbar(x, curves.mean(axis=0), yerr=[curves.mean(0) - curves.min(0), curves.max(0) - curves.mean(0)],
                                        color=colors[lb], capsize=3, lw=1)
                        else:
                            ax.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=colors[lb], alpha=0.15, lw=0)
                ref = _reference_point(ds, split)
                if ref is not None and ref[0] <= longest:
                    (pt,) = ax.plot([ref[0]], [ref[1]], marker="*", ms=13, color=REFERENCE_COLOR, ls="none",
                                    markeredgecolor="white", markeredgewidth=0.6, zorder=5)
                    handles.setdefault(ref[2], pt)
                elif ref is not None:
                    left_out.add(f"the {ref[0]}-pass reference value{'s' if ds == PAPER.dataset else ''} on {ds}")
                ax.set_yscale("log")
                ax.set_title(f"{ds}: {split} error")
                ax.set_ylabel(f"{split} error (%)")
                _log_percent_axis(ax)
                if longest < 10:  # a short run: one tick per pass, never fractions of a pass
                    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
                if i == 1:
                    ax.set_xlabel("pass through the training set")
        names = list(handles)
        fig.legend([handles[n] for n in names], names, loc="outside lower center", ncol=min(5, len(names)),
                   frameon=False)
        what = ("line = mean over seeds, band = min-max over seeds" if many else "one seed per configuration")
        notes = ["diverged runs left out"] + (["an error of 0 is drawn at half a mistake"] if clipped else [])
        notes += [f"{', '.join(sorted(left_out))} not drawn: the runs are shorter"] if left_out else []
        fig.suptitle(f"Learning curves: {what}\n({'; '.join(notes)})", fontsize=10)
        return fig

    png = _styled(draw)
    caption = CAPTIONS["learning_curves.png"] if many else "Train and test error per pass (one seed per configuration)"
    return FigureFile(png, caption)


def _log_percent_axis(ax) -> None:
    """Log y axis labelled in plain numbers (no 10^x notation): 1, 2, 5, 10, ... on long ranges; on ranges
    within a factor 8, evenly spaced round numbers (a decade's 1..9 would leave most of 10..80 unlabelled)."""
    lo, hi = ax.get_ylim()
    if hi / lo > 8:
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    else:
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _reference_point(ds: str, split: str) -> tuple[float, float, str] | None:
    if ds == PAPER.dataset:
        value = PAPER.test_error if split == "test" else PAPER.train_error
        return PAPER.passes, value, "paper, 23 passes: 5.0% test, 0.14% train"
    if ds == KARPATHY_BASELINE.dataset and split == "test":
        return KARPATHY_BASELINE.passes, KARPATHY_BASELINE.test_error, "Karpathy 2022 baseline, 23 passes: 4.09% test"
    return None


# ----------------------------------------------------------------------------------------- 2. ladder
def ladder_title(labels: list[str], ladder: list[str]) -> str:
    """What the final-error figure shows: the whole ladder, part of it, one configuration, or configurations."""
    if len(labels) == 1:
        return f"Final test error of {labels[0]}"
    if labels == list(ladder):
        return "Test error along the ladder (each rung adds one change to the one on its left)"
    if set(labels) <= set(ladder):
        return (f"Test error of {len(labels)} of the ladder's {len(ladder)} rungs "
                "(cumulative: each rung has the changes of every rung before it in the ladder)")
    return "Final test error per configuration"


def ladder_figure(groups: dict[tuple[str, str], Group], order: dict[str, list[str]],
                  ladder: list[str]) -> FigureFile | None:
    datasets = _plotted_datasets(groups, order)
    if not datasets:
        return None
    labels = [lb for lb in _all_labels({ds: order[ds] for ds in datasets})
              if any(groups.get((ds, lb)) and groups[(ds, lb)].ok for ds in datasets)]
    width = min(0.35, 0.7 / len(datasets))
    rng = np.random.default_rng(0)
    many = _max_seeds(groups, order, datasets) > 1
    long_enough = _max_passes(groups, order, datasets) >= REFERENCE_PASSES
    floor = 100.0 * 0.5 / N_TEST

    def group_passes(ds: str, lb: str | None) -> int:
        g = groups.get((ds, lb)) if lb else None
        return g.passes if g is not None and g.ok else 0

    def draw() -> Figure:
        fig = Figure(figsize=(max(6.0, 1.1 * len(labels) + 1.5), 4.6), layout="constrained")
        ax = fig.subplots()
        values = {(ds, lb): np.array(groups[(ds, lb)].values("test_error", 100.0)) for ds in datasets
                  for lb in labels if groups.get((ds, lb)) is not None and groups[(ds, lb)].ok}
        zeros = any(bool((v < floor).any()) for v in values.values())
        values = {k: np.maximum(v, floor) for k, v in values.items()}
        kx = []
        if "mnist16" in datasets and ladder:
            for lb, ref in ((ladder[0], KARPATHY_BASELINE), (ladder[-1], KARPATHY_TOP)):
                if lb in labels and group_passes("mnist16", lb) >= (ref.passes or REFERENCE_PASSES):
                    kx.append((labels.index(lb), ref.test_error))
        # log scale, so that a few collapsed seeds do not flatten every other rung; the y range holds every
        # point drawn (seeds, references) with matplotlib's usual 5% margins, and bars are cut at its edges
        shown = [float(x) for v in values.values() for x in v] + [y for _, y in kx]
        shown += [PAPER.test_error] if long_enough else []
        pad = (max(shown) / min(shown)) ** 0.05 if max(shown) > min(shown) else 1.5
        lo, hi = min(shown) / pad, max(shown) * pad
        for k, ds in enumerate(datasets):
            color = DATASET_COLORS.get(ds, f"C{k + 2}")
            offset = (k - (len(datasets) - 1) / 2) * width
            ds_many = _max_seeds(groups, order, [ds]) > 1
            first = True
            for i, lb in enumerate(labels):
                if (ds, lb) not in values:
                    continue
                g, v, x = groups[(ds, lb)], values[(ds, lb)], i + offset
                if len(v) > 1:
                    jitter = rng.uniform(-0.3, 0.3, len(v)) * width
                    ax.scatter(x + jitter, v, s=12, color=color, alpha=0.45, lw=0,
                               label=f"{ds}: one seed" if first else None)
                mean = float(v.mean())
                std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
                low, high = mean - std, mean + std
                ax.errorbar([x], [mean], yerr=[[mean - max(low, lo)], [min(high, hi) - mean]] if len(v) > 1 else None,
                            fmt="s", ms=6, color=color, mec="black", mew=0.6, ecolor="black", elinewidth=1.2,
                            capsize=4, zorder=4,
                            label=(f"{ds}: mean ± std" if ds_many else f"{ds}: one seed") if first else None)
                first = False
                for end, edge, below in ((low, lo, True), (high, hi, False)):
                    if len(v) > 1 and (end < edge if below else end > edge):  # the bar leaves the axes: cut there
                        ax.plot([x], [edge], ls="none", marker="v" if below else "^", ms=6, color="black", zorder=5,
                                clip_on=False)
                        ax.annotate(f"mean {'−' if below else '+'} std = {end:.1f}".replace("-", "−"), (x, edge), textcoords="offset points",
                                    xytext=(3, 4 if below else -4), ha="left", va="bottom" if below else "top",
                                    fontsize=7, rotation=90)  # upright, beside its own bar: neighbours never overlap
                if g.n_diverged:
                    ax.annotate(f"{g.n_diverged} div.", (x, v.max()), textcoords="offset points",
                                xytext=(0, 6), ha="center", fontsize=7, color=color)
        if long_enough:
            ax.axhline(PAPER.test_error, color="gray", ls="--", lw=1, label=f"paper: {PAPER.test_error:.1f}% (its data)")
        if kx:
            off = (datasets.index("mnist16") - (len(datasets) - 1) / 2) * width
            ax.scatter([x + off for x, _ in kx], [y for _, y in kx], marker="D", s=40, facecolor="none",
                       edgecolor="black", lw=1.2, zorder=5, label="Karpathy 2022 (1 run, MNIST)")
        ax.set_xticks(range(len(labels)), labels, rotation=25 if len(labels) > 5 else 0,
                      ha="right" if len(labels) > 5 else "center")
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        _log_percent_axis(ax)
        ax.set_ylabel("final test error (%, log scale" + ("; 0 drawn at half a mistake)" if zeros else ")"))
        ax.set_title(ladder_title(labels, ladder))
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
        return fig

    word = "rung" if set(labels) <= set(ladder) else "configuration"
    caption = f"Final test error per {word}: " + ("seeds (dots) and mean ± std" if many else "one seed each")
    return FigureFile(_styled(draw), caption)


# ----------------------------------------------------------------------------------------- 3. rejection
def rejection_figure(groups: dict[tuple[str, str], Group], order: dict[str, list[str]]) -> FigureFile | None:
    datasets = _plotted_datasets(groups, order)
    if not datasets:
        return None
    colors = _rung_colors(_all_labels(order))
    many = _max_seeds(groups, order, datasets) > 1

    def draw() -> Figure:
        fig = Figure(figsize=(max(7.0, 5.0 * len(datasets) + 0.5), 4.4), layout="constrained")
        axes = fig.subplots(1, len(datasets), squeeze=False, sharey=True)[0]
        handles = {}
        for ax, ds in zip(axes, datasets):
            for lb in order[ds]:
                ok = groups[(ds, lb)].ok
                if not ok:
                    continue
                levels = sorted({float(k) for r in ok for k in r["final"]["test_rejection_curve"]})
                rej = []
                for e in levels:
                    vals = [r["final"]["test_rejection_curve"][k] for r in ok
                            for k in r["final"]["test_rejection_curve"] if float(k) == e]
                    rej.append(100.0 * float(np.mean(vals)))
                (line,) = ax.plot(rej, [100.0 * e for e in levels], color=colors[lb], lw=1.4, marker="o", ms=3)
                handles.setdefault(lb, line)
            if ds == PAPER.dataset and _max_passes(groups, order, [ds]) >= REFERENCE_PASSES:
                (pt,) = ax.plot([PAPER.rejection_1pct], [1.0], marker="*", ms=13, color=REFERENCE_COLOR, ls="none",
                                markeredgecolor="white", markeredgewidth=0.6, zorder=5)
                handles.setdefault(f"paper: {PAPER.rejection_1pct}% rejected for 1% error", pt)
            ax.axhline(1.0, color="gray", ls=":", lw=0.8)
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=0)
            ds_many = _max_seeds(groups, order, [ds]) > 1
            ax.set_title(f"{ds}: error-rejection ({'mean over seeds' if ds_many else 'one seed'})")
            ax.set_xlabel("test patterns rejected (%)")
        axes[0].set_ylabel("error on the accepted patterns (%)")
        names = list(handles)
        fig.legend([handles[n] for n in names], names, loc="outside lower center", ncol=min(5, len(names)), frameon=False)
        return fig

    caption = CAPTIONS["rejection.png"] if many else "Error-rejection curves (one seed per configuration)"
    return FigureFile(_styled(draw), caption)


# ----------------------------------------------------------------------------------------- 4. mistakes
def misclassified_figure(params: dict[str, torch.Tensor], cfg, x: torch.Tensor, y: torch.Tensor,
                         title: str) -> tuple[bytes, int]:
    """Grid of the test images the network gets wrong (first MAX_MISCLASSIFIED, in test-set order)."""
    with torch.no_grad():
        pred = forward(params, x, cfg).argmax(dim=-1)
    wrong = torch.nonzero(pred != y).flatten().tolist()
    shown = wrong[:MAX_MISCLASSIFIED]
    cols = 12
    rows = max(1, math.ceil(len(shown) / cols))

    def draw() -> Figure:
        fig = Figure(figsize=(cols * 0.75, rows * 0.85 + 0.7), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if k < len(shown):
                i = shown[k]
                ax.imshow(x[i].numpy(), cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
                ax.set_title(f"{int(y[i])}→{int(pred[i])}", fontsize=8, pad=2)
        more = f", the first {len(shown)} shown" if len(shown) < len(wrong) else ""
        fig.suptitle(f"{title}: {len(wrong)} of {len(y)} test digits misclassified{more} (true→predicted)",
                     fontsize=10)
        return fig

    return _styled(draw), len(wrong)


# ----------------------------------------------------------------------------------------- 5. kernels
def kernels_figure(rows: list[tuple[str, torch.Tensor]]) -> bytes:
    """rows: (name, (12, 1, 5, 5) H1 weights); one row of 12 kernels each, colour scale symmetric per row."""

    def draw() -> Figure:
        fig = Figure(figsize=(12 * 0.8 + 1.4, len(rows) * 1.05 + 0.6), layout="constrained")
        axes = fig.subplots(len(rows), 12, squeeze=False)
        for r, (name, w) in enumerate(rows):
            w = w.detach().reshape(12, 5, 5).numpy()
            lim = float(np.abs(w).max()) or 1.0
            for k in range(12):
                ax = axes[r, k]
                im = ax.imshow(w[k], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if r == 0:
                    ax.set_title(f"map {k + 1}", fontsize=8)
            axes[r, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
            fig.colorbar(im, ax=list(axes[r]), shrink=0.9, aspect=8, pad=0.01)
        fig.suptitle("H1 kernels (5x5, one per feature map); colour scale symmetric about 0 per network", fontsize=10)
        return fig

    return _styled(draw)


# ----------------------------------------------------------------------------------------- all figures
def seed0_checkpoint(results_dir: Path, group: Group | None, dataset: str, label: str, warn,
                what: str) -> tuple[dict, object] | None:
    """(state_dict, Config) of the seed-0 checkpoint of a (dataset, label), or None with a warning."""
    folder = Path(results_dir) / "checkpoints" / dataset
    if group is not None:
        path = group.config_key.run(0).checkpoint_path(results_dir)
    else:
        # exactly <label>-<digest>-<fp8>-s000.pt: a glob on the label alone also finds `relu-sgd-3e-3` for `relu`
        name = re.compile(re.escape(safe_label(label)) + r"-[0-9a-f]+-[0-9a-f]{8}-s000\.pt")
        found = sorted(p for p in folder.glob(f"{safe_label(label)}-*-s000.pt") if name.fullmatch(p.name))
        path = found[0] if len(found) == 1 else folder / f"{safe_label(label)}-<digest>-<fp8>-s000.pt"
    if not path.is_file():
        runs = "" if group is not None else f"no {dataset}/{label} runs yet, "
        warn(f"{runs}no seed-0 checkpoint {path.relative_to(results_dir).as_posix()}; {what} skipped")
        return None
    return read_checkpoint(path, results_dir, warn, what)


def read_checkpoint(path: Path, results_dir: Path, warn, what: str) -> tuple[dict, object] | None:
    """(state_dict, Config) of the checkpoint at `path`, or None with a warning when it cannot be read."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        cfg = config_from_dict(ck["config"], source=str(path))
        state = {k: v.float() for k, v in ck["state_dict"].items()}
        expected = init_params(cfg, run_generator(0))
        bad = [k for k, v in expected.items() if k not in state or state[k].shape != v.shape]
        if bad:
            raise ValueError(f"missing or misshapen parameter(s) {bad}")
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, ConfigError, AttributeError) as e:
        warn(f"checkpoint {path.relative_to(results_dir).as_posix()} unreadable ({e}); {what} skipped")
        return None
    return state, cfg


def make_figures(groups: dict[tuple[str, str], Group], order: dict[str, list[str]], ladder: list[str],
                 results_dir: Path, data_dir: str | None, warn: Callable[[str], None],
                 study: bool = True) -> dict[str, FigureFile]:
    """All figures whose inputs exist, by file name (insertion order = order in the report).

    The figures that need weights use seed-0 checkpoints: for the committed study (`study`), those of usps'
    baseline and top rung, each missing one a warning; for a workspace, those it has: the first and last
    configuration (report order) of the first dataset with any, and one warning when it has none."""
    out: dict[str, FigureFile] = {}
    for name, make in (("learning_curves.png", lambda: learning_curves(groups, order)),
                       ("ladder.png", lambda: ladder_figure(groups, order, ladder)),
                       ("rejection.png", lambda: rejection_figure(groups, order))):
        fig = make()
        if fig is None:
            warn(f"{name}: no finished (non-diverged) runs; figure skipped")
        else:
            out[name] = fig
    if study:
        base = ladder[0] if ladder else "baseline"
        top = ladder[-1] if ladder and ladder[-1] != base else None
        out.update(_weight_figures(results_dir, groups, "usps", base, top, data_dir, warn, study=True))
        return out
    have = [(ds, lb) for ds in order for lb in order[ds] if groups[(ds, lb)].ok
            and groups[(ds, lb)].config_key.run(0).checkpoint_path(results_dir).is_file()]
    if not have:
        if groups:
            warn(f"no seed-0 checkpoint under {Path(results_dir).name}/checkpoints/ for the configurations reported; "
                 "the misclassified-digits and H1-kernel figures are skipped")
        return out
    ds = have[0][0]
    labels = [lb for d, lb in have if d == ds]
    out.update(_weight_figures(results_dir, groups, ds, labels[0], labels[-1] if len(labels) > 1 else None,
                               data_dir, warn, study=False))
    return out


def _weight_figures(results_dir: Path, groups: dict[tuple[str, str], Group], ds: str, base: str, top: str | None,
                    data_dir: str | None, warn: Callable[[str], None], study: bool) -> dict[str, FigureFile]:
    """The misclassified digits of `base` and the H1 kernels of `base` (and `top`), from seed-0 checkpoints."""
    out: dict[str, FigureFile] = {}
    digits = f"misclassified_{ds}_{safe_label(base)}.png"
    kernels = f"h1_kernels_{ds}.png"
    ck_base = seed0_checkpoint(results_dir, groups.get((ds, base)), ds, base, warn,
                          f"{digits} and the {'baseline' if study else base} row of {kernels}")
    if ck_base is not None:
        try:
            data = load_dataset(ds, data_dir, download=False)
        except DataError as e:
            warn(f"{digits} skipped: {ds} data not available ({str(e).splitlines()[0]})")
        else:
            png, n_wrong = misclassified_figure(*ck_base, data.x_test, data.y_test, f"{ds}, {base}, seed 0")
            out[digits] = FigureFile(png, CAPTIONS[digits] if study and digits in CAPTIONS
                                     else f"Test digits misclassified by {base} ({ds}, seed 0)")
            g = groups.get((ds, base))
            rec = next((r for r in g.ok if r["seed"] == 0), None) if g else None
            if rec is not None and rec["final"]["test_mistakes"] != n_wrong:
                warn(f"{ds}/{base} seed 0: checkpoint misclassifies {n_wrong} test digits, its record says "
                     f"{rec['final']['test_mistakes']}")
    rows = [(f"{base}\n(seed 0)", ck_base[0]["H1.weight"])] if ck_base and "H1.weight" in ck_base[0] else []
    if top is not None:
        ck_top = seed0_checkpoint(results_dir, groups.get((ds, top)), ds, top, warn,
                             f"the {'top-rung' if study else top} row of {kernels}")
        if ck_top is not None and "H1.weight" in ck_top[0]:
            rows.append((f"{top}\n(top rung,\nseed 0)" if study else f"{top}\n(seed 0)", ck_top[0]["H1.weight"]))
    if rows:
        caption = (CAPTIONS[kernels] if study and kernels in CAPTIONS else
                   f"The 12 learned H1 kernels, {' and '.join(name.split(chr(10))[0] for name, _ in rows)} ({ds}, seed 0)")
        out[kernels] = FigureFile(kernels_figure(rows), caption)
    return out
