"""A job's plan before it trains: per (dataset, configuration) the seeds done and to do, and the time left.

The time is an estimate, labelled so everywhere it is shown: presentations left divided by the throughput
measured by `repro bench` for this device and engine (end to end, evaluation included, when the bench
measured a whole `ablate --all`; else its training rate at the nearest population size). The bench figures
are looked for in the workspace first (measured on this machine), then in the committed study.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from repro.study.ladder import PlannedConfig
from repro.study.store import run_path
from repro.study.workspace import STUDY_DIR, default_workspace


@dataclass(frozen=True)
class PlanRow:
    dataset: str
    planned: PlannedConfig
    done: list[int]
    todo: list[int]
    n_train: int

    @property
    def presentations_left(self) -> int:
        return self.planned.config.passes * self.n_train * len(self.todo)


def make_plan(planned: list[PlannedConfig], datasets: dict[str, int], seeds: list[int], results_dir: Path,
              force: bool) -> list[PlanRow]:
    """datasets: name -> training-set size. A seed is done when its record exists (and not `force`)."""
    rows = []
    for name, n_train in datasets.items():
        for p in planned:
            digest = p.config.digest()
            done = [] if force else [s for s in seeds if run_path(results_dir, name, p.label, digest, s).exists()]
            rows.append(PlanRow(name, p, done, [s for s in seeds if s not in done], n_train))
    return rows


@dataclass(frozen=True)
class Throughput:
    presentations_per_s: float
    source: str  # where the figure comes from, shown next to every estimate


def bench_throughput(device: torch.device, engine: str, members: int = 16) -> Throughput | None:
    """The measured throughput of `engine` on this kind of device, from a bench record, or None."""
    from repro.study.bench import device_slug

    slug = device_slug(device)
    for folder in (default_workspace() / "bench", STUDY_DIR / "bench"):
        for path in sorted(folder.glob(f"{slug}*.json")):
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            ab = rec.get("ablate_all") or {}
            if ab.get("engine") in (engine, "auto") and not ab.get("estimated", True) and ab.get("seconds"):
                if ab["engine"] == engine or engine == _auto_name(device):
                    return Throughput(ab["presentations"] / ab["seconds"],
                                      f"{path}: a measured ablate --all, evaluation included")
            rows = (rec.get("engines") or {}).get(engine, {}).get("populations") or []
            if rows:
                best = min(rows, key=lambda r: abs(r["members"] - members))
                return Throughput(best["steps_per_s"], f"{path}: training steps at {best['members']} members, "
                                                       f"evaluation not included")
    return None


def _auto_name(device: torch.device) -> str:
    from repro.config import Config
    from repro.engines import registry

    return registry.choose("auto", Config(), device)[0].name


def estimate_text(presentations: int, throughput: Throughput | None) -> str:
    from repro.study.runner import fmt_seconds

    if presentations == 0:
        return "nothing to train"
    if throughput is None:
        return "no estimate (no bench figures for this device and engine; `repro bench` measures them)"
    return f"~{fmt_seconds(presentations / throughput.presentations_per_s)} (estimated from {throughput.source})"
