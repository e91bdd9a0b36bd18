"""Figures of the report, drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend).

Every figure is rendered under one fixed style (matplotlib defaults + STYLE, ignoring any matplotlibrc) and
saved without the "Software" PNG text chunk, so the same records give byte-identical PNG files.
A figure whose inputs are missing is skipped with a warning.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Callable

import matplotlib
import matplotlib.style
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from repro.report.build import KARPATHY_BASELINE, KARPATHY_TOP, PAPER, Group

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

CAPTIONS = {
    "learning_curves.png": "Train and test error per pass, mean over seeds with min-max band",
    "ladder.png": "Final test error per rung: seeds (dots) and mean ± std",
    "rejection.png": "Error-rejection curves, mean over seeds",
    "misclassified_usps_baseline.png": "Test digits misclassified by the baseline (usps, seed 0)",
    "h1_kernels_usps.png": "The 12 learned H1 kernels, baseline and top rung (usps, seed 0)",
}


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _styled(draw: Callable[[], Figure]) -> bytes:
    with matplotlib.rc_context():
        matplotlib.style.use("default")
        matplotlib.rcParams.update(STYLE)
        return _png(draw())


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


# ----------------------------------------------------------------------------------------- 1. curves
def learning_curves(groups: dict[tuple[str, str], Group], order: dict[str, list[str]]) -> bytes | None:
    datasets = _plotted_datasets(groups, order)
    if not datasets:
        return None
    colors = _rung_colors(_all_labels(order))

    def draw() -> Figure:
        fig = Figure(figsize=(max(7.0, 5.0 * len(datasets) + 0.5), 7.4), layout="constrained")
        axes = fig.subplots(2, len(datasets), squeeze=False, sharex="col")
        handles = {}
        clipped = False
        for j, ds in enumerate(datasets):
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
                if ref is not None:
                    (pt,) = ax.plot([ref[0]], [ref[1]], marker="*", ms=13, color=REFERENCE_COLOR, ls="none",
                                    markeredgecolor="white", markeredgewidth=0.6, zorder=5)
                    handles.setdefault(ref[2], pt)
                ax.set_yscale("log")
                ax.set_title(f"{ds}: {split} error")
                ax.set_ylabel(f"{split} error (%)")
                _log_percent_axis(ax)
                if i == 1:
                    ax.set_xlabel("pass through the training set")
        names = list(handles)
        fig.legend([handles[n] for n in names], names, loc="outside lower center", ncol=min(5, len(names)),
                   frameon=False)
        fig.suptitle("Learning curves: line = mean over seeds, band = min-max over seeds\n(diverged runs left out"
                     + ("; an error of 0 is drawn at half a mistake)" if clipped else ")"), fontsize=10)
        return fig

    return _styled(draw)


def _log_percent_axis(ax) -> None:
    """Log y axis labelled in plain numbers (no 10^x notation): 1, 2, 5, 10, ...; every 1..9 on short ranges."""
    lo, hi = ax.get_ylim()
    subs = (1.0, 2.0, 5.0) if hi / lo > 8 else tuple(float(k) for k in range(1, 10))
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
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
def ladder_figure(groups: dict[tuple[str, str], Group], order: dict[str, list[str]], ladder: list[str]) -> bytes | None:
    datasets = _plotted_datasets(groups, order)
    if not datasets:
        return None
    labels = _all_labels({ds: order[ds] for ds in datasets})
    width = min(0.35, 0.7 / len(datasets))
    rng = np.random.default_rng(0)

    def draw() -> Figure:
        fig = Figure(figsize=(max(6.0, 1.1 * len(labels) + 1.5), 4.6), layout="constrained")
        ax = fig.subplots()
        for k, ds in enumerate(datasets):
            color = DATASET_COLORS.get(ds, f"C{k + 2}")
            offset = (k - (len(datasets) - 1) / 2) * width
            first = True
            for i, lb in enumerate(labels):
                g = groups.get((ds, lb))
                if g is None or not g.ok:
                    continue
                v = np.array(g.values("test_error", 100.0))
                jitter = rng.uniform(-0.3, 0.3, len(v)) * width
                ax.scatter(i + offset + jitter, v, s=12, color=color, alpha=0.45, lw=0,
                           label=f"{ds}: one seed" if first else None)
                ax.errorbar([i + offset], [v.mean()], yerr=[[v.std(ddof=1) if len(v) > 1 else 0.0]], fmt="s",
                            ms=6, color=color, mec="black", mew=0.6, ecolor="black", elinewidth=1.2, capsize=4,
                            zorder=4, label=f"{ds}: mean ± std" if first else None)
                first = False
                if g.n_diverged:
                    ax.annotate(f"{g.n_diverged} div.", (i + offset, v.max()), textcoords="offset points",
                                xytext=(0, 6), ha="center", fontsize=7, color=color)
        ax.axhline(PAPER.test_error, color="gray", ls="--", lw=1, label=f"paper: {PAPER.test_error:.1f}% (its data)")
        kx = [(labels.index(ladder[0]), KARPATHY_BASELINE.test_error)] if ladder and ladder[0] in labels else []
        kx += [(labels.index(ladder[-1]), KARPATHY_TOP.test_error)] if ladder and ladder[-1] in labels else []
        if kx and "mnist16" in datasets:
            off = (datasets.index("mnist16") - (len(datasets) - 1) / 2) * width
            ax.scatter([x + off for x, _ in kx], [y for _, y in kx], marker="D", s=40, facecolor="none",
                       edgecolor="black", lw=1.2, zorder=5, label="Karpathy 2022 (1 run, MNIST)")
        ax.set_xticks(range(len(labels)), labels, rotation=25 if len(labels) > 5 else 0,
                      ha="right" if len(labels) > 5 else "center")
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_yscale("log")
        _log_percent_axis(ax)  # log scale: a few collapsed seeds must not flatten every other rung
        ax.set_ylabel("final test error (%, log scale)")
        ax.set_title("Test error along the ladder (each rung adds one change to the one on its left)")
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
        return fig

    return _styled(draw)


# ----------------------------------------------------------------------------------------- 3. rejection
def rejection_figure(groups: dict[tuple[str, str], Group], order: dict[str, list[str]]) -> bytes | None:
    datasets = _plotted_datasets(groups, order)
    if not datasets:
        return None
    colors = _rung_colors(_all_labels(order))

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
            if ds == PAPER.dataset:
                (pt,) = ax.plot([PAPER.rejection_1pct], [1.0], marker="*", ms=13, color=REFERENCE_COLOR, ls="none",
                                markeredgecolor="white", markeredgewidth=0.6, zorder=5)
                handles.setdefault(f"paper: {PAPER.rejection_1pct}% rejected for 1% error", pt)
            ax.axhline(1.0, color="gray", ls=":", lw=0.8)
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=0)
            ax.set_title(f"{ds}: error-rejection (mean over seeds)")
            ax.set_xlabel("test patterns rejected (%)")
        axes[0].set_ylabel("error on the accepted patterns (%)")
        names = list(handles)
        fig.legend([handles[n] for n in names], names, loc="outside lower center", ncol=min(5, len(names)), frameon=False)
        return fig

    return _styled(draw)


# ----------------------------------------------------------------------------------------- 4. mistakes
def misclassified_figure(params: dict[str, torch.Tensor], cfg, x: torch.Tensor, y: torch.Tensor,
                         title: str) -> tuple[bytes, int]:
    """Grid of the test images the network gets wrong (first MAX_MISCLASSIFIED, in test-set order)."""
    from repro.net.model import forward

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
def _checkpoint(results_dir: Path, group: Group | None, dataset: str, label: str, warn,
                what: str) -> tuple[dict, object] | None:
    """(state_dict, Config) of the seed-0 checkpoint of a (dataset, label), or None with a warning."""
    from repro.config import ConfigError, config_from_dict
    from repro.net.model import init_params, run_generator
    from repro.study.store import checkpoint_path, safe_label

    folder = Path(results_dir) / "checkpoints" / dataset
    if group is not None:
        path = checkpoint_path(results_dir, dataset, label, group.first["config_digest"], 0)
    else:
        found = sorted(folder.glob(f"{safe_label(label)}-*-s000.pt"))
        path = found[0] if len(found) == 1 else folder / f"{safe_label(label)}-<digest>-s000.pt"
    if not path.is_file():
        runs = "" if group is not None else f"no {dataset}/{label} runs yet, "
        warn(f"{runs}no seed-0 checkpoint {path.relative_to(results_dir).as_posix()}; {what} skipped")
        return None
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
                 results_dir: Path, data_dir: str | None, warn: Callable[[str], None]) -> dict[str, bytes]:
    """All figures whose inputs exist, by file name (insertion order = order in results.md)."""
    out: dict[str, bytes] = {}
    for name, make in (("learning_curves.png", lambda: learning_curves(groups, order)),
                       ("ladder.png", lambda: ladder_figure(groups, order, ladder)),
                       ("rejection.png", lambda: rejection_figure(groups, order))):
        png = make()
        if png is None:
            warn(f"{name}: no finished (non-diverged) runs; figure skipped")
        else:
            out[name] = png

    base = ladder[0] if ladder else "baseline"
    ck_base = _checkpoint(results_dir, groups.get(("usps", base)), "usps", base, warn,
                          "misclassified_usps_baseline.png and the baseline row of h1_kernels_usps.png")
    if ck_base is not None:
        from repro.data import DataError, load_dataset

        try:
            ds = load_dataset("usps", data_dir, download=False)
        except DataError as e:
            warn(f"misclassified_usps_baseline.png skipped: usps data not available ({str(e).splitlines()[0]})")
        else:
            png, n_wrong = misclassified_figure(*ck_base, ds.x_test, ds.y_test, f"usps, {base}, seed 0")
            out["misclassified_usps_baseline.png"] = png
            g = groups.get(("usps", base))
            rec = next((r for r in g.ok if r["seed"] == 0), None) if g else None
            if rec is not None and rec["final"]["test_mistakes"] != n_wrong:
                warn(f"usps/{base} seed 0: checkpoint misclassifies {n_wrong} test digits, its record says "
                     f"{rec['final']['test_mistakes']}")
    rows = [(f"{base}\n(seed 0)", ck_base[0]["H1.weight"])] if ck_base else []
    if ladder and ladder[-1] != base:
        top = ladder[-1]
        ck_top = _checkpoint(results_dir, groups.get(("usps", top)), "usps", top, warn,
                             "the top-rung row of h1_kernels_usps.png")
        if ck_top is not None:
            rows.append((f"{top}\n(top rung,\nseed 0)", ck_top[0]["H1.weight"]))
    if rows:
        out["h1_kernels_usps.png"] = kernels_figure(rows)
    return out
