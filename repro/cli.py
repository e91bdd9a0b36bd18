"""The `repro` command line: data, info, train, ablate (and report, bench)."""

from __future__ import annotations

import functools
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import click
import torch

from repro import resources
from repro.config import Config, ConfigError, apply_patch, field_names
from repro.data import DATASETS, MNIST_ORDERS, dataset_spec, fingerprint, load_dataset, summary
from repro.engines import registry
from repro.engines.registry import NAMES as ENGINE_NAMES
from repro.errors import ReproError
from repro.net.model import init_params, layer_shapes
from repro.report.fmt import mean_std
from repro.study.bench import SEEDS, run_bench, usable_engines, write_bench
from repro.study.distributed import barrier, init_from_env, shutdown
from repro.study.ladder import (DEFAULT_LADDER_DIR, MODES, PlannedConfig, Rung, extra_rungs, guess_rungs, load_rungs,
                                 plan)
from repro.study.plan import bench_throughput, estimate_text, make_plan
from repro.study.record import read_record
from repro.study.run_key import ConfigKey
from repro.study.runner import (Progress, RunContext, resolve_device, run_planned, run_side_by_side, run_together,
                                side_by_side_workers)
from repro.study.store import SeedLocks, git_commit, remove_stale_temporaries, set_aside_damaged
from repro.study.sweep import lr_sweep, write_sweep
from repro.study.workspace import (
    STUDY_DIR,
    check_readable_results,
    check_writable,
    default_workspace,
    is_study,
    output_dir,
)

def _log(msg: str) -> None:
    click.echo(msg, err=True)


class _Commands(click.Group):
    """The command group; an error the package reports to its user (ReproError) becomes click's error message,
    here and nowhere else."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ReproError as e:
            raise click.ClickException(str(e)) from e


@click.group(cls=_Commands)
@click.version_option(package_name="lecun1989")
def main() -> None:
    """Reproduce LeCun et al. (1989) and measure what each modern trick buys, over many seeds."""


# --- options shared by several commands: one declaration and one help text each ----------------------------
class CommaList(click.ParamType):
    """A comma-separated list ("a,b,c"), each item converted by a click type; empty items are skipped.
    `check(items)` may return why the list as a whole is refused."""

    def __init__(self, item=click.STRING, noun: str = "names", check=None):
        self.item, self.noun, self.check = click.types.convert_type(item), noun, check
        self.name = "list"

    def get_metavar(self, *args, **kwargs) -> str:  # click 8.2 added a ctx argument
        return "A,B,..."

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            items = [self.item.convert(v.strip(), param, ctx) for v in value.split(",") if v.strip()]
        except click.BadParameter:
            self.fail(f"{value!r} is not a comma-separated list of {self.noun}", param, ctx)
        if self.check and (why := self.check(items)):
            self.fail(f"{value!r}: {why}", param, ctx)
        return items


def _help(text: str, more: str) -> str:
    return f"{text} {more}" if more else text


def device_option(f):
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                        help="auto: CUDA when present, else the CPU (said at the start); cuda without a CUDA device "
                             "is an error.")(f)


def data_dir_option(more: str = ""):
    return click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=_help(
        "Folder with the raw data (default: $REPRO_DATA_DIR, else a per-user cache folder).", more))


def results_dir_option(more: str = ""):
    return click.option("--results-dir", type=click.Path(), default=None, help=_help(
        "Folder for records and outputs (default: the workspace: $REPRO_WORKSPACE, else workspace/ in the "
        "checkout).", more))


def study_option(more: str = ""):
    return click.option("--study", is_flag=True, help=_help(
        "Write into the committed reference study (results/, paper/, README) instead of the workspace. Only for "
        "regenerating the study itself.", more))


@main.command()
@data_dir_option()
@click.option("--dataset", type=click.Choice(DATASETS + ("all",)), default="all", show_default=True)
@click.option("--mnist-order", type=click.Choice(MNIST_ORDERS), default=None,
              help="mnist16: which split the earlier reproduction's prepro.py drew first (default: test-first, the published runs' draw).")
def data(data_dir, dataset, mnist_order) -> None:
    """Fetch (if needed), verify and prepare the datasets, then print a summary."""
    for name in DATASETS if dataset == "all" else (dataset,):
        click.echo(summary(load_dataset(name, data_dir, mnist_order=mnist_order)))
        click.echo()


@main.command()
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Override a config field (repeatable).")
def info(sets) -> None:
    """Print the network's units, connections, parameters and multiply-accumulates, computed from the model."""
    cfg = _config_with(Config(), sets)
    shapes = layer_shapes(init_params(cfg, torch.Generator().manual_seed(0)))
    click.echo(f"{'layer':<6}{'units':>8}{'connections':>14}{'parameters':>12}{'MACs/forward':>14}")
    click.echo(f"{'input':<6}{256:>8}")
    for s in shapes:
        click.echo(f"{s.name:<6}{s.units:>8,}{s.connections:>14,}{s.parameters:>12,}{s.macs:>14,}")
    units = 256 + sum(s.units for s in shapes)
    click.echo(
        f"{'total':<6}{units:>8,}{sum(s.connections for s in shapes):>14,}"
        f"{sum(s.parameters for s in shapes):>12,}{sum(s.macs for s in shapes):>14,}"
    )
    scheme = f"H2 scheme: {cfg.h2_scheme}; " if cfg.architecture == "net1989" else f"architecture: {cfg.architecture}; "
    click.echo(f"{scheme}init: {cfg.init} (+-{cfg.init_scale}/{'F' if cfg.init == 'fan_in' else 'sqrt(F)'})")


def _parse_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string


def _config_with(cfg: Config, sets) -> Config:
    patch = {}
    for item in sets:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not FIELD=VALUE; fields: {', '.join(field_names())}", param_hint="--set")
        k, v = item.split("=", 1)
        patch[k.strip()] = _parse_value(v.strip())
    try:
        return apply_patch(cfg, patch, source="--set")
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--set")


def _device(name):
    return resolve_device(name, log=_log)


def _distinct_seeds(seeds: list[int]) -> str | None:
    return None if seeds and min(seeds) >= 0 and len(set(seeds)) == len(seeds) else "give distinct seeds >= 0"


common_run_options = [
    click.option("--seeds", type=click.IntRange(min=1), default=16, show_default=True, help="Seeds 0..N-1 per configuration."),
    device_option,
    data_dir_option(),
    results_dir_option(),
    study_option(),
    click.option("--force", is_flag=True, help="Redo runs that already have a record."),
    click.option("--engine", type=click.Choice(("auto",) + ENGINE_NAMES), default="auto", show_default=True,
                 help="auto: the fastest engine that implements the configuration on this device (native on CPU, "
                      "fused on a GPU, else population). native: compiled CPU kernel, members in SIMD lanes (a "
                      "population of up to 2 per thread: each member alone, its units in the lanes); "
                      "population: members in lockstep with batched torch ops; fused: one Triton kernel launch per "
                      "pass (GPU; on CPU only Triton's slow interpreter); generic: autograd, the step compiled by "
                      "torch.compile (always for a rung with code); generic-eager: the same step uncompiled; "
                      "reference: the plain loop. All are tested "
                      "equal to the reference loop."),
]


common_run_options.append(click.option(
    "--seed-list", type=CommaList(click.INT, "integers", check=_distinct_seeds), default=None, metavar="S,S,...",
    help="Exactly these seeds instead of 0..N-1 (1337: the earlier reproduction's run, with --set init=repro2022)."))


def with_run_options(f):
    """The common options; the command receives `seeds` as the list of seeds to train (--seed-list, else 0..N-1)."""
    @functools.wraps(f)
    def command(*args, seeds, seed_list, **kwargs):
        return f(*args, seeds=seed_list or list(range(seeds)), **kwargs)

    for opt in reversed(common_run_options):
        command = opt(command)
    return command


@main.command()
@click.option("--dataset", type=click.Choice(DATASETS), default="usps", show_default=True)
@click.option("--passes", type=click.IntRange(min=1), default=None, help="Override the number of passes (default 23).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Override a config field (repeatable).")
@with_run_options
def train(dataset, passes, sets, seeds, device, data_dir, results_dir, study, force, engine) -> None:
    """Train the 1989 network with the 1989 procedure (the 'baseline' rung) for several seeds."""
    cfg = _config_with(Config(), sets)
    if passes is not None:
        cfg = cfg.replace(passes=passes)
    baseline = Rung(0, "baseline", "The 1989 procedure", "", "LeCun et al. (1989)")
    label = "baseline" if cfg == Config() else f"baseline+{cfg.digest()}"
    planned = PlannedConfig(label, baseline, cfg)
    _run_all([planned], [dataset], seeds, device, data_dir, output_dir(results_dir, study), force, engine,
             mode="cumulative")


@main.command()
@click.option("--all", "run_all", is_flag=True, help="Every rung of the ladder on every dataset.")
@click.option("--dataset", "datasets", type=click.Choice(DATASETS), multiple=True, help="Dataset(s) (default: usps, or both with --all).")
@click.option("--rungs", type=CommaList(), default=None, help="Comma-separated rung names (ladder or extra rungs); default: the whole ladder.")
@click.option("--mode", type=click.Choice(MODES), default="cumulative", show_default=True,
              help="cumulative: rung k = baseline + patches 1..k; single: each patch alone; leave-one-out: full ladder minus one; factorial: baseline + every subset of the changes (2^k configurations); guesses: one rung (--on) and each file of the ladder's guesses/ folder on top of it, judged on training data by `repro report`.")
@click.option("--on", "on_rung", default=None, help="--mode guesses: the rung the guesses are measured on (default: the ladder's last).")
@click.option("--ladder-dir", type=click.Path(file_okay=False, exists=True), default=str(DEFAULT_LADDER_DIR), show_default=True)
@click.option("--passes", type=click.IntRange(min=1), default=None, help="Override every rung's passes (quick checks).")
@click.option("--dry-run", is_flag=True, help="Show the plan (seeds done and to do, estimated time), then stop.")
@with_run_options
def ablate(run_all, datasets, rungs, mode, on_rung, ladder_dir, passes, dry_run, seeds, device, data_dir, results_dir,
           study, force, engine):
    """Run the ablation ladder: each rung over many seeds, on one or both datasets."""
    ladder = load_rungs(Path(ladder_dir))
    extras = extra_rungs(Path(ladder_dir))
    guesses = guess_rungs(Path(ladder_dir)) if mode == "guesses" else None
    planned = plan(ladder, mode, rungs or None, extras, guesses=guesses, on=on_rung)
    if passes is not None:
        planned = [PlannedConfig(p.label, p.rung, p.config.replace(passes=passes)) for p in planned]
    datasets = list(datasets) or (list(DATASETS) if run_all else ["usps"])
    out = output_dir(results_dir, study)
    if dry_run:
        _show_plan(planned, datasets, seeds, device, out, force, engine)
        return
    _run_all(planned, datasets, seeds, device, data_dir, out, force, engine, mode)


def _plan_rows(planned, datasets, seeds, out, force):
    facts = {d: (dataset_spec(d).n_train, fingerprint(d)) for d in datasets}
    return make_plan(planned, facts, seeds, out, force)


def _show_plan(planned, datasets, seeds, device, out, force, engine) -> None:
    """--dry-run: per (dataset, configuration) the seeds done and to do, and the estimated time left."""
    dev = _device(device)
    rows = _plan_rows(planned, datasets, seeds, out, force)
    click.echo(f"results folder: {out}")
    click.echo(f"{'dataset':<9}{'label':<42}{'passes':>7}{'done':>6}{'to do':>7}  {'seeds to do':<18}{'engine':<11}changes from baseline")
    left = 0
    by_engine: dict[str, int] = {}
    configurations: dict[str, int] = {}  # per engine, configurations with runs to do (each compiles once)
    for r in rows:
        chosen = _engine_for(engine, r.planned.config, dev)
        by_engine[chosen] = by_engine.get(chosen, 0) + r.presentations_left
        configurations[chosen] = configurations.get(chosen, 0) + bool(r.todo)
        left += r.presentations_left
        diff = {k: v for k, v in r.planned.config.to_dict().items() if v != getattr(Config(), k)}
        click.echo(f"{r.dataset:<9}{r.planned.label:<42}{r.planned.config.passes:>7}{len(r.done):>6}{len(r.todo):>7}  "
                   f"{_seed_ranges(r.todo):<18}{chosen:<11}{diff or ''}")
    done = sum(len(r.done) for r in rows)
    todo = sum(len(r.todo) for r in rows)
    click.echo(f"total: {done + todo} runs: {done} done, {todo} to do ({left:,} presentations)")
    for name, n in by_engine.items():
        if n:
            click.echo(f"  {name} on {dev.type}: {n:,} presentations, {estimate_text(n, bench_throughput(dev, name), configurations[name])}")


def _engine_for(name: str, cfg: Config, dev) -> str:
    return registry.choose(name, cfg, dev)[0].name


def _seed_ranges(seeds: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'."""
    out, start = [], None
    for i, s in enumerate(seeds):
        if start is None:
            start = s
        if i + 1 == len(seeds) or seeds[i + 1] != s + 1:
            out.append(f"{start}" if start == s else f"{start}-{s}")
            start = None
    return ",".join(out) or "-"


def _run_all(planned, datasets, seeds, device, data_dir, results_dir, force, engine, mode) -> None:
    results_dir = Path(results_dir)
    git_commit()  # fix the code version the records will name now, before anyone edits the tree
    dev = _device(device)
    check_writable(results_dir)  # every problem with the folder shows now, before anything trains
    rank = init_from_env(dev)
    dev = rank.device(dev)
    if engine == "fused" and dev.type == "cpu":
        _log("--engine fused on cpu: the kernel runs in Triton's interpreter, about 75 steps/s whatever the "
             "population (100-600x slower than the CPU engines); it is there to check the kernel, not to train")
    my_seeds = rank.share(seeds)
    if rank.world > 1:
        _log(f"rank {rank.rank} of {rank.world}: seeds {my_seeds} of every configuration, on {dev}")
    if rank.is_main:
        for stale in remove_stale_temporaries(results_dir):
            _log(f"removed {stale}, a temporary file left by an interrupted run")
        set_aside_damaged(results_dir, log=_log)
    barrier(rank)
    loaded = {name: load_dataset(name, data_dir) for name in datasets}
    rows = make_plan(planned, {d: (len(loaded[d].y_train), loaded[d].fingerprint) for d in datasets}, my_seeds,
                     results_dir, force)
    left = sum(r.presentations_left for r in rows)
    n_todo, n_done = sum(len(r.todo) for r in rows), sum(len(r.done) for r in rows)
    if rank.is_main:
        first = _engine_for(engine, planned[0].config, dev) if planned else engine
        _log(f"{n_todo} run{'s' if n_todo != 1 else ''} to train, {n_done} already in {results_dir}; "
             f"time on {dev.type} ({first}): "
             f"{estimate_text(left, bench_throughput(dev, first), sum(bool(r.todo) for r in rows))}")
    ctx = RunContext(results_dir, dev, mode, force, engine, Progress(left), locks=SeedLocks(results_dir), log=_log)
    try:
        jobs = [(p, loaded[name]) for name in datasets for p in planned] if my_seeds else []
        _train_jobs(jobs, my_seeds, ctx)
        barrier(rank)
    except KeyboardInterrupt:
        ctx.locks.release_all()
        finished = sum(1 for r in rows for s in r.todo
                       if ConfigKey.of(r.planned, loaded[r.dataset]).run(s).record_path(results_dir).exists())
        _log(f"\ninterrupted: {n_done + finished} finished records are kept in {results_dir / 'runs'}; the "
             f"configurations in training keep their state after their last finished pass ({results_dir / 'state'}).\n"
             f"Run the same command again to resume: finished runs are not redone and training continues from "
             f"the pass after the last one saved.")
        sys.exit(130)
    finally:
        shutdown(rank)
    if rank.is_main:
        _summarise([ConfigKey.of(p, loaded[d]).run(s).record_path(results_dir)
                    for d in datasets for p in planned for s in seeds])
        where = "the committed study" if is_study(results_dir) else "your workspace"
        _log(f"records: {results_dir / 'runs'} ({where}); tables, figures and the comparison with the committed "
             f"study: repro report" + ("" if results_dir == default_workspace() else f" --results-dir {results_dir}"))


def _train_jobs(jobs, seeds, ctx) -> None:
    """Train every job; a run another process holds is left to it, then waited for (its lock is released when
    that process ends, even by a crash): if its record is still missing then, it is trained here."""
    while True:
        ctx.busy.clear()
        if ctx.engine == "fused":  # every population of the job together, one kernel launch per pass
            run_together(jobs, seeds, ctx)
        elif (workers := side_by_side_workers(jobs, ctx)) > 1:  # native: one configuration per CPU thread
            run_side_by_side(jobs, seeds, ctx, workers)
        else:
            for p, ds in jobs:
                run_planned(p, ds, seeds, ctx)
        if not ctx.busy:
            return
        for planned, ds, s in ctx.busy:
            _log(f"waiting for another process to finish {ds.name} | {planned.label} | seed {s} ...")
            ctx.locks.wait(ConfigKey.of(planned, ds).run(s))


def _summarise(paths) -> None:
    """A short table of what the records say (mean +- std of the final errors; no +- for one seed)."""
    groups: dict[tuple[str, str], list] = {}
    for path in paths:
        if path.exists():
            rec = read_record(path)
            groups.setdefault((rec.dataset, rec.label), []).append(rec)
    click.echo(f"{'dataset':<9}{'label':<42}{'seeds':>6}{'train err %':>16}{'test err %':>16}{'wall s':>9}")
    for (ds, label), recs in groups.items():
        ok = [r for r in recs if r.finished]

        def ms(key):
            vals = [100 * r.final[key] for r in ok]
            if not vals:
                return "n/a"
            return mean_std(statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else None, pm="+-")
        wall = max(r.wall_time_s for r in recs)
        div = f"  ({len(recs) - len(ok)} diverged)" if len(ok) < len(recs) else ""
        click.echo(f"{ds:<9}{label:<42}{len(recs):>6}{ms('train_error'):>16}{ms('test_error'):>16}{wall:>9.1f}{div}")


@main.command()
@results_dir_option("Its runs/ are reported; the report goes to <folder>/report/.")
@study_option("Here: results/results.md, paper/ and the README's generated blocks, from results/runs/.")
@click.option("--check", is_flag=True, help="Exit non-zero when any configuration differs from the committed study.")
@data_dir_option("Only for the misclassified-digits figure; never downloads.")
@click.option("--ladder-dir", type=click.Path(file_okay=False), default=str(DEFAULT_LADDER_DIR), show_default=True,
              help="Ladder whose rung order orders the rows.")
@click.option("--strict", is_flag=True, help="Stop (exit 1) at the first damaged or foreign file under runs/ instead of skipping it.")
@click.option("--no-figures", is_flag=True, help="Write the report and tables only (fast).")
def report(results_dir, study, check, data_dir, ladder_dir, strict, no_figures) -> None:
    """Tables, figures and a report from run records; for a workspace, checked against the committed study."""
    from repro.report.build import write_report  # draws the figures: matplotlib loads only for this command

    folder = output_dir(results_dir, study)
    check_readable_results(folder)
    outcome = write_report(folder, study=is_study(folder), reference_dir=None if is_study(folder) else STUDY_DIR,
                           data_dir=data_dir, ladder_dir=Path(ladder_dir), strict=strict,
                           make_figures=not no_figures, warn=_log,
                           summary_file=resources.summary_file() if is_study(folder) else None)
    for path in outcome.written:
        click.echo(f"wrote {path}")
    if outcome.comparison_text:
        click.echo(outcome.comparison_text)
    if check and not outcome.all_agree:
        raise click.ClickException(outcome.comparison_text or "the check against the committed study failed")


@main.command()
@click.option("--rung", required=True, help="Rung (ladder or extra) whose config is swept.")
@click.option("--ladder-dir", type=click.Path(file_okay=False, exists=True), default=str(DEFAULT_LADDER_DIR), show_default=True)
@click.option("--lrs", type=CommaList(click.FLOAT, "numbers"), default="1e-4,3e-4,1e-3,3e-3,1e-2", show_default=True,
              help="Learning rates (a log grid).")
@click.option("--seeds", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--passes", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--dataset", type=click.Choice(DATASETS), default="usps", show_default=True)
@device_option
@data_dir_option()
@results_dir_option("The sweep goes to <folder>/sweeps/.")
@study_option()
def sweep(rung, ladder_dir, lrs, seeds, passes, dataset, device, data_dir, results_dir, study) -> None:
    """Sweep the learning rate of one rung's config, judged on training-set error (never the test set)."""
    ladder, extras = load_rungs(Path(ladder_dir)), extra_rungs(Path(ladder_dir))
    (planned,) = plan(ladder, "cumulative", [rung], extras)
    out = check_writable(output_dir(results_dir, study) / "sweeps")
    dev = _device(device)
    ds = load_dataset(dataset, data_dir)
    points = lr_sweep(planned.config, ds, lrs, list(range(seeds)), passes, dev, log=_log)
    for path in write_sweep(out / f"{dataset}-{planned.label}-lr", planned.label, planned.config, ds, points, passes, dev):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--dataset", type=click.Choice(DATASETS), default="usps", show_default=True)
@device_option
@data_dir_option()
@click.option("--populations", type=CommaList(click.IntRange(min=1), "population sizes"), default="1,16,224",
              show_default=True,
              help="Population sizes to measure (224: every configuration of ablate --all at 16 seeds).")
@click.option("--engines", type=CommaList(), default=None,
              help="Comma-separated engines to measure (default: every engine usable on the device but the "
                   "reference loop, which is always measured; fused only on a GPU).")
@click.option("--estimate", is_flag=True, help="Project the ablate --all time from measured rates instead of running it.")
@click.option("--keep-runs", type=click.Path(file_okay=False), default=None,
              help="Keep the records of the measured ablate --all in this new folder (default: a throw-away folder).")
@results_dir_option("Figures go to <folder>/bench/<device>.json and .png.")
@study_option()
def bench(dataset, device, data_dir, populations, engines, estimate, keep_runs, results_dir, study) -> None:
    """Speed of every engine as ratios against the plain reference loop, measured in the same run."""
    out = check_writable(output_dir(results_dir, study) / "bench")
    dev = _device(device)
    names = engines or usable_engines(dev)
    for name in names:
        if name not in ENGINE_NAMES or name == "reference":
            raise click.BadParameter(f"{name!r}; valid: {', '.join(n for n in ENGINE_NAMES if n != 'reference')}",
                                     param_hint="--engines")
        if name == "fused" and dev.type == "cpu":
            raise click.ClickException("--engines fused on cpu runs in Triton's interpreter, which checks the kernel "
                                       "but says nothing about speed; bench it on a GPU")
        if why := registry.get(name).available(dev):
            raise click.ClickException(f"engine {name} cannot run here: {why}")
    ds = load_dataset(dataset, data_dir)

    if keep_runs and Path(keep_runs).exists() and any(Path(keep_runs).iterdir()):
        raise click.ClickException(f"--keep-runs {keep_runs}: the folder is not empty (a timed run must train "
                                   "everything)")

    def measure_ablate() -> float:  # the real command, from nothing, into a fresh results folder
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            _run_all(plan(load_rungs()), list(DATASETS), list(range(SEEDS)), device, data_dir, Path(keep_runs or tmp),
                     False, "auto", "cumulative")
            return time.perf_counter() - t0

    result = run_bench(ds, dev, names, populations, ablate_engine="auto",
                       ablate_measure=None if estimate else measure_ablate, log=click.echo)
    for path in write_bench(result, dev, out):
        click.echo(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
