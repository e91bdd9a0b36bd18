"""A job's estimated time (its plan: repro.jobs.job).

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

from repro.config import Config
from repro.engines import registry
from repro.jobs.bench import calibration_figure, calibration_rate, device_slug
from repro.jobs.ladder import PlannedConfig
from repro.jobs.runner import fmt_seconds
from repro.jobs.store import device_description
from repro.jobs.workspace import STUDY_DIR, default_workspace


@dataclass(frozen=True)
class Throughput:
    presentations_per_s: float
    source: str  # where the figure comes from, shown next to every estimate
    compile_s: float = 0.0  # a configuration's compilation before it trains (the generic engine's), as bench measured it


def bench_throughput(device: torch.device, engine: str, members: int = 16, calibrate: bool = True,
                     as_another_cpu: bool = False) -> Throughput | None:
    """The measured throughput of `engine` on this kind of device, from a bench record, or None.

    A record made on another CPU (its `device` names the model, the vector extensions and the threads) is
    scaled by this machine's speed: `calibrate` measures the baseline here for a couple of seconds as a job
    trains it (bench.calibration_rate: one population per thread where side by side) and divides by the
    record's figure measured the same way (bench.calibration_figure). `as_another_cpu`: scale a record made on
    this CPU too (`repro bench --estimate-check` judges the calibration that way)."""
    slug = device_slug(device)
    here = device_description(device)
    for folder in (default_workspace() / "bench", STUDY_DIR / "bench"):
        for path in sorted(folder.glob(f"{slug}*.json")):
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            found = _recorded_throughput(rec, path, device, engine, members)
            if found is None:
                continue
            if (rec.get("device") == here and not as_another_cpu) or device.type != "cpu":
                return found
            there = calibration_figure(rec, engine)
            if not calibrate or there is None:
                return Throughput(found.presentations_per_s, f"{found.source}; measured on another CPU: "
                                                             f"{rec.get('device')}, not calibrated")
            scale = calibration_rate(engine, device) / there
            return Throughput(found.presentations_per_s * scale,
                              f"{found.source}; measured on {rec.get('device')} and scaled by {scale:.2f}, "
                              f"this CPU's speed on the baseline measured just now", found.compile_s / scale)
    return None


def _recorded_throughput(rec: dict, path: Path, device: torch.device, engine: str, members: int) -> Throughput | None:
    ab = rec.get("ablate_all") or {}
    if ab.get("engine") in (engine, "auto") and not ab.get("estimated", True) and ab.get("seconds"):
        if ab["engine"] == engine or engine == _auto_name(device):
            return Throughput(ab["presentations"] / ab["seconds"], f"{path}: a measured ablate --all, evaluation included")
    rows = (rec.get("engines") or {}).get(engine, {}).get("populations") or []
    if rows:
        best = min(rows, key=lambda r: abs(r["members"] - members))
        return Throughput(best["steps_per_s"], f"{path}: training steps at {best['members']} members, "
                                               f"evaluation not included", best.get("compile_s", 0.0))
    return None


def _auto_name(device: torch.device) -> str:
    return registry.choose("auto", Config(), device)[0].name


def estimate_text(presentations: int, throughput: Throughput | None, configurations: int = 1) -> str:
    """The time to train `presentations` of `configurations` configurations, compilation included."""
    if presentations == 0:
        return "nothing to train"
    if throughput is None:
        return "no estimate (no bench figures for this device and engine; `repro bench` measures them)"
    compiling = configurations * throughput.compile_s
    seconds = presentations / throughput.presentations_per_s + compiling
    parts = (f"; compiling included: {configurations} configuration{'s' if configurations != 1 else ''} x "
             f"{throughput.compile_s:.0f} s, less where the compile cache has them" if compiling >= 1 else "")
    return f"~{fmt_seconds(seconds)} (estimated from {throughput.source}{parts})"
