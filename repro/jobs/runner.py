"""Runs configurations over seeds and writes one record per run: the glue between a job (repro.jobs.job), the
engines and the store.

A finished run (its record exists and is whole) is skipped unless `force`. While a configuration trains, its
population's state is saved after every pass (parameters, optimizer state, random-generator states,
histories), so an interrupted job loses at most one pass and a rerun continues bit for bit. Every record is
written atomically the moment its population finishes. Each run is locked while it trains (store.SeedLocks),
so two processes on one folder never train the same run.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import torch

from repro.atomic_files import atomic_torch_save, atomic_write_json
from repro.config import Config
from repro.data import Dataset
from repro.engines import registry
from repro.engines.reference import evaluate, train_reference
from repro.errors import ReproError
from repro.net.collapse import is_collapsed
from repro.net.metrics import REJECTION_CURVE_ERRORS, REJECTION_TARGET, rejection_for_error
from repro.net.model import forward
from repro.net.model import outputs as output_values
from repro.jobs.ladder import PlannedConfig
from repro.jobs.record import HISTORY_KEYS, SCHEMA_VERSION, RunRecord, is_done
from repro.jobs.run_key import ConfigKey
from repro.jobs.store import SeedLocks, environment, load_state

class DeviceError(ReproError, RuntimeError):
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
    lock: threading.Lock = field(default_factory=threading.Lock)  # configurations trained side by side report here

    def pass_done(self, what: str, pass_index: int, passes: int, test_errors: torch.Tensor, presentations: int):
        with self.lock:
            self._pass_done(what, pass_index, passes, test_errors, presentations)

    def _pass_done(self, what: str, pass_index: int, passes: int, test_errors: torch.Tensor, presentations: int):
        now = time.perf_counter()
        if not self.window:
            self.window.append((self.start, self.done_presentations))
        self.done_presentations += presentations
        self.window.append((now, self.done_presentations))
        (t0, d0), (t1, d1) = self.window[0], self.window[-1]
        rate = (d1 - d0) / max(t1 - t0, 1e-9)
        left = max(self.total_presentations - self.done_presentations, 0) / max(rate, 1e-9)
        finite = test_errors[torch.isfinite(test_errors)]
        err = f"{100 * finite.mean():.2f}%" if len(finite) else "n/a"
        print(
            f"[{what}] pass {pass_index + 1}/{passes}  mean test error {err}  "
            f"elapsed {fmt_seconds(now - self.start)}  left ~{fmt_seconds(left)}  ({rate:,.0f} presentations/s)",
            file=self.stream,
            flush=True,
        )


def fmt_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


# --- one member's history -------------------------------------------------------------------------------
def is_divergent(train_loss: float, test_loss: float) -> bool:
    """A member has diverged once a loss it reports is not a finite number (the one rule of every engine)."""
    return not (math.isfinite(train_loss) and math.isfinite(test_loss))


@dataclass
class MemberHistory:
    """Per-pass numbers of one member; they stop at the pass it diverged (`diverged_at`, 1-based)."""

    values: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    diverged_at: int | None = None

    def add(self, pass_index: int, train_loss: float, train_error: float, test_loss: float, test_error: float):
        if self.diverged_at is not None:
            return
        if is_divergent(train_loss, test_loss):
            self.diverged_at = pass_index + 1
            return
        for k, v in zip(HISTORY_KEYS, (train_loss, train_error, test_loss, test_error)):
            self.values[k].append(v)

    @property
    def last_test_error(self) -> float:
        return self.values["test_error"][-1] if self.diverged_at is None and self.values["test_error"] else math.nan


@dataclass
class MemberResult:
    """What a finished member hands to the store."""

    seed: int
    history: MemberHistory
    params: dict[str, torch.Tensor]
    test_outputs: torch.Tensor | None  # (N_test, 10) output values after the last pass
    extra_tests: dict[str, dict[str, float]]  # name -> {"error": .., "loss": ..} on extra test sets
    wall_s: float
    members: int


# --- running one configuration ------------------------------------------------------------------------------
def pending_seeds(key: ConfigKey, seeds: list[int], results_dir: Path, force: bool) -> list[int]:
    """The seeds of configuration `key` that have no record yet (all of them with `force`)."""
    return [s for s in seeds if force or not is_done(results_dir, key.run(s))]


@dataclass
class RunContext:
    """What every configuration of a job shares."""

    results_dir: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    force: bool = False
    engine: str = "auto"
    progress: Progress | None = None
    checkpoint_seeds: frozenset = frozenset({0})
    locks: SeedLocks | None = None
    log: Callable[[str], None] = field(default_factory=lambda: (lambda msg: print(msg, file=sys.stderr)))
    busy: list = field(default_factory=list)  # (planned, dataset, seed) another process was training
    # CPU threads of each side-by-side population (None: torch's); see train_configurations_on_threads
    threads: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)  # set: drop the pass in hand and stop
    chosen: dict = field(default_factory=dict)  # ConfigKey -> Engine, chosen once by the job's plan
    # where finished runs go: sink(record, checkpoint or None); None: written into results_dir (write_run)
    sink: Callable[[RunRecord, dict | None], None] | None = None

    def engine_for(self, planned: PlannedConfig, ds: Dataset) -> registry.Engine:
        """The engine the job's plan chose for this configuration; else chosen now (and a fallback said)."""
        key = ConfigKey.of(planned, ds)
        if key not in self.chosen:
            engine, note = registry.choose(self.engine, planned.config, self.device)
            if note:
                self.log(f"{ds.name} | {planned.label}: {note}")
            self.chosen[key] = engine
        return self.chosen[key]


class Stopped(Exception):
    """A configuration trained side by side stopped because the job was interrupted: the pass it was training
    is dropped, and its state after the pass before is saved (as after every pass)."""


def claim_seeds(planned: PlannedConfig, ds: Dataset, seeds: list[int], ctx: RunContext) -> list[int]:
    """The pending seeds this process may train: it locks each one; seeds another process holds are noted in
    ctx.busy and left to it."""
    key = ConfigKey.of(planned, ds)
    todo = pending_seeds(key, seeds, ctx.results_dir, ctx.force)
    if ctx.locks is None:
        return todo
    mine = []
    for s in todo:
        run = key.run(s)
        if ctx.locks.try_acquire(run):
            if ctx.force or not is_done(ctx.results_dir, run):  # another process may have finished it
                mine.append(s)
            else:
                ctx.locks.release(run)
        else:
            ctx.busy.append((planned, ds, s))
    if len(mine) < len(todo):
        others = [s for s in todo if s not in mine]
        holders = sorted({ctx.locks.holder(key.run(s)) for s in others})
        ctx.log(f"{_what(planned, ds, others)}: being trained by another process (pid {', '.join(holders)}); "
                f"left to it")
    return mine


def train_configuration(planned: PlannedConfig, ds: Dataset, seeds: list[int], ctx: RunContext) -> list[Path]:
    """Train `planned` on `ds` for every seed that has no record yet; return the paths of all its records."""
    cfg = planned.config
    todo = claim_seeds(planned, ds, seeds, ctx)
    try:
        if todo:
            engine = ctx.engine_for(planned, ds)
            if not engine.lockstep:
                results = [_train_reference(planned, ds, s, ctx) for s in todo]
            else:
                pop = engine.population_class(cfg)(cfg, todo, ds.x_train, ds.y_train, device=ctx.device,
                                                   **engine.thread_options(ctx.threads))
                training = _Training(pop, ds, planned, engine.name, ctx)
                for p in range(training.first_pass, cfg.passes):
                    training.pop.train_pass(p)
                    if ctx.stop.is_set():  # the pass in hand is dropped, as an interrupt drops it in the main thread
                        raise Stopped(planned.label)
                    training.after_pass(p)
                results = training.results()
                training.forget_state()
            _write_records(planned, ds, results, ctx, engine.name)
    finally:
        _release(planned, ds, todo, ctx)
    key = ConfigKey.of(planned, ds)
    return [key.run(s).record_path(ctx.results_dir) for s in seeds]


def side_by_side_count(engines: list[str], device: torch.device) -> int:
    """How many configurations to train at once on the CPU, given the engine of each: one per thread when every
    one trains on an engine that trains side by side (the native engine: each population then runs on one
    thread, and a whole population of 16 fills one AVX-512 register, which trains faster than two half-filled
    groups on two threads), else 1."""
    threads = torch.get_num_threads()
    if torch.device(device).type != "cpu" or threads < 2 or len(engines) < 2:
        return 1
    if not all(registry.get(name).side_by_side for name in engines):
        return 1
    return min(threads, len(engines))


def side_by_side_workers(jobs: list[tuple[PlannedConfig, Dataset]], ctx: RunContext) -> int:
    """side_by_side_count for a job's configurations, on the engines they train on."""
    return side_by_side_count([ctx.engine_for(p, ds).name for p, ds in jobs], ctx.device)


def train_configurations_on_threads(jobs: list[tuple[PlannedConfig, Dataset]], seeds: list[int], ctx: RunContext,
                     workers: int) -> None:
    """Train the jobs `workers` at a time, each population on one CPU thread, the longest first (so that the
    last to finish are short ones). Every member's numbers are the same bits as one configuration after
    another: the native kernel's results depend on neither lanes nor threads. On Ctrl-C, each configuration in
    training stops when its pass in hand ends and drops it, as one trained alone would (its state after the pass
    before is saved), and the interrupt goes on to the caller."""
    order = sorted(jobs, key=lambda job: -expected_cost(job[0].config, len(job[1].y_train)))
    # torch's own ops (draws, evaluation's bookkeeping) on one thread too: its OpenMP threads would otherwise
    # compete for the core the other configuration trains on
    threads, torch_threads, ctx.threads = ctx.threads, torch.get_num_threads(), 1
    torch.set_num_threads(1)
    try:
        _train_side_by_side(order, seeds, ctx, workers)
    finally:
        ctx.threads = threads
        torch.set_num_threads(torch_threads)


def expected_cost(cfg: Config, n_train: int) -> float:
    """A configuration's training time relative to others, only to order the side-by-side queue: presentations,
    times 2 for AdamW and 1.2 for dropout (the rungs' ratios in results/bench/cpu.json, rounded)."""
    return cfg.passes * n_train * (2.0 if cfg.optimizer == "adamw" else 1.0) * (1.2 if cfg.dropout > 0 else 1.0)


def _train_side_by_side(order: list[tuple[PlannedConfig, Dataset]], seeds: list[int], ctx: RunContext,
                        workers: int) -> None:
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="repro-config") as pool:
        futures = [pool.submit(train_configuration, planned, ds, seeds, ctx) for planned, ds in order]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        except KeyboardInterrupt:
            _stop(futures, ctx)
            raise
        failed = next((f for f in futures if f.done() and not f.cancelled() and f.exception() is not None), None)
        if failed is not None:
            _stop(futures, ctx)
            raise failed.exception()


def _stop(futures: list, ctx: RunContext) -> None:
    """Cancel the configurations not started; those in training stop when their pass in hand ends."""
    ctx.stop.set()
    for f in futures:
        f.cancel()
    wait(futures)


def train_configurations_in_one_launch(jobs: list[tuple[PlannedConfig, Dataset]], seeds: list[int],
                                       ctx: RunContext) -> None:
    """A grouping engine's way to run a whole job (the fused engine's): every pending (config, dataset)
    population trained together, one kernel launch per pass for all of them (a population drops out when its
    passes are done and writes its records then). Configurations their engine does not group run one by one;
    populations with training sets of different sizes, or of different engines, form separate groups."""
    groups: dict[tuple, list[_Training]] = {}
    for planned, ds in jobs:
        engine = ctx.engine_for(planned, ds)
        if not engine.grouped:
            train_configuration(planned, ds, seeds, ctx)
            continue
        todo = claim_seeds(planned, ds, seeds, ctx)
        if not todo:
            continue
        pop = engine.population_class(planned.config)(planned.config, todo, ds.x_train, ds.y_train, device=ctx.device)
        groups.setdefault((engine, len(ds.y_train)), []).append(_Training(pop, ds, planned, engine.name, ctx))
    for (engine, _), trainings in groups.items():
        try:
            group = engine.group_class()([t.pop for t in trainings])
            for p in range(min(t.first_pass for t in trainings), max(t.pop.cfg.passes for t in trainings)):
                active = [t.first_pass <= p < t.pop.cfg.passes for t in trainings]
                group.train_pass([p if a else None for a in active])
                for t, a in zip(trainings, active):
                    if not a:
                        continue
                    t.after_pass(p)
                    if p == t.pop.cfg.passes - 1:
                        _write_records(t.planned, t.ds, t.results(), ctx, engine.name)
                        t.forget_state()
                        _release(t.planned, t.ds, t.pop.seeds, ctx)
        finally:
            for t in trainings:
                _release(t.planned, t.ds, t.pop.seeds, ctx)


def _release(planned: PlannedConfig, ds: Dataset, seeds: list[int], ctx: RunContext) -> None:
    if ctx.locks is not None:
        key = ConfigKey.of(planned, ds)
        for s in seeds:
            ctx.locks.release(key.run(s))


def _what(planned: PlannedConfig, ds: Dataset, todo: list[int]) -> str:
    return f"{ds.name} | {planned.label} | {len(todo)} seed{'s' if len(todo) != 1 else ''}"


def _write_records(planned: PlannedConfig, ds: Dataset, results: list[MemberResult], ctx: RunContext,
                   engine: str) -> None:
    cfg = planned.config
    for r in results:
        record = build_record(planned, ds, r, engine, ctx.device)
        checkpoint = None
        if r.seed in ctx.checkpoint_seeds and r.history.diverged_at is None:
            checkpoint = {"config": cfg.to_dict(), "dataset": ds.name, "seed": r.seed, "state_dict": r.params}
        if ctx.sink is not None:
            ctx.sink(record, checkpoint)
        else:
            write_run(ctx.results_dir, record, checkpoint)


def write_run(results_dir: Path, record: RunRecord, checkpoint: dict | None) -> None:
    """A finished run into the store: its record, and its checkpoint where it has one (atomic files)."""
    atomic_write_json(record.key.record_path(results_dir), record.to_json())
    if checkpoint is not None:
        atomic_torch_save(record.key.checkpoint_path(results_dir), checkpoint)


def build_record(planned: PlannedConfig, ds: Dataset, r: MemberResult, engine: str,
                 device: torch.device) -> RunRecord:
    """The record of one finished run (schema: repro.jobs.record.RunRecord)."""
    cfg, h = planned.config, r.history
    final: dict = {k: v[-1] for k, v in h.values.items()} if h.values["test_error"] else {}
    if final:
        final["train_mistakes"] = round(final["train_error"] * len(ds.y_train))
        final["test_mistakes"] = round(final["test_error"] * len(ds.y_test))
    if r.test_outputs is not None and h.diverged_at is None:
        final["test_rejection_at_1pct"] = rejection_for_error(r.test_outputs, ds.y_test, REJECTION_TARGET)
        final["test_rejection_curve"] = {
            f"{t:g}": rejection_for_error(r.test_outputs, ds.y_test, t) for t in REJECTION_CURVE_ERRORS
        }
    if h.diverged_at is None:
        for name, numbers in r.extra_tests.items():
            final[f"{name}_error"], final[f"{name}_loss"] = numbers["error"], numbers["loss"]
    return RunRecord(
        schema=SCHEMA_VERSION, rung=planned.rung.name, label=planned.label, mode=planned.mode,
        changes=list(planned.changes), rung_title=planned.rung.title,
        dataset=ds.name, dataset_fingerprint=ds.fingerprint, seed=r.seed, config=cfg.to_dict(),
        config_digest=cfg.digest(), passes=cfg.passes, presentations=cfg.passes * len(ds.y_train),
        diverged_at_pass=h.diverged_at, **h.values, final=final,
        collapsed=is_collapsed(final.get("train_error"), h.diverged_at is not None), engine=engine, population_members=r.members,
        wall_time_s=round(r.wall_s, 3), **environment(device),
    )


def _extra_tests(ds: Dataset) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Further test sets a dataset carries (mnist16: the full 10,000-digit MNIST test set), scored after the
    last pass only."""
    return dict(getattr(ds, "extra_tests", None) or {})


class _Training:
    """One population being trained: its per-member histories, evaluated after every pass, and its state saved
    after every pass (and restored at start when an earlier job was interrupted)."""

    def __init__(self, pop, ds: Dataset, planned: PlannedConfig, engine: str, ctx: RunContext):
        self.pop, self.ds, self.planned, self.engine, self.ctx = pop, ds, planned, engine, ctx
        self.what = _what(planned, ds, pop.seeds)
        self.histories = [MemberHistory() for _ in pop.seeds]
        self.test_outputs: torch.Tensor | None = None
        self.extra: list[dict[str, dict[str, float]]] = [{} for _ in pop.seeds]
        self.wall_before, self.start, self.first_pass = 0.0, time.perf_counter(), 0
        self.state_file = ConfigKey.of(planned, ds).state_path(ctx.results_dir, pop.seeds)
        self._resume()

    def _resume(self) -> None:
        saved = load_state(self.state_file)
        if saved is None or saved.get("engine") != self.engine or saved.get("seeds") != list(self.pop.seeds):
            return
        self.pop.load_state_dict(saved["engine_state"])
        for h, (values, diverged) in zip(self.histories, saved["histories"]):
            h.values, h.diverged_at = values, diverged
        self.first_pass, self.wall_before = saved["passes_done"], saved["wall_s"]
        self.ctx.log(f"[{self.what}] resuming after pass {self.first_pass} (state saved by an interrupted run)")
        if self.ctx.progress:
            self.ctx.progress.total_presentations -= self.first_pass * self.pop.members * self.pop.n_train

    def after_pass(self, p: int) -> None:
        pop, ds, passes = self.pop, self.ds, self.pop.cfg.passes
        last = p == passes - 1
        tr = pop.evaluate(ds.x_train, ds.y_train)
        te = pop.evaluate(ds.x_test, ds.y_test, keep_outputs=last)  # last pass: for rejection
        if te.outputs is not None:
            self.test_outputs = te.outputs.cpu()
        for m, h in enumerate(self.histories):
            h.add(p, tr.loss[m].item(), tr.error[m].item(), te.loss[m].item(), te.error[m].item())
        if last:
            for name, (x, y) in _extra_tests(ds).items():
                ev = pop.evaluate(x, y)
                for m in range(pop.members):
                    self.extra[m][name] = {"error": ev.error[m].item(), "loss": ev.loss[m].item()}
        else:
            self._save_state(p)
        if self.ctx.progress:
            errs = torch.tensor([h.last_test_error for h in self.histories])
            self.ctx.progress.pass_done(self.what, p, passes, errs, pop.members * pop.n_train)

    def _save_state(self, p: int) -> None:
        atomic_torch_save(self.state_file, {
            "engine": self.engine, "seeds": list(self.pop.seeds), "passes_done": p + 1,
            "config_digest": self.planned.config.digest(), "engine_state": self.pop.state_dict(),
            "histories": [(h.values, h.diverged_at) for h in self.histories], "wall_s": self.wall_s(),
        })

    def wall_s(self) -> float:
        return self.wall_before + time.perf_counter() - self.start

    def forget_state(self) -> None:
        self.state_file.unlink(missing_ok=True)

    def results(self) -> list[MemberResult]:
        wall, pop = self.wall_s(), self.pop
        return [MemberResult(s, self.histories[m], pop.member_params(m),
                             None if self.test_outputs is None else self.test_outputs[m], self.extra[m], wall,
                             pop.members)
                for m, s in enumerate(pop.seeds)]


def _train_reference(planned: PlannedConfig, ds: Dataset, seed: int, ctx: RunContext) -> MemberResult:
    """One seed through the plain reference loop, on the job's device (no per-pass state: it is the oracle)."""
    cfg, what = planned.config, _what(planned, ds, [seed])
    history = MemberHistory()

    def on_pass(p, metrics):
        history.add(p, metrics.train_loss, metrics.train_error, metrics.test_loss, metrics.test_error)
        if ctx.progress:
            ctx.progress.pass_done(what, p, cfg.passes, torch.tensor([history.last_test_error]), len(ds.y_train))

    run = train_reference(cfg, ds.x_train, ds.y_train, ds.x_test, ds.y_test, seed, on_pass=on_pass,
                          device=ctx.device)
    params = {k: v.detach().cpu() for k, v in run.params.items()}
    with torch.no_grad():
        test_out = output_values(cfg, forward(params, ds.x_test, cfg))
    extra = {}
    if history.diverged_at is None:
        for name, (x, y) in _extra_tests(ds).items():
            loss, err = evaluate(params, x, y, cfg)
            extra[name] = {"error": err, "loss": loss}
    return MemberResult(seed, history, params, test_out, extra, run.wall_time_s, 1)
