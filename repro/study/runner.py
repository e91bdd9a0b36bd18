"""Runs configurations over seeds and writes one record per run: the glue between CLI, engine and store.

A finished run (its record exists) is skipped unless `force`, so an interrupted job resumes where it
stopped. Every record is written atomically the moment its population finishes.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import torch

from repro.config import Config
from repro.data import Dataset
from repro.engines.population_fc import population_class
from repro.engines.fused import FusedGroup, FusedPopulation, unsupported_reason
from repro.study.ladder import PlannedConfig
from repro.net.metrics import REJECTION_CURVE_ERRORS, REJECTION_TARGET, rejection_for_error
from repro.net.model import forward
from repro.net.model import outputs as output_values
from repro.engines.reference import train_reference
from repro.study.store import SCHEMA_VERSION, atomic_torch_save, atomic_write_json, checkpoint_path, environment, run_path

ENGINES = ("population", "fused", "reference")


class DeviceError(RuntimeError):
    pass


def resolve_device(name: str, log: Callable[[str], None] | None = None) -> torch.device:
    """'auto' picks CUDA when present and says so; 'cuda' without CUDA is an error, not a silent CPU run."""
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if log:
            log(f"--device auto: using {device.type}" + ("" if device.type == "cuda" else " (no CUDA device found)"))
        return device
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for, but torch sees no CUDA device (torch.cuda.is_available() is False)")
    if name not in ("cpu", "cuda"):
        raise DeviceError(f"unknown device {name!r}; valid: auto, cpu, cuda")
    return torch.device(name)


@dataclass
class Progress:
    """Prints one line per pass: what runs, the pass, mean test error so far and time left.

    Time left uses the rate of the last few passes, so a slow start (or a busy machine) does not distort it.
    """

    total_presentations: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    done_presentations: int = 0
    start: float = field(default_factory=time.perf_counter)
    window: deque = field(default_factory=lambda: deque(maxlen=8))

    def pass_done(self, what: str, pass_index: int, passes: int, test_errors: torch.Tensor, presentations: int):
        now = time.perf_counter()
        if not self.window:
            self.window.append((self.start, self.done_presentations))
        self.done_presentations += presentations
        self.window.append((now, self.done_presentations))
        (t0, d0), (t1, d1) = self.window[0], self.window[-1]
        rate = (d1 - d0) / max(t1 - t0, 1e-9)
        left = (self.total_presentations - self.done_presentations) / max(rate, 1e-9)
        finite = test_errors[torch.isfinite(test_errors)]
        err = f"{100 * finite.mean():.2f}%" if len(finite) else "n/a"
        print(
            f"[{what}] pass {pass_index + 1}/{passes}  mean test error {err}  "
            f"elapsed {_fmt(now - self.start)}  left ~{_fmt(left)}  ({rate:,.0f} presentations/s)",
            file=self.stream,
            flush=True,
        )


def _fmt(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def presentations(cfg: Config, n_train: int, seeds: int) -> int:
    return cfg.passes * n_train * seeds


def _record(planned: PlannedConfig, ds: Dataset, seed: int, mode: str, history: dict[str, list[float]],
            diverged_at: int | None, test_out: torch.Tensor | None, wall: float, members: int,
            engine: str, device: torch.device) -> dict:
    cfg = planned.config
    final = {k: v[-1] for k, v in history.items()} if history["test_error"] else {}
    if final:
        final["train_mistakes"] = round(final["train_error"] * len(ds.y_train))
        final["test_mistakes"] = round(final["test_error"] * len(ds.y_test))
    if test_out is not None and diverged_at is None:
        final["test_rejection_at_1pct"] = rejection_for_error(test_out, ds.y_test, REJECTION_TARGET)
        final["test_rejection_curve"] = {
            f"{t:g}": rejection_for_error(test_out, ds.y_test, t) for t in REJECTION_CURVE_ERRORS
        }
    return {
        "schema": SCHEMA_VERSION,
        "rung": planned.rung.name,
        "label": planned.label,
        "mode": mode,
        "rung_title": planned.rung.title,
        "dataset": ds.name,
        "dataset_fingerprint": ds.fingerprint,
        "seed": seed,
        "config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "passes": cfg.passes,
        "presentations": cfg.passes * len(ds.y_train),
        "diverged_at_pass": diverged_at,
        **history,
        "final": final,
        "engine": engine,
        "population_members": members,
        "wall_time_s": round(wall, 3),
        **environment(device),
    }


def pending_seeds(planned: PlannedConfig, dataset: str, seeds: list[int], results_dir: Path, force: bool) -> list[int]:
    """The seeds of `planned` that have no record yet (all of them with `force`)."""
    digest = planned.config.digest()
    return [s for s in seeds if force or not run_path(results_dir, dataset, planned.label, digest, s).exists()]


def run_planned(planned: PlannedConfig, ds: Dataset, seeds: list[int], results_dir: Path, *,
                device: torch.device = torch.device("cpu"), mode: str = "cumulative", force: bool = False,
                engine: str = "population", progress: Progress | None = None,
                checkpoint_seeds: set[int] = frozenset({0})) -> list[Path]:
    """Train `planned` on `ds` for every seed that has no record yet; return the record paths."""
    cfg = planned.config
    paths = _paths(planned, ds, seeds, results_dir)
    todo = pending_seeds(planned, ds.name, seeds, results_dir, force)
    if not todo:
        return list(paths.values())
    what = _what(planned, ds, todo)
    if engine == "fused" and (why := unsupported_reason(cfg)):
        print(f"{what}: {why}; running it on the population engine", file=sys.stderr)
        engine = "population"
    if engine in ("population", "fused"):
        cls = FusedPopulation if engine == "fused" else population_class(cfg.architecture)
        training = _Training(cls(cfg, todo, ds.x_train, ds.y_train, device=device), ds, what)
        for p in range(cfg.passes):
            training.pop.train_pass(p)
            training.after_pass(p, progress)
        results = training.results()
    elif engine == "reference":
        results = [_train_reference(cfg, ds, s, what, progress) for s in todo]
    else:
        raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    _write_records(planned, ds, todo, results, results_dir, mode, engine, device, checkpoint_seeds)
    return list(paths.values())


def run_together(jobs: list[tuple[PlannedConfig, Dataset]], seeds: list[int], results_dir: Path, *,
                 device: torch.device = torch.device("cpu"), mode: str = "cumulative", force: bool = False,
                 progress: Progress | None = None, checkpoint_seeds: set[int] = frozenset({0})) -> None:
    """The fused engine's way to run a whole job: every pending (config, dataset) population trained
    together, one kernel launch per pass for all of them (a population drops out when its passes are done and
    writes its records then). Configurations the kernel does not implement run one by one on the population
    engine; populations with training sets of different sizes form separate groups."""
    groups: dict[int, list[_Training]] = {}
    for planned, ds in jobs:
        todo = pending_seeds(planned, ds.name, seeds, results_dir, force)
        if not todo:
            continue
        if unsupported_reason(planned.config):
            run_planned(planned, ds, seeds, results_dir, device=device, mode=mode, force=force, engine="fused",
                        progress=progress, checkpoint_seeds=checkpoint_seeds)
            continue
        pop = FusedPopulation(planned.config, todo, ds.x_train, ds.y_train, device=device)
        groups.setdefault(len(ds.y_train), []).append(_Training(pop, ds, _what(planned, ds, todo), planned))
    for trainings in groups.values():
        group = FusedGroup([t.pop for t in trainings])
        for p in range(max(t.pop.cfg.passes for t in trainings)):
            active = [p < t.pop.cfg.passes for t in trainings]
            group.train_pass([p if a else None for a in active])
            for t, a in zip(trainings, active):
                if not a:
                    continue
                t.after_pass(p, progress)
                if p == t.pop.cfg.passes - 1:
                    _write_records(t.planned, t.ds, t.pop.seeds, t.results(), results_dir, mode, "fused", device,
                                   checkpoint_seeds)


def _paths(planned: PlannedConfig, ds: Dataset, seeds: list[int], results_dir: Path) -> dict[int, Path]:
    return {s: run_path(results_dir, ds.name, planned.label, planned.config.digest(), s) for s in seeds}


def _what(planned: PlannedConfig, ds: Dataset, todo: list[int]) -> str:
    return f"{ds.name} | {planned.label} | {len(todo)} seed{'s' if len(todo) > 1 else ''}"


def _write_records(planned: PlannedConfig, ds: Dataset, todo: list[int], results: list, results_dir: Path, mode: str,
                   engine: str, device: torch.device, checkpoint_seeds: set[int]) -> None:
    cfg, paths = planned.config, _paths(planned, ds, todo, results_dir)
    for seed, (history, diverged_at, params, test_out, wall, members) in zip(todo, results):
        atomic_write_json(paths[seed], _record(planned, ds, seed, mode, history, diverged_at, test_out, wall,
                                               members, engine, device))
        if seed in checkpoint_seeds and diverged_at is None:
            atomic_torch_save(checkpoint_path(results_dir, ds.name, planned.label, cfg.digest(), seed),
                              {"config": cfg.to_dict(), "dataset": ds.name, "seed": seed, "state_dict": params})


def _empty_history() -> dict[str, list[float]]:
    return {"train_loss": [], "train_error": [], "test_loss": [], "test_error": []}


class _Training:
    """One population being trained: its per-member histories, evaluated after every pass."""

    def __init__(self, pop, ds: Dataset, what: str, planned: PlannedConfig | None = None):
        self.pop, self.ds, self.what, self.planned = pop, ds, what, planned
        self.start = time.perf_counter()
        self.histories = [_empty_history() for _ in pop.seeds]
        self.diverged: list[int | None] = [None] * pop.members
        self.test_outputs: torch.Tensor | None = None

    def after_pass(self, p: int, progress: Progress | None) -> None:
        pop, ds, passes = self.pop, self.ds, self.pop.cfg.passes
        tr = pop.evaluate(ds.x_train, ds.y_train)
        te = pop.evaluate(ds.x_test, ds.y_test, keep_outputs=p == passes - 1)  # last pass: for rejection
        if te.outputs is not None:
            self.test_outputs = te.outputs.cpu()
        for m, h in enumerate(self.histories):
            if self.diverged[m] is not None:
                continue  # a diverged member's numbers stop at the pass it diverged
            values = (tr.loss[m].item(), tr.error[m].item(), te.loss[m].item(), te.error[m].item())
            if not all(math.isfinite(v) for v in values[::2]):
                self.diverged[m] = p + 1
                continue
            for key, v in zip(("train_loss", "train_error", "test_loss", "test_error"), values):
                h[key].append(v)
        if progress:
            errs = torch.tensor([h["test_error"][-1] if self.diverged[m] is None else math.nan
                                 for m, h in enumerate(self.histories)])
            progress.pass_done(self.what, p, passes, errs, pop.members * pop.n_train)

    def results(self) -> list[tuple]:
        """Per member: history, diverged pass, parameters, last test outputs, wall time so far, population size."""
        wall, pop = time.perf_counter() - self.start, self.pop
        return [(self.histories[m], self.diverged[m], pop.member_params(m), self.test_outputs[m], wall, pop.members)
                for m in range(pop.members)]


def _train_reference(cfg: Config, ds: Dataset, seed: int, what: str, progress: Progress | None):
    history = _empty_history()

    def on_pass(p, metrics):
        for key in history:
            history[key].append(getattr(metrics, key))
        if progress:
            progress.pass_done(what, p, cfg.passes, torch.tensor([metrics.test_error]), len(ds.y_train))

    run = train_reference(cfg, ds.x_train, ds.y_train, ds.x_test, ds.y_test, seed, on_pass=on_pass)
    params = {k: v.detach() for k, v in run.params.items()}
    with torch.no_grad():
        test_out = output_values(cfg, forward(params, ds.x_test, cfg))
    diverged = next((i + 1 for i, v in enumerate(history["train_loss"]) if not math.isfinite(v)), None)
    return history, diverged, params, test_out, run.wall_time_s, 1
