"""A job's estimated time (its plan: repro.jobs.job), labelled as an estimate everywhere it is shown.

On the CPU, for an engine whose configurations train side by side (the native engine), each of the job's
configurations is timed here for a moment, as the job will train it (on one thread each, as many at once as
the job trains at once), training and evaluation apart: the time of a configuration follows from its passes,
members and images, and the job's from the order in which the runner hands configurations to its threads.
A configuration's cost depends on its optimizer, activation, dropout, shifts and architecture, and one CPU's
speed ratio between them is not another's, so no single rate measured elsewhere (or on one rung) can stand
in for the job's mix. A job the bench figures put under MEASURED_FROM_S is announced from them instead.

Other engines and devices: presentations left divided by the throughput measured by `repro bench` for this
device and engine (end to end, evaluation included, when the bench measured a whole `ablate --all`; else its
training rate at the nearest population size), looked for in the workspace first (measured on this machine),
then in the committed study; figures made on another CPU are scaled by this one's speed on the baseline.
"""

from __future__ import annotations

import heapq
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from repro.config import Config
from repro.engines import registry
from repro.hardware import device_slug
from repro.jobs.bench import baseline_rate_here, config_cost
from repro.jobs.runner import expected_cost, fmt_seconds
from repro.jobs.store import device_description
from repro.jobs.workspace import STUDY_DIR, default_workspace


@dataclass(frozen=True)
class Throughput:
    presentations_per_s: float
    source: str  # where the figure comes from, shown next to every estimate
    compile_s: float = 0.0  # a configuration's compilation before it trains (the generic engine's), as bench measured it


def bench_baseline_rate(rec: dict, engine: str) -> float | None:
    """The bench file's figure that bench.baseline_rate_here measures again on another machine: its baseline
    rung, trained by `engine` at the bench's seed count (16), or None where the file has none."""
    baseline = (rec.get("rungs") or {}).get("baseline") or {}
    return baseline.get("steps_per_s") if baseline.get("engine") == engine else None


def bench_throughput(device: torch.device, engine: str, members: int = 16, scale_to_here: bool = True,
                     as_another_cpu: bool = False) -> Throughput | None:
    """The measured throughput of `engine` on this kind of device, from a bench record, or None.

    A record made on another CPU (its `device` names the model, the vector extensions and the threads) is
    scaled by this machine's speed: `scale_to_here` measures the baseline here for a couple of seconds as a job
    trains it (bench.baseline_rate_here: one population per thread where side by side) and divides by the
    record's figure measured the same way (bench_baseline_rate). `as_another_cpu`: scale a record made on
    this CPU too (`repro bench --estimate-check` judges the scaling that way)."""
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
            there = bench_baseline_rate(rec, engine)
            if not scale_to_here or there is None:
                return Throughput(found.presentations_per_s, f"{found.source}; measured on another CPU: "
                                                             f"{rec.get('device')}, not scaled to this CPU")
            scale = baseline_rate_here(engine, device) / there
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


# --- the estimate from the job's own configurations, timed here ------------------------------------------

@dataclass(frozen=True)
class EstimatedConfig:
    """One configuration of a job, with what its time depends on."""

    config: Config
    members: int  # seeds to train
    n_train: int
    eval_images: int  # evaluated after every pass (the training and test splits)
    last_eval_images: int = 0  # evaluated after the last pass only (further test sets: mnist16's 10,000)

    @property
    def cost_key(self) -> tuple:
        """Units with the same key cost the same per step and per evaluated image: timed once."""
        return self.config.digest(), self.members, self.n_train


def config_seconds(u: EstimatedConfig, cost: dict[str, float]) -> float:
    """A unit's time from its configuration's measured cost (bench.config_cost)."""
    training = u.config.passes * u.members * u.n_train / cost["steps_per_s"]
    evaluation = (u.config.passes * u.eval_images + u.last_eval_images) * cost["eval_s_per_image"]
    return training + evaluation


def makespan(seconds: list[float], workers: int) -> float:
    """The time to run tasks of these durations, handed out in this order, each to the first worker free (as
    a thread pool runs a queue)."""
    free = [0.0] * max(1, workers)
    for s in seconds:
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def runner_order(units: list[EstimatedConfig]) -> list[EstimatedConfig]:
    """The order in which the runner hands configurations to its threads (runner.train_configurations_on_threads)."""
    return sorted(units, key=lambda u: -expected_cost(u.config, u.n_train))


def measured_estimate(units: list[EstimatedConfig], engine: str, device: torch.device,
                      workers: int) -> tuple[float, str]:
    """(seconds, where the figure comes from) for `units` trained by `engine` here, `workers` side by side:
    each configuration timed now (bench.config_cost), as many at once as the job trains at once."""
    distinct = {u.cost_key: u for u in units}
    threads = 1 if workers > 1 else None  # each population on one thread where side by side (as the runner)
    torch_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    if workers > 1:
        torch.set_num_threads(1)  # as runner.train_configurations_on_threads trains them
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            costs = dict(zip(distinct, pool.map(
                lambda u: config_cost(engine, u.config, u.members, u.n_train, device, threads), distinct.values())))
    finally:
        torch.set_num_threads(torch_threads)
    seconds = makespan([config_seconds(u, costs[u.cost_key]) for u in runner_order(units)], workers)
    how = f"{workers} side by side, one thread each, as the job trains them" if workers > 1 else "one at a time"
    return seconds, (f"each of its {len(distinct)} configuration{'s' if len(distinct) != 1 else ''} timed here just "
                     f"now ({how}; {time.perf_counter() - t0:.1f} s)")


# A job the bench figures put under this many seconds is announced from them: timing its configurations (about
# half a second each, on a quiet 2-core machine) would be a large share of it, and a short job's estimate a
# small matter.
MEASURED_FROM_S = 30.0


def measures_here(engine: str, device: torch.device) -> bool:
    """Whether a job's estimate for `engine` on `device` times the job's configurations here (measured_estimate)
    rather than reading bench figures: a CPU engine that trains configurations side by side (the native one),
    whose populations start in a moment."""
    return device.type == "cpu" and registry.get(engine).side_by_side

