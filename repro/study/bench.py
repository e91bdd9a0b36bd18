"""`repro bench`: how fast the engine trains, as ratios against the plain reference loop measured in the
same run on the same device.

Figures: reference-loop steps/s (1 member); engine model-steps/s (members x steps / s) for populations of
1, 16, 256 and 4096 members (as far as memory allows); the time of one 23-pass baseline run; and the time
of `ablate --all --seeds 16` on both datasets, measured, or with `estimate=True` projected from measured
step and evaluation times of every rung (and labelled as such).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from repro.config import Config
from repro.data import Dataset
from repro.engines.population import Population
from repro.engines.fused import FusedGroup, FusedPopulation
from repro.study.ladder import load_rungs, plan
from repro.engines.reference import train_reference
from repro.study.store import atomic_write_bytes, atomic_write_json, device_description, environment

POPULATIONS = (1, 16, 256, 4096)
TARGET_SECONDS = 2.0  # time spent measuring each population, after warm-up


@dataclass
class StepRate:
    members: int
    steps_per_s: float  # model-steps (presentations) per second, all members together


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_rate(ds: Dataset, device: torch.device = torch.device("cpu"), steps: int = 400) -> float:
    """Presentations per second of the plain per-example loop (one member, autograd, torch.optim) on `device`."""
    cfg = Config(passes=1)
    x, y = ds.x_train[: steps + 1], ds.y_train[: steps + 1]
    train_reference(cfg, x, y, x, y, seed=0, max_steps=20, device=device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    train_reference(cfg, x, y, x, y, seed=0, max_steps=steps, device=device)
    _sync(device)
    return steps / (time.perf_counter() - t0)


ENGINE_CLASSES = {"population": Population, "fused": FusedPopulation}


def engine_rate(cfg: Config, ds: Dataset, members: int, device: torch.device, seconds: float = TARGET_SECONDS,
                engine: str = "population") -> float:
    """Model-steps per second of one population training `cfg` (timed after a warm-up)."""
    if engine == "fused":
        return fused_rate(cfg, ds, members, device, seconds)
    pop = Population(cfg, list(range(members)), ds.x_train, ds.y_train, device=device)
    rows, scale = pop._pass_inputs()
    lr = cfg.lr_at_pass(0)

    def run(start: int, n: int) -> None:
        for i in range(start, start + n):
            j = i % pop.n_train
            pop.step(rows[:, j], j, None if scale is None else scale[:, j], lr)

    run(0, 10)
    _sync(device)
    t0 = time.perf_counter()
    run(10, 10)
    _sync(device)
    per_step = (time.perf_counter() - t0) / 10
    n = max(10, min(5000, int(seconds / max(per_step, 1e-6))))
    t0 = time.perf_counter()
    run(20, n)
    _sync(device)
    return members * n / (time.perf_counter() - t0)


def fused_rate(cfg: Config, ds: Dataset, members: int, device: torch.device, seconds: float) -> float:
    """As engine_rate, for the fused engine (see group_step_seconds)."""
    return members / group_step_seconds([cfg], ds, members, device, seconds)


def eval_seconds(cfg: Config, ds: Dataset, members: int, device: torch.device) -> float:
    """Time of one after-pass evaluation (train and test split) of a population."""
    pop = Population(cfg, list(range(members)), ds.x_train[:10], ds.y_train[:10], device=device)
    pop.evaluate(ds.x_test[:100], ds.y_test[:100])
    _sync(device)
    t0 = time.perf_counter()
    pop.evaluate(ds.x_train, ds.y_train)
    pop.evaluate(ds.x_test, ds.y_test)
    _sync(device)
    return time.perf_counter() - t0


def single_run_seconds(ds: Dataset, device: torch.device, engine: str = "population") -> float:
    """Measured wall time of one 23-pass baseline run (one member, evaluation after every pass)."""
    cfg = Config()
    if engine == "fused":  # compile first: a one-off cost, not part of a run
        FusedPopulation(cfg, [0], ds.x_train[:16], ds.y_train[:16], device=device).train_pass(0)
        _sync(device)
    t0 = time.perf_counter()
    pop = ENGINE_CLASSES[engine](cfg, [0], ds.x_train, ds.y_train, device=device)
    for p in range(cfg.passes):
        pop.train_pass(p)
        pop.evaluate(ds.x_train, ds.y_train)
        pop.evaluate(ds.x_test, ds.y_test)
    _sync(device)
    return time.perf_counter() - t0


def ablate_all_estimate(ds: Dataset, device: torch.device, seeds: int, log: Callable[[str], None]) -> float:
    """Projected time of `ablate --all --seeds N` on both datasets: per rung, measured step rate and
    evaluation time of a population of N members, times its passes (both datasets have the same sizes)."""
    total = 0.0
    for p in plan(load_rungs()):
        rate = engine_rate(p.config, ds, seeds, device, seconds=1.0)
        ev = eval_seconds(p.config, ds, seeds, device)
        per_dataset = p.config.passes * (seeds * len(ds.y_train) / rate + ev)
        log(f"  {p.label:<10} {rate:>10,.0f} steps/s, eval {ev:.2f} s/pass -> {per_dataset:,.0f} s per dataset")
        total += 2 * per_dataset
    return total


def group_step_seconds(configs: list[Config], ds: Dataset, seeds: int, device: torch.device,
                       seconds: float = TARGET_SECONDS) -> float:
    """Wall time of one step of a fused group holding a population of `seeds` members per config. The fused
    engine's unit of work is a pass (one launch), so: a warm-up pass over 64 images (which also compiles),
    then a timed pass over the first n images, n sized to take about `seconds`. The time includes each pass's
    host-side work (random draws, packing), as in a real run."""

    def group(n: int) -> FusedGroup:
        return FusedGroup([FusedPopulation(c, list(range(seeds)), ds.x_train[:n], ds.y_train[:n], device=device)
                           for c in configs])

    def timed_pass(g: FusedGroup, pass_index: int) -> float:
        _sync(device)
        t0 = time.perf_counter()
        g.train_pass([pass_index] * len(configs))
        _sync(device)
        return time.perf_counter() - t0

    warm_n = 64
    warm = group(warm_n)
    timed_pass(warm, 0)  # compiles
    per_step = timed_pass(warm, 1) / warm_n
    n = max(warm_n, min(len(ds.y_train), int(seconds / max(per_step, 1e-9))))
    return timed_pass(group(n), 0) / n


def ablate_all_estimate_fused(ds: Dataset, device: torch.device, seeds: int, log: Callable[[str], None]) -> float:
    """Projected time of `ablate --all --seeds N --engine fused`, which trains every (rung, dataset) population
    together, one launch per pass, each dropping out when its passes are done: per stretch of passes with the
    same populations still active, the measured step time of such a group, plus each population's measured
    evaluation time per pass. Both datasets have the same sizes, so `ds` stands for both."""
    configs = [p.config for p in plan(load_rungs())] * 2
    total, done = 0.0, 0
    for until in sorted({c.passes for c in configs}):
        active = [c for c in configs if c.passes > done]
        step = group_step_seconds(active, ds, seeds, device)
        stretch = (until - done) * len(ds.y_train) * step
        log(f"  passes {done + 1}-{until}: {len(active)} populations, {len(active) * seeds} members, "
            f"{step * 1e6:,.1f} us/step -> {stretch:,.0f} s")
        total, done = total + stretch, until
    evals = sum(c.passes * eval_seconds(c, ds, seeds, device) for c in configs)
    log(f"  evaluation after every pass: {evals:,.0f} s")
    return total + evals


def run_bench(ds: Dataset, device: torch.device, populations=POPULATIONS, estimate: bool = False,
              ablate_measure: Callable[[], float] | None = None, log: Callable[[str], None] = print,
              engine: str = "population") -> dict:
    log(f"device: {device_description(device)}; engine: {engine}")
    ref = reference_rate(ds, device)
    log(f"reference loop (1 member, autograd + torch.optim, on {device.type}): {ref:,.0f} steps/s")
    rows = []
    for members in populations:
        try:
            rate = engine_rate(Config(), ds, members, device, engine=engine)
        except (RuntimeError, MemoryError) as e:  # out of memory: stop growing the population
            log(f"population {members}: skipped ({str(e).splitlines()[0]})")
            break
        rows.append({"members": members, "steps_per_s": rate, "ratio": rate / ref})
        log(f"{engine}, {members:>5} members: {rate:>12,.0f} model-steps/s  = {rate / ref:8.1f} x reference")
    single = single_run_seconds(ds, device, engine)
    log(f"one 23-pass baseline run (1 member, evaluation every pass): {single:.1f} s (measured)")
    if estimate or ablate_measure is None:
        log("ablate --all --seeds 16, projected from measured step and evaluation times:")
        estimate_fn = ablate_all_estimate_fused if engine == "fused" else ablate_all_estimate
        ablate_s, estimated = estimate_fn(ds, device, 16, log), True
    else:
        ablate_s, estimated = ablate_measure(), False
    log(f"ablate --all --seeds 16 on both datasets: {ablate_s:,.0f} s ({'estimated' if estimated else 'measured'})")
    return {
        **environment(device),
        "engine": engine,
        "reference_steps_per_s": ref,
        "populations": rows,
        "single_run_s": single,
        "ablate_all_s": ablate_s,
        "ablate_all_estimated": estimated,
        "threads": torch.get_num_threads(),
    }


def device_slug(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def default_engine(device: torch.device) -> str:
    """The engine a device trains with by default: fused on a GPU, population on CPU."""
    return "fused" if device.type == "cuda" else "population"


def write_bench(result: dict, device: torch.device, out_dir: Path) -> list[Path]:
    """results/bench/<device>.json (and .png) for the device's default engine, <device>-<engine>.* otherwise."""
    slug = device_slug(device)
    engine = result.get("engine", "population")
    if engine != default_engine(device):
        slug += f"-{engine}"
    json_path = Path(out_dir) / f"{slug}.json"
    atomic_write_json(json_path, result)
    png_path = Path(out_dir) / f"{slug}.png"
    atomic_write_bytes(png_path, throughput_plot(result))
    return [json_path, png_path]


def throughput_plot(result: dict) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = [r["members"] for r in result["populations"]]
    rates = [r["steps_per_s"] for r in result["populations"]]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    engine = result.get("engine", "population")
    ax.loglog(members, rates, "o-", label=f"{engine} engine" + (" (one kernel launch per pass)" if engine == "fused" else " (lockstep)"))
    ax.axhline(result["reference_steps_per_s"], color="gray", ls="--", label="reference loop (1 member)")
    for m, r, row in zip(members, rates, result["populations"]):
        ax.annotate(f"{row['ratio']:.0f}x", (m, r), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set_xlabel("members trained in lockstep")
    ax.set_ylabel("presentations per second (all members)")
    ax.set_title(f"Training throughput on {result['device']}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
