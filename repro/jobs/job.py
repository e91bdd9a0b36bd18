"""A job: what `repro train`, `repro ablate`, `api.train` and the bench's timed `ablate --all` run, planned once
and run by one function.

A job is planned once (plan_job): one entry per (dataset, configuration) with its run keys, the engine the
registry chose for it, the seeds done and to do, and the estimated time. `--dry-run` shows that plan; run_job
trains it and owns everything around the training: the code version the records name (pinned at the start),
the results folder's checks, stale temporaries and damaged records, the per-run locks, progress with the time
left, an interrupt (what is kept, how to resume), the summary, and how configurations share the machine
(grouped in one launch, side by side on threads, or one after another) or go to a cluster (repro.jobs.cluster,
which takes the plan's entries as its units).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from repro.config import Config
from repro.data import Dataset, dataset_spec, fingerprint, load_dataset
from repro.engines import registry
from repro.jobs.ladder import PlannedConfig
from repro.jobs.plan import (MEASURED_FROM_S, EstimatedConfig, bench_throughput, estimate_text,
                             measured_estimate, measures_here)
from repro.jobs.record import RunRecord, is_done, read_record
from repro.jobs.run_key import ConfigKey, RunKey
from repro.jobs.runner import (Progress, RunContext, fmt_seconds, pending_seeds, side_by_side_count,
                               train_configuration, train_configurations_in_one_launch,
                               train_configurations_on_threads)
from repro.jobs.store import SeedLocks, git_commit, remove_stale_temporaries, set_aside_damaged
from repro.jobs.workspace import check_writable, default_workspace, is_study

Log = Callable[[str], None]


@dataclass(frozen=True)
class JobRequest:
    """What to train: configurations x datasets x seeds, into a results folder, on a device."""

    planned: list[PlannedConfig]
    datasets: list[str]
    seeds: list[int]
    results_dir: Path
    device: torch.device
    engine: str = registry.AUTO  # the engine asked for; each entry's own is chosen by the registry
    force: bool = False


@dataclass(frozen=True)
class JobEntry:
    """One (dataset, configuration) of a job: its runs, its engine, the seeds done and to do. It is also the
    unit a cluster trains: a configuration's whole population of seeds."""

    planned: PlannedConfig
    key: ConfigKey
    n_train: int
    engine: registry.Engine
    note: str | None  # why the engine is not the one asked for, or None
    done: list[int]
    todo: list[int]

    @property
    def dataset(self) -> str:
        return self.key.dataset

    @property
    def presentations_left(self) -> int:
        return self.planned.config.passes * self.n_train * len(self.todo)

    def run_keys(self, seeds: list[int]) -> list[RunKey]:
        return [self.key.run(s) for s in seeds]


@dataclass(frozen=True)
class JobPlan:
    request: JobRequest
    entries: list[JobEntry]

    @property
    def units(self) -> list[JobEntry]:
        """The entries with seeds to train."""
        return [e for e in self.entries if e.todo]

    @property
    def presentations_left(self) -> int:
        return sum(e.presentations_left for e in self.entries)

    def counts(self) -> tuple[int, int]:
        """(runs done, runs to do)."""
        return sum(len(e.done) for e in self.entries), sum(len(e.todo) for e in self.entries)

    def records(self) -> list[RunRecord]:
        """The records of the job's runs that are done, in plan order."""
        folder = self.request.results_dir
        return [read_record(k.record_path(folder)) for e in self.entries for k in e.run_keys(self.request.seeds)
                if is_done(folder, k)]

    def estimate_lines(self, scale_to_here: bool = True) -> list[str]:
        """The estimated time left per engine, labelled estimated (repro.jobs.plan: the job's configurations
        timed here where the engine allows, else `repro bench` figures)."""
        by_engine: dict[str, int] = {}
        configurations: dict[str, int] = {}  # per engine, configurations with runs to do (each compiles once)
        for e in self.entries:
            by_engine[e.engine.name] = by_engine.get(e.engine.name, 0) + e.presentations_left
            configurations[e.engine.name] = configurations.get(e.engine.name, 0) + bool(e.todo)
        dev = self.request.device
        lines = []
        for name, n in by_engine.items():
            if not n:
                continue
            timed = scale_to_here and measures_here(name, dev)
            # where the job's configurations are timed here, the bench figure only decides whether the job is
            # long enough for that: no scaling to this CPU (itself a timing) unless the figure is announced
            bench = bench_throughput(dev, name, scale_to_here=scale_to_here and not timed)
            if timed and (bench is None or n / bench.presentations_per_s >= MEASURED_FROM_S):
                seconds, source = self.measured_estimate(name)
                text = f"~{fmt_seconds(seconds)} (estimated: {source})"
            else:
                if timed:
                    bench = bench_throughput(dev, name, scale_to_here=True)
                text = estimate_text(n, bench, configurations[name])
            lines.append(f"{name} on {dev.type}: {n:,} presentations, {text}")
        return lines

    def measured_estimate(self, engine: str) -> tuple[float, str]:
        """(seconds, source) of the configurations `engine` trains, timed here (plan.measured_estimate), as
        many at once as the job trains at once (all of its configurations count: runner.side_by_side_count)."""
        dev = self.request.device
        workers = side_by_side_count([e.engine.name for e in self.units], dev)
        units = []
        for e in self.units:
            if e.engine.name == engine:
                spec = dataset_spec(e.dataset)
                units.append(EstimatedConfig(e.planned.config, len(e.todo), e.n_train, e.n_train + spec.n_test,
                                             sum(spec.extra_tests.values())))
        return measured_estimate(units, engine, dev, workers)


DatasetFacts = dict[str, tuple[int, str]]  # name -> (training-set size, fingerprint)


def facts_of(datasets: dict[str, Dataset]) -> DatasetFacts:
    return {name: (len(ds.y_train), ds.fingerprint) for name, ds in datasets.items()}


def facts_without_data(names: list[str]) -> DatasetFacts:
    """The facts of datasets as load_dataset would prepare them, without reading any data (for --dry-run)."""
    return {name: (dataset_spec(name).n_train, fingerprint(name)) for name in names}


def plan_job(request: JobRequest, facts: DatasetFacts) -> JobPlan:
    """The plan: per dataset and configuration, the engine (chosen once here) and the seeds done (a record
    exists, and not `force`) and to do."""
    entries = []
    for name in request.datasets:
        n_train, fp = facts[name]
        for p in request.planned:
            key = ConfigKey(name, fp, p.label, p.config.digest())
            engine, note = registry.choose(request.engine, p.config, request.device)
            todo = pending_seeds(key, request.seeds, request.results_dir, request.force)
            entries.append(JobEntry(p, key, n_train, engine, note, [s for s in request.seeds if s not in todo],
                                    todo))
    return JobPlan(request, entries)


def plan_lines(plan: JobPlan) -> list[str]:
    """--dry-run: per (dataset, configuration) the seeds done and to do and the engine; then the totals and
    the estimated time left."""
    lines = [f"results folder: {plan.request.results_dir}",
             f"{'dataset':<9}{'label':<42}{'passes':>7}{'done':>6}{'to do':>7}  {'seeds to do':<18}{'engine':<11}"
             f"changes from baseline"]
    for e in plan.entries:
        cfg = e.planned.config
        diff = {k: v for k, v in cfg.to_dict().items() if v != getattr(Config(), k)}
        lines.append(f"{e.dataset:<9}{e.planned.label:<42}{cfg.passes:>7}{len(e.done):>6}{len(e.todo):>7}  "
                     f"{seed_ranges(e.todo):<18}{e.engine.name:<11}{diff or ''}")
    done, todo = plan.counts()
    lines.append(f"total: {done + todo} runs: {done} done, {todo} to do ({plan.presentations_left:,} presentations)")
    return lines + [f"  {line}" for line in plan.estimate_lines()]


def seed_ranges(seeds: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'."""
    out, start = [], None
    for i, s in enumerate(seeds):
        if start is None:
            start = s
        if i + 1 == len(seeds) or seeds[i + 1] != s + 1:
            out.append(f"{start}" if start == s else f"{start}-{s}")
            start = None
    return ",".join(out) or "-"


class JobInterrupted(KeyboardInterrupt):
    """The job was interrupted (Ctrl-C); what is kept and how to resume has been said."""


def run_job(request: JobRequest, data: dict[str, Dataset] | None = None, data_dir: str | Path | None = None,
            log: Log = print, progress: bool = True, cluster: str | None = None) -> JobPlan:
    """Train a job. `data`: the datasets already loaded (else loaded from `data_dir`). `cluster`: a Dask
    scheduler's address or `local[:N]` (repro.jobs.cluster), else this machine. Returns the plan it
    trained. Ctrl-C raises JobInterrupted once the finished records are safe."""
    connection = None
    if cluster:
        from repro.jobs.cluster import connect  # only with the [cluster] extra

        connection = connect(cluster, log)  # before anything is written: an unreachable address writes nothing
    try:
        return _run(request, data, data_dir, log, progress, connection)
    finally:
        if connection is not None:
            connection.close()


def _run(request, data, data_dir, log, progress, connection) -> JobPlan:
    git_commit()  # fix the code version the records will name now, before anyone edits the tree
    results_dir = check_writable(Path(request.results_dir))  # every problem with it shows before training
    if (asked := request.engine) != registry.AUTO and (engine := registry.get(asked)).only_checks_on(request.device):
        log(f"--engine {asked} on {request.device.type}: the kernel runs in {engine.checks_in}, 100-600x slower "
            f"than the other engines; it is there to check the kernel, not to train")
    for stale in remove_stale_temporaries(results_dir):
        log(f"removed {stale}, a temporary file left by an interrupted run")
    set_aside_damaged(results_dir, log=log)
    loaded = data if data is not None else {name: load_dataset(name, data_dir) for name in request.datasets}
    plan = plan_job(request, facts_of(loaded))
    done, todo = plan.counts()
    log(f"{todo} run{'s' if todo != 1 else ''} to train, {done} already in {results_dir}; estimated time: "
        + ("; ".join(plan.estimate_lines()) or "nothing to train"))
    for e in plan.units:
        if e.note:
            log(f"{e.dataset} | {e.planned.label}: {e.note}")
    ctx = RunContext(results_dir, request.device, request.force, request.engine,
                     Progress(plan.presentations_left) if progress else None, locks=SeedLocks(results_dir),
                     log=log, chosen={e.key: e.engine for e in plan.entries})
    try:
        if connection is not None:
            connection.train(plan, loaded, ctx)
        else:
            share_machine([(e.planned, loaded[e.dataset]) for e in plan.units], request.seeds, ctx)
    except KeyboardInterrupt:
        ctx.locks.release_all()
        finished = sum(1 for e in plan.units for k in e.run_keys(e.todo) if is_done(results_dir, k))
        log(f"\ninterrupted: {done + finished} finished records are kept in {results_dir / 'runs'}; the "
            f"configurations in training keep their state after their last finished pass ({results_dir / 'state'}).\n"
            f"Run the same command again to resume: finished runs are not redone and training continues from "
            f"the pass after the last one saved.")
        raise JobInterrupted() from None
    return plan


def share_machine(jobs: list[tuple[PlannedConfig, Dataset]], seeds: list[int], ctx: RunContext) -> None:
    """Train every (configuration, dataset) on this machine: those whose engine groups configurations in one
    launch together, the rest side by side on threads where their engine trains so, else one after another.
    A run another process holds is left to it, then waited for (its lock is released when that process ends,
    even by a crash): if its record is still missing then, it is trained here."""
    while True:
        ctx.busy.clear()
        grouped = [(p, ds) for p, ds in jobs if ctx.engine_for(p, ds).grouped]
        rest = [(p, ds) for p, ds in jobs if not ctx.engine_for(p, ds).grouped]
        if grouped:
            train_configurations_in_one_launch(grouped, seeds, ctx)
        workers = side_by_side_count([ctx.engine_for(p, ds).name for p, ds in rest], ctx.device)
        if workers > 1:
            train_configurations_on_threads(rest, seeds, ctx, workers)
        else:
            for p, ds in rest:
                train_configuration(p, ds, seeds, ctx)
        if not ctx.busy:
            return
        for planned, ds, s in ctx.busy:
            ctx.log(f"waiting for another process to finish {ds.name} | {planned.label} | seed {s} ...")
            ctx.locks.wait(ConfigKey.of(planned, ds).run(s))


def results_table_lines(records: list[RunRecord]) -> list[str]:
    """A short table of what the records say (mean +- std of the final errors; no +- for one seed)."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for rec in records:
        groups.setdefault((rec.dataset, rec.label), []).append(rec)
    lines = [f"{'dataset':<9}{'label':<42}{'seeds':>6}{'train err %':>16}{'test err %':>16}{'wall s':>9}"]
    for (ds, label), recs in groups.items():
        ok = [r for r in recs if r.finished]

        def ms(key):
            vals = [100 * r.final[key] for r in ok]
            if not vals:
                return "n/a"
            spread = f"+-{statistics.stdev(vals):.2f}" if len(vals) > 1 else ""  # errors: never a negative zero
            return f"{statistics.mean(vals):.2f}{spread}"
        wall = max(r.wall_time_s for r in recs)
        div = f"  ({len(recs) - len(ok)} diverged)" if len(ok) < len(recs) else ""
        lines.append(f"{ds:<9}{label:<42}{len(recs):>6}{ms('train_error'):>16}{ms('test_error'):>16}{wall:>9.1f}{div}")
    return lines


def where_lines(results_dir: Path) -> list[str]:
    """Where the records are and how to report them."""
    where = "the committed study" if is_study(results_dir) else "your workspace"
    return [f"records: {results_dir / 'runs'} ({where}); tables, figures and the comparison with the committed "
            f"study: repro report" + ("" if results_dir == default_workspace() else f" --results-dir {results_dir}")]
