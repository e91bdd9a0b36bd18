"""The `repro` command line: data, info, train, ablate (and report, bench)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from repro.config import Config, ConfigError, apply_patch, field_names
from repro.data import DATASETS, DataError, load_dataset, summary
from repro.engines.fused import FusedEngineError
from repro.study.ladder import DEFAULT_LADDER_DIR, MODES, PlannedConfig, Rung, extra_rungs, load_rungs, plan
from repro.study.runner import (
    ENGINES,
    DeviceError,
    Progress,
    pending_seeds,
    presentations,
    resolve_device,
    run_planned,
    run_together,
)
from repro.study.store import DEFAULT_RESULTS_DIR, git_commit, remove_stale_temporaries

DATA_DIR_HELP = "Folder with the raw data (default: $REPRO_DATA_DIR, else a per-user cache folder)."


def _log(msg: str) -> None:
    click.echo(msg, err=True)


def _fail(e: Exception) -> None:
    raise click.ClickException(str(e))


def _load(name: str, data_dir):
    try:
        return load_dataset(name, data_dir)
    except DataError as e:
        _fail(e)


@click.group()
@click.version_option(package_name="lecun1989")
def main() -> None:
    """Reproduce LeCun et al. (1989) and measure what each modern trick buys, over many seeds."""


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
@click.option("--dataset", type=click.Choice(DATASETS + ("all",)), default="all", show_default=True)
def data(data_dir, dataset) -> None:
    """Fetch (if needed), verify and prepare the datasets, then print a summary."""
    for name in DATASETS if dataset == "all" else (dataset,):
        click.echo(summary(_load(name, data_dir)))
        click.echo()


@main.command()
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Override a config field (repeatable).")
def info(sets) -> None:
    """Print the network's units, connections, parameters and multiply-accumulates, computed from the model."""
    import torch

    from repro.net.model import init_params, layer_shapes

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
    click.echo(f"{scheme}init: {cfg.init} (+-{cfg.init_scale}/{'sqrt(F)' if cfg.init == 'sqrt_fan_in' else 'F'})")


def _parse_value(text: str):
    import tomllib

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
    try:
        return resolve_device(name, log=_log)
    except DeviceError as e:
        _fail(e)


common_run_options = [
    click.option("--seeds", type=click.IntRange(min=1), default=16, show_default=True, help="Seeds 0..N-1 per configuration."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
    click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP),
    click.option("--results-dir", type=click.Path(file_okay=False), default=str(DEFAULT_RESULTS_DIR), show_default=True),
    click.option("--force", is_flag=True, help="Redo runs that already have a record."),
    click.option("--engine", type=click.Choice(ENGINES), default="population", show_default=True,
                 help="population: members in lockstep (fast, tested equal to the reference); fused: the same with each "
                      "pass one Triton kernel launch (the GPU fast path; on CPU only Triton's slow interpreter); "
                      "reference: the plain loop."),
]


def with_run_options(f):
    for opt in reversed(common_run_options):
        f = opt(f)
    return f


@main.command()
@click.option("--dataset", type=click.Choice(DATASETS), default="usps", show_default=True)
@click.option("--passes", type=click.IntRange(min=1), default=None, help="Override the number of passes (default 23).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Override a config field (repeatable).")
@with_run_options
def train(dataset, passes, sets, seeds, device, data_dir, results_dir, force, engine) -> None:
    """Train the 1989 network with the 1989 procedure (the 'baseline' rung) for several seeds."""
    cfg = _config_with(Config(), sets)
    if passes is not None:
        cfg = cfg.replace(passes=passes)
    baseline = Rung(0, "baseline", "The 1989 procedure", "", "LeCun et al. (1989)")
    label = "baseline" if cfg == Config() else f"baseline+{cfg.digest()}"
    planned = PlannedConfig(label, baseline, cfg)
    _run_all([planned], [dataset], seeds, device, data_dir, results_dir, force, engine, mode="cumulative")


@main.command()
@click.option("--all", "run_all", is_flag=True, help="Every rung of the ladder on every dataset.")
@click.option("--dataset", "datasets", type=click.Choice(DATASETS), multiple=True, help="Dataset(s) (default: usps, or both with --all).")
@click.option("--rungs", default=None, help="Comma-separated rung names (ladder or extra rungs); default: the whole ladder.")
@click.option("--mode", type=click.Choice(MODES), default="cumulative", show_default=True,
              help="cumulative: rung k = baseline + patches 1..k; single: each patch alone; leave-one-out: full ladder minus one.")
@click.option("--ladder-dir", type=click.Path(file_okay=False, exists=True), default=str(DEFAULT_LADDER_DIR), show_default=True)
@click.option("--passes", type=click.IntRange(min=1), default=None, help="Override every rung's passes (quick checks).")
@click.option("--dry-run", is_flag=True, help="List what would run and what it costs, then stop.")
@with_run_options
def ablate(run_all, datasets, rungs, mode, ladder_dir, passes, dry_run, seeds, device, data_dir, results_dir, force, engine):
    """Run the ablation ladder: each rung over many seeds, on one or both datasets."""
    try:
        ladder = load_rungs(Path(ladder_dir))
        extras = extra_rungs(Path(ladder_dir))
        only = [r.strip() for r in rungs.split(",") if r.strip()] if rungs else None
        planned = plan(ladder, mode, only, extras)
        if passes is not None:
            planned = [PlannedConfig(p.label, p.rung, p.config.replace(passes=passes)) for p in planned]
    except ConfigError as e:
        _fail(e)
    datasets = list(datasets) or (list(DATASETS) if run_all else ["usps"])
    if dry_run:
        total = 0
        click.echo(f"{'dataset':<9}{'label':<22}{'passes':>7}{'seeds':>7}{'presentations':>16}  changes from baseline")
        for ds in datasets:
            for p in planned:
                n = presentations(p.config, 7291, seeds)
                total += n
                diff = {k: v for k, v in p.config.to_dict().items() if v != getattr(Config(), k)}
                click.echo(f"{ds:<9}{p.label:<22}{p.config.passes:>7}{seeds:>7}{n:>16,}  {diff or ''}")
        click.echo(f"total: {len(planned) * len(datasets) * seeds} runs, {total:,} presentations")
        return
    _run_all(planned, datasets, seeds, device, data_dir, results_dir, force, engine, mode)


def _run_all(planned, datasets, seeds, device, data_dir, results_dir, force, engine, mode) -> None:
    from repro.study.distributed import barrier, init_from_env, shutdown
    from repro.study.store import run_path

    git_commit()  # fix the code version the records will name now, before anyone edits the tree
    dev = _device(device)
    rank = init_from_env(dev)
    dev = rank.device(dev)
    if engine == "fused" and dev.type == "cpu":
        _log("--engine fused on cpu: the kernel runs in Triton's interpreter, about 75 steps/s whatever the "
             "population (100-600x slower than --engine population); it is there to check the kernel, not to train")
    my_seeds = rank.share(list(range(seeds)))
    if rank.world > 1:
        _log(f"rank {rank.rank} of {rank.world}: seeds {my_seeds} of every configuration, on {dev}")
    if rank.is_main:
        for stale in remove_stale_temporaries(Path(results_dir)):
            _log(f"removed {stale}, a temporary file left by an interrupted run")
    loaded = {name: _load(name, data_dir) for name in datasets}
    total = sum(presentations(p.config, len(loaded[d].y_train), len(pending_seeds(p, d, my_seeds, Path(results_dir), force)))
                for d in datasets for p in planned)  # what is left to do, so a resumed job's estimate is right
    progress = Progress(total)
    try:
        jobs = [(p, loaded[name]) for name in datasets for p in planned] if my_seeds else []
        if engine == "fused":  # every population of the job together, one kernel launch per pass
            run_together(jobs, my_seeds, Path(results_dir), device=dev, mode=mode, force=force, progress=progress)
        else:
            for p, ds in jobs:
                run_planned(p, ds, my_seeds, Path(results_dir), device=dev, mode=mode, force=force, engine=engine,
                            progress=progress)
        barrier(rank)
    except FusedEngineError as e:
        _fail(e)
    finally:
        shutdown(rank)
    if rank.is_main:
        _summarise([run_path(Path(results_dir), d, p.label, p.config.digest(), s)
                    for d in datasets for p in planned for s in range(seeds)])


def _summarise(paths) -> None:
    """A short table of what the records say (mean +- std of the final errors)."""
    import statistics

    from repro.study.store import load_record

    groups: dict[tuple[str, str], list[dict]] = {}
    for path in paths:
        rec = load_record(path)
        groups.setdefault((rec["dataset"], rec["label"]), []).append(rec)
    click.echo(f"{'dataset':<9}{'label':<22}{'seeds':>6}{'train err %':>16}{'test err %':>16}{'wall s':>9}")
    for (ds, label), recs in groups.items():
        ok = [r for r in recs if r["diverged_at_pass"] is None]
        def ms(key):
            vals = [100 * r["final"][key] for r in ok]
            if not vals:
                return "n/a"
            return f"{statistics.mean(vals):.2f}+-{statistics.stdev(vals) if len(vals) > 1 else 0:.2f}"
        wall = max(r["wall_time_s"] for r in recs)
        div = f"  ({len(recs) - len(ok)} diverged)" if len(ok) < len(recs) else ""
        click.echo(f"{ds:<9}{label:<22}{len(recs):>6}{ms('train_error'):>16}{ms('test_error'):>16}{wall:>9.1f}{div}")


@main.command()
@click.option("--results-dir", type=click.Path(file_okay=False), default=str(DEFAULT_RESULTS_DIR), show_default=True,
              help="Folder holding runs/ and checkpoints/; results.md is written here.")
@click.option("--paper-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for tables/ and figures/ (default: paper/ next to results/ in the repository).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP + " Only for the misclassified-digits figure; never downloads.")
@click.option("--ladder-dir", type=click.Path(file_okay=False), default=str(DEFAULT_LADDER_DIR), show_default=True,
              help="Ladder whose rung order orders the rows.")
@click.option("--strict", is_flag=True, help="Stop (exit 1) at the first damaged or foreign file under runs/ instead of skipping it.")
@click.option("--no-figures", is_flag=True, help="Write results.md and the tables only (fast).")
def report(results_dir, paper_dir, data_dir, ladder_dir, strict, no_figures) -> None:
    """Tables (results.md, paper/tables/*.csv|tex) and figures (paper/figures/*.png) from the run records."""
    from repro.report.build import DEFAULT_PAPER_DIR, ReportError, write_report

    try:
        written = write_report(Path(results_dir), Path(paper_dir) if paper_dir else DEFAULT_PAPER_DIR,
                               data_dir=data_dir, ladder_dir=Path(ladder_dir), strict=strict,
                               make_figures=not no_figures, warn=_log)
    except ReportError as e:
        _fail(e)
    for path in written:
        click.echo(f"wrote {path}")


@main.command()
@click.option("--rung", required=True, help="Rung (ladder or extra) whose config is swept.")
@click.option("--ladder-dir", type=click.Path(file_okay=False, exists=True), default=str(DEFAULT_LADDER_DIR), show_default=True)
@click.option("--lrs", default="1e-4,3e-4,1e-3,3e-3,1e-2", show_default=True, help="Learning rates (a log grid).")
@click.option("--seeds", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--passes", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--dataset", type=click.Choice(DATASETS), default="usps", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
@click.option("--out-dir", type=click.Path(file_okay=False), default=str(DEFAULT_RESULTS_DIR / "sweeps"), show_default=True)
def sweep(rung, ladder_dir, lrs, seeds, passes, dataset, device, data_dir, out_dir) -> None:
    """Sweep the learning rate of one rung's config, judged on training-set error (never the test set)."""
    from repro.study.sweep import lr_sweep, write_sweep

    try:
        ladder, extras = load_rungs(Path(ladder_dir)), extra_rungs(Path(ladder_dir))
        (planned,) = plan(ladder, "cumulative", [rung], extras)
        grid = [float(v) for v in lrs.split(",") if v.strip()]
    except ConfigError as e:
        _fail(e)
    except ValueError:
        raise click.BadParameter(f"{lrs!r} is not a comma-separated list of numbers", param_hint="--lrs")
    dev = _device(device)
    ds = _load(dataset, data_dir)
    points = lr_sweep(planned.config, ds, grid, list(range(seeds)), passes, dev, log=_log)
    for path in write_sweep(Path(out_dir) / f"{dataset}-{planned.label}-lr", planned.label, planned.config, ds,
                            points, passes, dev):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--dataset", type=click.Choice(DATASETS), default="usps", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
@click.option("--populations", default="1,16,256,4096", show_default=True, help="Population sizes to measure.")
@click.option("--estimate", is_flag=True, help="Project the ablate --all time from measured step times instead of running it.")
@click.option("--engine", type=click.Choice(["auto", "population", "fused"]), default="auto", show_default=True,
              help="Engine to measure; auto: fused on a GPU, population on CPU (where fused only runs interpreted). "
                   "Figures go to <out-dir>/<device>.json, or <device>-<engine>.json for the other engine.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=str(DEFAULT_RESULTS_DIR / "bench"), show_default=True)
def bench(dataset, device, data_dir, populations, estimate, engine, out_dir) -> None:
    """Speed of the engine as ratios against the plain reference loop, measured in the same run."""
    import tempfile

    from repro.study.bench import default_engine, run_bench, write_bench

    dev = _device(device)
    if engine == "auto":
        engine = default_engine(dev)
    if engine == "fused" and dev.type == "cpu":
        _fail(click.UsageError("--engine fused on cpu runs in Triton's interpreter, which checks the kernel "
                               "but says nothing about speed; bench it on a GPU"))
    ds = _load(dataset, data_dir)
    sizes = [int(p) for p in populations.split(",") if p.strip()]

    def measure_ablate() -> float:  # the real command, into a throw-away results folder
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            _run_all(plan(load_rungs()), list(DATASETS), 16, device, data_dir, tmp, False, engine, "cumulative")
            return time.perf_counter() - t0

    try:
        result = run_bench(ds, dev, sizes, estimate=estimate, ablate_measure=None if estimate else measure_ablate,
                           log=click.echo, engine=engine)
    except FusedEngineError as e:
        _fail(e)
    for path in write_bench(result, dev, Path(out_dir)):
        click.echo(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
