"""The `repro` command line: data, info, train, ablate (and report, bench)."""

from __future__ import annotations

import dataclasses
import functools
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import click
import torch

from repro import resources
from repro.atomic_files import atomic_write_json
from repro.config import Config, ConfigError, apply_patch, field_names
from repro.data import DATASETS, MNIST_ORDERS, load_dataset, summary
from repro.engines import registry
from repro.engines.registry import NAMES as ENGINE_NAMES
from repro.errors import ReproError
from repro.hardware import device_slug
from repro.net.model import init_params, layer_shapes
from repro.predict import POLARITIES
from repro.jobs.bench import SEEDS, run_bench, usable_engines, write_bench
from repro.jobs.bench import ESTIMATE_CHECK_DATASET, estimate_check, estimate_check_plan
from repro.jobs.ladder import (DEFAULT_LADDER_DIR, MODES, PlannedConfig, Rung, extra_rungs, guess_rungs, load_rungs,
                                 plan)
from repro.jobs.job import (JobInterrupted, JobRequest, facts_of, facts_without_data, plan_job, plan_lines, run_job,
                             results_table_lines, where_lines)
from repro.jobs.runner import resolve_device
from repro.jobs.sweep import lr_sweep, write_sweep
from repro.jobs.workspace import STUDY_DIR, check_readable_results, check_writable, is_study, output_dir

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
    "--cluster", envvar="REPRO_CLUSTER", default=None, metavar="ADDRESS|local[:N]",
    help="Train on a Dask cluster (the [cluster] extra): a running scheduler's address (tcp://host:8786), or "
         "local[:N] for N one-thread worker processes started here (default: one per core). Default "
         "($REPRO_CLUSTER unset): this process, configurations side by side."))
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
def train(dataset, passes, sets, seeds, device, data_dir, results_dir, study, force, engine, cluster) -> None:
    """Train the 1989 network with the 1989 procedure (the 'baseline' rung) for several seeds."""
    cfg = _config_with(Config(), sets)
    if passes is not None:
        cfg = cfg.replace(passes=passes)
    baseline = Rung(0, "baseline", "The 1989 procedure", "", "LeCun et al. (1989)")
    label = "baseline" if cfg == Config() else f"baseline+{cfg.digest()}"
    planned = PlannedConfig(label, baseline, cfg)
    request = _job([planned], [dataset], seeds, device, output_dir(results_dir, study), force, engine)
    _run_job(request, data_dir, cluster)


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
           study, force, engine, cluster):
    """Run the ablation ladder: each rung over many seeds, on one or both datasets."""
    ladder = load_rungs(Path(ladder_dir))
    extras = extra_rungs(Path(ladder_dir))
    guesses = guess_rungs(Path(ladder_dir)) if mode == "guesses" else None
    planned = plan(ladder, mode, rungs or None, extras, guesses=guesses, on=on_rung)
    if passes is not None:
        planned = [dataclasses.replace(p, config=p.config.replace(passes=passes)) for p in planned]
    datasets = list(datasets) or (list(DATASETS) if run_all else ["usps"])
    request = _job(planned, datasets, seeds, device, output_dir(results_dir, study), force, engine)
    if dry_run:
        for line in plan_lines(plan_job(request, facts_without_data(datasets))):
            click.echo(line)
        return
    _run_job(request, data_dir, cluster)


def _job(planned, datasets, seeds, device, results_dir, force, engine) -> JobRequest:
    return JobRequest(planned, datasets, seeds, Path(results_dir), _device(device), engine, force)


def _run_job(request: JobRequest, data_dir, cluster) -> None:
    """Train a job; at the end, a summary of its records and where they are (Ctrl-C: exit status 130)."""
    try:
        plan = run_job(request, data_dir=data_dir, log=_log, cluster=cluster)
    except JobInterrupted:
        sys.exit(130)
    for line in results_table_lines(plan.records()):
        click.echo(line)
    for line in where_lines(request.results_dir):
        _log(line)


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
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--dataset", type=click.Choice(DATASETS), default="usps", show_default=True,
              help="Prepare the images like this dataset's digits; its nets answer.")
@click.option("--rung", "rungs", multiple=True, help="Only this rung's net (repeatable); default: every rung's.")
@click.option("--polarity", type=click.Choice(POLARITIES), default="auto", show_default=True,
              help="Ink on paper: auto tells dark-on-light (a scan, a photo) from light-on-dark by the border.")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Whose seed-0 checkpoints answer (default: the committed study's).")
def predict(images, dataset, rungs, polarity, results_dir) -> None:
    """Read digit images of your own (PNG, JPEG) with each rung's seed-0 net."""
    from repro.predict import predict as run_predict

    folder = Path(results_dir) if results_dir else resources.study_dir()
    for path, _, answers in run_predict([Path(p) for p in images], dataset, folder, DEFAULT_LADDER_DIR, rungs,
                                        polarity):
        click.echo(f"{path} (prepared as {dataset} digits)")
        click.echo(f"  {'rung':<14}{'answer':>7}  outputs 0-9")
        for a in answers:
            said = "tie" if a.digit is None else str(a.digit)
            click.echo(f"  {a.label:<14}{said:>7}  " + " ".join(f"{v:+.3f}" for v in a.outputs))


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
@click.option("--cluster", default=None, metavar="ADDRESS|local[:N]",
              help="Also time ablate --seeds 16 through this Dask cluster against the default runner (alternating, "
                   "best of two each, from empty folders) and check that their records are equal.")
@click.option("--cluster-rungs", type=CommaList(), default=None,
              help="The rungs of the --cluster comparison (default: every rung, as ablate --all).")
@click.option("--estimate-check", is_flag=True,
              help="Only this: time the faithfulness ladder (usps, 16 seeds) end to end against the estimate ablate "
                   "announces for it, here and as scaled for another CPU (<folder>/bench/estimate-check-<device>.json).")
@results_dir_option("Figures go to <folder>/bench/<device>.json and .png.")
@study_option()
def bench(dataset, device, data_dir, populations, engines, estimate, keep_runs, cluster, cluster_rungs, estimate_check,
          results_dir, study) -> None:
    """Speed of every engine as ratios against the plain reference loop, measured in the same run."""
    out = check_writable(output_dir(results_dir, study) / "bench")
    dev = _device(device)
    if estimate_check:
        _bench_estimate_check(dev, data_dir, out)
        return
    names = engines or usable_engines(dev)
    measurable = [n for n in ENGINE_NAMES if registry.get(n).lockstep]
    for name in names:
        if name not in measurable:
            raise click.BadParameter(f"{name!r}; valid: {', '.join(measurable)}", param_hint="--engines")
        if registry.get(name).only_checks_on(dev):
            raise click.ClickException(f"--engines {name} on {dev.type} runs in {registry.get(name).checks_in}, "
                                       "which checks the kernel but says nothing about speed; bench it on a GPU")
        if why := registry.get(name).available(dev):
            raise click.ClickException(f"engine {name} cannot run here: {why}")
    ds = load_dataset(dataset, data_dir)

    if keep_runs and Path(keep_runs).exists() and any(Path(keep_runs).iterdir()):
        raise click.ClickException(f"--keep-runs {keep_runs}: the folder is not empty (a timed run must train "
                                   "everything)")

    def measure_ablate() -> float:  # the real job, from nothing, into a fresh results folder
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_job(JobRequest(plan(load_rungs()), list(DATASETS), list(range(SEEDS)), Path(keep_runs or tmp), dev),
                    data_dir=data_dir, log=_log)
            return time.perf_counter() - t0

    result = run_bench(ds, dev, names, populations, ablate_engine="auto",
                       ablate_measure=None if estimate else measure_ablate, log=click.echo)
    if cluster:
        from repro.jobs.bench_cluster import compare_with_cluster

        result["cluster_vs_default"] = compare_with_cluster(cluster, cluster_rungs, data_dir, dev, SEEDS, log=click.echo)
    for path in write_bench(result, dev, out):
        click.echo(f"wrote {path}")


def _bench_estimate_check(dev, data_dir, out: Path) -> None:
    planned = estimate_check_plan()
    ds = load_dataset(ESTIMATE_CHECK_DATASET, data_dir)

    def request(folder: Path) -> JobRequest:
        return JobRequest(planned, [ESTIMATE_CHECK_DATASET], list(range(SEEDS)), folder, dev)

    def timed_job() -> float:  # the real job, from nothing, into a throw-away folder
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_job(request(Path(tmp)), data_dir=data_dir, log=_log)
            return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:  # an empty folder: the whole job is to do
        job = plan_job(request(Path(tmp)), facts_of({ESTIMATE_CHECK_DATASET: ds}))
        result = estimate_check(dev, job, timed_job, log=click.echo)
    path = out / f"estimate-check-{device_slug(dev)}.json"
    atomic_write_json(path, result)
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
