"""`repro sweep`: a learning-rate sweep on a log grid, judged on TRAINING-set error only (never the test set).

The paper gives no learning rate (nor SDLM's mu); a sweep shows how sensitive a configuration is and which
value to pick. Each grid point trains a population of seeds for a few passes; the record keeps every seed's
final training error and loss, and a plot shows mean and spread against the learning rate.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable

import torch

from repro.atomic_files import atomic_write_bytes, atomic_write_json
from repro.config import Config
from repro.data import Dataset
from repro.engines import registry
from repro.jobs.store import environment


def lr_sweep(cfg: Config, ds: Dataset, lrs: list[float], seeds: list[int], passes: int,
             device: torch.device = torch.device("cpu"), log: Callable[[str], None] = print) -> list[dict]:
    """Train `cfg` at each lr for `passes` passes; return per-lr training errors and losses of every seed."""
    points = []
    for lr in lrs:
        run_cfg = cfg.replace(lr=lr, passes=passes)
        engine, _ = registry.choose("auto", run_cfg, device)
        pop = engine.population_class(run_cfg)(run_cfg, seeds, ds.x_train, ds.y_train, device=device)
        for p in range(passes):
            pop.train_pass(p)
        ev = pop.evaluate(ds.x_train, ds.y_train)
        errors = [100 * e for e in ev.error.tolist()]
        points.append({"lr": lr, "train_error": errors, "train_loss": ev.loss.tolist()})
        log(f"lr {lr:g}: training error {statistics.mean(errors):.2f}% (seeds {min(errors):.2f}-{max(errors):.2f})")
    return points


def write_sweep(path: Path, label: str, cfg: Config, ds: Dataset, points: list[dict], passes: int,
                device: torch.device) -> list[Path]:
    record = {"label": label, "dataset": ds.name, "dataset_fingerprint": ds.fingerprint, "config": cfg.to_dict(),
              "passes": passes, "judged_on": "training-set error", "points": points, **environment(device)}
    atomic_write_json(path.with_suffix(".json"), record)
    atomic_write_bytes(path.with_suffix(".png"), sweep_plot(record))
    return [path.with_suffix(".json"), path.with_suffix(".png")]


def sweep_plot(record: dict) -> bytes:
    import matplotlib.ticker
    from matplotlib.figure import Figure

    from repro.png import figure_png

    pts = record["points"]
    lrs = [p["lr"] for p in pts]
    fig = Figure(figsize=(6, 4), dpi=120)
    ax = fig.subplots()
    for p in pts:
        ax.scatter([p["lr"]] * len(p["train_error"]), p["train_error"], s=10, color="gray", alpha=0.6, zorder=2)
    ax.plot(lrs, [statistics.mean(p["train_error"]) for p in pts], "o-", color="C0", zorder=3, label="mean over seeds")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(f"training error after {record['passes']} passes, %")
    ax.set_title(f"lr sweep: {record['label']} on {record['dataset']} (judged on training error)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)
