"""`repro bench`: how fast each engine trains, as ratios against the plain reference loop measured in the same
run on the same device.

Figures: reference-loop steps/s (1 member); for each engine, member-steps/s (members x steps / s) for
populations of 1, 16 and 224 members (224 = every configuration of `ablate --all` at 16 seeds: 7 rungs x 2
datasets x 16) and the time of one 23-pass baseline run (1 member, evaluation after every pass); and the time
of `ablate --all --seeds 16` on both datasets with the fastest engine, measured end to end by running the
real command into a throw-away folder, or with `estimate=True` projected from measured rates (and labelled
as such).

The reference loop is measured before the first engine and after each; the ratios are against the fastest of
these measurements (on a shared machine a slowed one would inflate them). Every engine is timed the same way:
a warm-up pass over a few images (which also loads or compiles a kernel), then one pass over the first n
training images, n chosen to take about TARGET_SECONDS. Where an engine's steps cost less from some step of a
run on (the native engine's AdamW), a rung's rate weighs the two kinds of step, each timed, by their number in
the run. The fused engine's timed pass makes its own draws and no others (a real run makes the next pass's
while the GPU trains), and its kernel time is measured by CUDA events beside the wall time, so the two show
the host's share.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch

from repro.atomic_files import atomic_write_bytes, atomic_write_json
from repro.config import Config
from repro.data import Dataset
from repro.engines import registry
from repro.engines.reference import train_reference
from repro.hardware import cpu_clock_ghz, cpu_has, device_slug
from repro.net.model import init_params, layer_shapes, run_generator
from repro.jobs.ladder import DEFAULT_LADDER_DIR, extra_rungs, load_rungs, plan
from repro.jobs.runner import side_by_side_count
from repro.jobs.store import device_description, environment

POPULATIONS = (1, 16, 224)
TARGET_SECONDS = 2.0  # time spent measuring each population, after warm-up
SEEDS = 16


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


def fused_pass_seconds(cfg: Config, ds: Dataset, members: int, n: int, device: torch.device) -> tuple[float, float]:
    """(wall, kernel) seconds of one fused pass over the first n images: the pass's own draws, tables and
    copies in the wall time, and no draws for a next pass (FusedGroup draws ahead on a GPU by default); the
    kernel's time by CUDA events (on CPU, the interpreted launch's)."""
    from repro.engines.fused.population import FusedGroup, FusedPopulation

    pop = FusedPopulation(cfg, list(range(members)), ds.x_train[:n], ds.y_train[:n], device=device)
    group = FusedGroup([pop], draw_ahead=False, time_kernel=True)
    _sync(device)
    t0 = time.perf_counter()
    group.train_pass([0])
    _sync(device)
    return time.perf_counter() - t0, group.kernel_seconds


def engine_rates(engine: str, cfg: Config, ds: Dataset, members: int, device: torch.device,
                 seconds: float = TARGET_SECONDS, threads: int | None = None,
                 after_steps: int = 0) -> dict[str, float]:
    """Member-steps per second of one population of `engine` training `cfg` (timed after a warm-up pass):
    {"steps_per_s": wall-clock rate}, and for the fused engine "kernel_steps_per_s" (the kernel alone).
    `threads`: the native population's CPU threads (default: torch's). `after_steps`: the timed pass's steps
    are counted as if that many had come before (for an engine whose steps cost less from a given step on:
    `settled_from_step`); the weights are fresh either way, which does not change the cost of a step."""
    chosen = registry.get(engine)
    cls = chosen.population_class(cfg)

    def timed_pass(n: int) -> tuple[float, float | None]:
        if chosen.grouped:
            return fused_pass_seconds(cfg, ds, members, n, device)
        pop = cls(cfg, list(range(members)), ds.x_train[:n], ds.y_train[:n], device=device,
                  **chosen.thread_options(threads))
        pop.step_count = after_steps
        _sync(device)
        t0 = time.perf_counter()
        pop.train_pass(0)
        _sync(device)
        return time.perf_counter() - t0, None

    warm_n = 32
    first = timed_pass(warm_n)[0]  # loads or compiles the kernel
    per_step = timed_pass(warm_n)[0] / warm_n
    n = max(warm_n, min(len(ds.y_train), int(seconds / max(per_step, 1e-9))))
    wall, kernel = timed_pass(n)
    # compile_s: the first pass's time beyond its steps at the settled rate (the generic engine's compilation,
    # or a load from the compile cache; about 0 for the other engines), apart from the rate
    rates = {"steps_per_s": members * n / wall, "compile_s": max(0.0, first - warm_n * wall / n)}
    if kernel is not None:
        rates["kernel_steps_per_s"] = members * n / kernel
    return rates


def side_by_side_rate(engine: str, cfg: Config, ds: Dataset, members: int, device: torch.device, workers: int,
                      n: int = 256) -> float:
    """Member-steps per second of `workers` populations trained at once, one per thread with torch on one thread,
    as ablate trains configurations side by side (runner.train_configurations_on_threads); after a warm-up pass each."""
    cls = registry.get(engine).population_class(cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pops = [cls(cfg, list(range(members)), ds.x_train[:n], ds.y_train[:n], device=device,
                    **registry.get(engine).thread_options(1)) for _ in range(workers)]
        for pop in pops:
            pop.train_pass(0)  # loads or compiles the kernel
        with ThreadPoolExecutor(max_workers=workers) as pool:
            t0 = time.perf_counter()
            list(pool.map(lambda pop: pop.train_pass(1), pops))
            return workers * members * n / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)


def engine_rate(engine: str, cfg: Config, ds: Dataset, members: int, device: torch.device,
                seconds: float = TARGET_SECONDS, threads: int | None = None, after_steps: int = 0) -> float:
    """Member-steps per second (wall clock) of one population of `engine` training `cfg`."""
    return engine_rates(engine, cfg, ds, members, device, seconds, threads, after_steps)["steps_per_s"]


def settled_from_step(engine: str, cfg: Config, ds: Dataset, device: torch.device) -> int | None:
    """The count of the step from which `engine`'s steps of `cfg` cost less for good (the native engine's
    AdamW: see NativePopulation.settled_from_step), or None where they all cost the same."""
    if registry.get(engine).grouped:
        return None
    pop = registry.get(engine).population_class(cfg)(cfg, [0], ds.x_train[:1], ds.y_train[:1], device=device)
    return getattr(pop, "settled_from_step", None)


def run_rate(engine: str, cfg: Config, ds: Dataset, members: int, device: torch.device, seconds: float,
             threads: int | None) -> dict:
    """Member-steps per second over a whole run of `cfg` ({"steps_per_s": ...}): one timed pass, or, where the
    engine's steps cost less from some step on, the steps before it and those after timed apart and weighed
    by their number in the run ("first_steps_per_s", "settled_steps_per_s", "settled_from_step" added)."""
    first = engine_rate(engine, cfg, ds, members, device, seconds, threads)
    settled = settled_from_step(engine, cfg, ds, device)
    steps = cfg.passes * len(ds.y_train)  # per member
    if settled is None or settled > steps:
        return {"steps_per_s": first}
    before = settled - 1
    later = engine_rate(engine, cfg, ds, members, device, seconds, threads, after_steps=before)
    return {"steps_per_s": steps / (before / first + (steps - before) / later), "first_steps_per_s": first,
            "settled_steps_per_s": later, "settled_from_step": settled}


def single_run_seconds(engine: str, ds: Dataset, device: torch.device) -> float:
    """Measured wall time of one 23-pass baseline run (one member, evaluation of both splits after every pass)."""
    cfg = Config()
    cls = registry.get(engine).population_class(cfg)
    cls(cfg, [0], ds.x_train[:16], ds.y_train[:16], device=device).train_pass(0)  # load/compile: not part of a run
    _sync(device)
    t0 = time.perf_counter()
    pop = cls(cfg, [0], ds.x_train, ds.y_train, device=device)
    for p in range(cfg.passes):
        pop.train_pass(p)
        pop.evaluate(ds.x_train, ds.y_train)
        pop.evaluate(ds.x_test, ds.y_test)
    _sync(device)
    return time.perf_counter() - t0


def eval_seconds(engine: str, cfg: Config, ds: Dataset, members: int, device: torch.device,
                 threads: int | None = None) -> float:
    """Time of one after-pass evaluation (train and test split) of a population."""
    chosen = registry.get(engine)
    pop = chosen.population_class(cfg)(cfg, list(range(members)), ds.x_train[:10], ds.y_train[:10], device=device,
                                       **chosen.thread_options(threads))
    pop.evaluate(ds.x_test[:100], ds.y_test[:100])
    _sync(device)
    t0 = time.perf_counter()
    pop.evaluate(ds.x_train, ds.y_train)
    pop.evaluate(ds.x_test, ds.y_test)
    _sync(device)
    return time.perf_counter() - t0


SPEED_PROBE_MEMBERS = 16
SPEED_PROBE_SECONDS = 1.5


def baseline_rate_here(engine: str, device: torch.device, seconds: float = SPEED_PROBE_SECONDS) -> float:
    """Member-steps per second of the baseline at 16 members on this machine, trained as a job trains it: where
    ablate trains configurations side by side (one population per thread), on one thread, times the threads
    (as rung_figures measures each rung, so it compares with the bench file's baseline: plan.bench_baseline_rate);
    on random digits (an engine's speed does not depend on the pixels). A few seconds that scale bench figures
    made on another CPU."""
    side = side_by_side_count([engine] * 2, device)
    threads = 1 if side > 1 else None
    return side * engine_rate(engine, Config(), random_digits(), SPEED_PROBE_MEMBERS, device, seconds, threads)


def random_digits(n_train: int = 2048, n_test: int = 512) -> SimpleNamespace:
    """Random images and labels in a dataset's shape, for timing (an engine's speed does not depend on the pixels)."""
    gen = torch.Generator().manual_seed(0)
    return SimpleNamespace(x_train=torch.rand(n_train, 16, 16, generator=gen) * 2 - 1,
                           y_train=torch.randint(0, 10, (n_train,), generator=gen),
                           x_test=torch.rand(n_test, 16, 16, generator=gen) * 2 - 1,
                           y_test=torch.randint(0, 10, (n_test,), generator=gen))


CONFIG_SECONDS = 0.3  # each configuration's timed pass for a job's estimate (after two short warm-up passes)


def config_cost(engine: str, cfg: Config, members: int, n_train: int, device: torch.device, threads: int | None,
                seconds: float = CONFIG_SECONDS) -> dict[str, float]:
    """What one configuration costs on this machine, as a job trains it (`threads`: its population's; 1 where
    configurations train side by side): {"steps_per_s": member-steps/s over a whole run on `n_train` images
    (run_rate: AdamW's first steps timed apart), "eval_s_per_image": one after-pass evaluation of every member,
    per image}."""
    digits = random_digits(n_train)
    rate = run_rate(engine, cfg, digits, members, device, seconds, threads)["steps_per_s"]
    images = len(digits.y_train) + len(digits.y_test)
    evaluation = eval_seconds(engine, cfg, digits, members, device, threads)
    return {"steps_per_s": rate, "eval_s_per_image": evaluation / images}


def ablate_all_presentations(n_train: int, seeds: int = SEEDS) -> int:
    """Presentations of `ablate --all --seeds N`: every rung on both datasets (of equal training-set size)."""
    return 2 * sum(p.config.passes for p in plan(load_rungs())) * n_train * seeds


def rung_figures(engine: str, ds: Dataset, device: torch.device, seeds: int, log: Callable[[str], None]) -> dict:
    """Per rung of the ladder, a population of `seeds` members: the engine that trains it, its training rate
    over a whole run (run_rate) and the time of one after-pass evaluation (both splits); and the projected time
    of the rung on one dataset.
    The rungs differ by one mechanism each (activation, optimizer, schedule, dropout, shifts, passes), so these
    figures are what each costs. Where ablate trains configurations side by side (one per CPU thread, see
    runner.side_by_side_count), each population is measured on one thread and its figures scaled by the
    number of threads (labelled so): that is how ablate runs them."""
    planned = plan(load_rungs())
    chosen = [registry.choose(engine, p.config, device)[0] for p in planned]
    side = side_by_side_count([c.name for c in chosen] * 2, device)  # the ladder on both datasets
    threads = 1 if side > 1 else None
    if side > 1:
        log(f"  (one population per thread, as ablate trains them: each measured on 1 thread, x {side} threads)")
    figures = {}
    for p, eng in zip(planned, chosen):
        rates = {k: side * v if k.endswith("steps_per_s") else v
                 for k, v in run_rate(eng.name, p.config, ds, seeds, device, seconds=1.0, threads=threads).items()}
        rate = rates["steps_per_s"]
        ev = eval_seconds(eng.name, p.config, ds, seeds, device, threads=threads) / side
        per_dataset = p.config.passes * (seeds * len(ds.y_train) / rate + ev)
        parts = (f" (first {rates['settled_from_step'] - 1:,} steps {rates['first_steps_per_s']:,.0f}/s, the rest "
                 f"{rates['settled_steps_per_s']:,.0f}/s)" if "settled_from_step" in rates else "")
        log(f"  {p.label:<10} {eng.name}: {rate:>10,.0f} steps/s{parts}, eval {ev:.2f} s/pass -> "
            f"{per_dataset:,.0f} s per dataset")
        figures[p.label] = {"engine": eng.name, **rates, "eval_s_per_pass": ev,
                            "seconds_per_dataset": per_dataset, "side_by_side": side}
    return figures


def _layer_macs(cfg: Config) -> list[int]:
    """Multiply-adds of each layer's forward pass (one pattern, one member), H1 first."""
    return [layer.macs for layer in layer_shapes(init_params(cfg, run_generator(0)))]


def forward_macs(cfg: Config = Config()) -> int:
    """Multiply-adds of one forward pass of the 1989 net (one pattern, one member): what evaluation computes."""
    return sum(_layer_macs(cfg))


def macs_per_member_step(cfg: Config = Config()) -> int:
    """Multiply-adds of one training step of the 1989 net: the forward pass, the weight gradients (as many),
    and the deltas of every layer but H1 (no delta is needed below it)."""
    layers = _layer_macs(cfg)
    return 2 * sum(layers) + sum(layers[1:])


FMA_UNITS_PER_CORE = 2  # Zen 3 (AMD EPYC) and AVX-512 Xeon cores: two vector FMA pipes each


def multiply_add_peak(threads: int) -> dict | None:
    """This CPU's multiply-add peak in member-steps per second: lanes x FMA units x clock x cores, over the
    multiply-adds of one step; None where the clock is not known."""
    clock = cpu_clock_ghz()
    if clock is None:
        return None
    lanes = 16 if cpu_has("avx512f") else 8
    macs_per_s = lanes * FMA_UNITS_PER_CORE * clock * 1e9 * threads
    per_step = macs_per_member_step()
    return {"lanes": lanes, "fma_units_per_core": FMA_UNITS_PER_CORE, "clock_ghz": clock, "cores": threads,
            "macs_per_member_step": per_step, "member_steps_per_s": macs_per_s / per_step,
            "how": "lanes: the widest vector the CPU has (16 floats with AVX-512, else 8); FMA units per core: 2 "
                   "(Zen 3 and AVX-512 Xeon cores); clock: /proc/cpuinfo's cpu MHz; cores: the threads used"}


def run_bench(ds: Dataset, device: torch.device, engines: list[str], populations=POPULATIONS,
              ablate_engine: str = "auto", ablate_measure: Callable[[], float] | None = None,
              log: Callable[[str], None] = print) -> dict:
    """Measure the reference loop and every engine in `engines` in one run; then ablate --all (measured by
    `ablate_measure` when given, else estimated)."""
    log(f"device: {device_description(device)}; engines: {', '.join(engines)}")
    references: list[float] = []

    def measure_reference() -> None:
        references.append(reference_rate(ds, device))
        log(f"reference loop (1 member, autograd + torch.optim, on {device.type}): {references[-1]:,.0f} steps/s")

    measure_reference()
    measured: dict[str, dict] = {}
    for engine in engines:
        rows = []
        for members in populations:
            try:
                rates = engine_rates(engine, Config(), ds, members, device)
            except (RuntimeError, MemoryError) as e:  # out of memory: stop growing the population
                log(f"{engine}, {members} members: skipped ({str(e).splitlines()[0]})")
                break
            rate = rates["steps_per_s"]
            # the generic engines also side by side, one population per thread: how ablate could train them
            # (the registry's `side_by_side` trait says which way it does, and why)
            side = torch.get_num_threads()
            if members == SEEDS and side > 1 and device.type == "cpu" and registry.get(engine).runs_code:
                rates["side_by_side_steps_per_s"] = side_by_side_rate(engine, Config(), ds, members, device, side)
                log(f"{engine:<10} {members:>5} members, {side} populations side by side (one per thread, as "
                    f"ablate trains native ones): {rates['side_by_side_steps_per_s']:>12,.0f} member-steps/s")
            rows.append({"members": members, **rates})
            kernel = rates.get("kernel_steps_per_s")
            note = ("" if kernel is None else
                    f" (kernel alone {kernel:,.0f}/s: the kernel is {100 * rate / kernel:.0f}% of the wall time)")
            log(f"{engine:<10} {members:>5} members: {rate:>12,.0f} member-steps/s{note}"
                f" (first pass {rates['compile_s']:.1f} s longer: loading or compiling)")
        single = single_run_seconds(engine, ds, device)
        log(f"{engine:<10} one 23-pass baseline run (1 member, evaluation every pass): {single:.1f} s (measured)")
        measured[engine] = {"populations": rows, "single_run_s": single}
        measure_reference()
    # On a shared machine any one measurement can be slowed: the ratios are against the fastest of the
    # reference loop's measurements, one before and one after each engine, so a slowed one never inflates them.
    ref = max(references)
    log(f"reference loop: the fastest of {len(references)} measurements, {ref:,.0f} steps/s; against it:")
    for engine in engines:
        for row in measured[engine]["populations"]:
            row["ratio"] = row["steps_per_s"] / ref
            log(f"{engine:<10} {row['members']:>5} members: {row['ratio']:8.1f} x reference")
    for engine in engines[1:]:
        for row, base in zip(measured[engine]["populations"], measured[engines[0]]["populations"]):
            row[f"x_{engines[0]}"] = row["steps_per_s"] / base["steps_per_s"]
    log(f"each rung, {SEEDS} members (training rate and evaluation time per pass):")
    rungs = rung_figures(ablate_engine, ds, device, SEEDS, log)
    peak = multiply_add_peak(torch.get_num_threads()) if device.type == "cpu" else None
    if peak:
        log(f"multiply-add peak: {peak['member_steps_per_s']:,.0f} member-steps/s ({peak['lanes']} lanes x "
            f"{peak['fma_units_per_core']} FMA units x {peak['clock_ghz']:.2f} GHz x {peak['cores']} cores / "
            f"{peak['macs_per_member_step']:,} multiply-adds per step)")
        peak_macs_per_s = peak["member_steps_per_s"] * peak["macs_per_member_step"]
        eval_macs = SEEDS * (len(ds.y_train) + len(ds.y_test)) * forward_macs()  # one evaluation, both splits
        for label, fig in rungs.items():
            fig["of_peak"] = fig["steps_per_s"] / peak["member_steps_per_s"]
            fig["eval_of_peak"] = eval_macs / fig["eval_s_per_pass"] / peak_macs_per_s
    if ablate_measure is None:
        ablate_s = 2 * sum(fig["seconds_per_dataset"] for fig in rungs.values())
    else:
        log(f"ablate --all --seeds {SEEDS}: running it (engine {ablate_engine}) into a throw-away folder ...")
        ablate_s = ablate_measure()
    estimated = ablate_measure is None
    log(f"ablate --all --seeds {SEEDS} on both datasets: {ablate_s:,.0f} s ({'estimated' if estimated else 'measured'})")
    return {
        **environment(device),
        "threads": torch.get_num_threads(),
        "reference_steps_per_s": ref,
        "reference_measurements": references,
        "engines": measured,
        "rungs": rungs,
        "multiply_add_peak": peak,
        "ablate_all": {"engine": ablate_engine, "seconds": ablate_s, "estimated": estimated,
                       "presentations": ablate_all_presentations(len(ds.y_train))},
    }


def usable_engines(device: torch.device) -> list[str]:
    """Engines worth measuring on `device`: every lockstep engine that runs there, but those that run there
    only to check their kernel (fused on a CPU, interpreted: that says nothing about speed)."""
    return [n for n, e in registry.ENGINES.items()
            if e.lockstep and not e.available(device) and not e.only_checks_on(device)]


def write_bench(result: dict, device: torch.device, out_dir: Path) -> list[Path]:
    """<out_dir>/<device>.json and .png (a throughput plot of every engine measured)."""
    slug = device_slug(device)
    json_path = Path(out_dir) / f"{slug}.json"
    atomic_write_json(json_path, result)
    png_path = Path(out_dir) / f"{slug}.png"
    atomic_write_bytes(png_path, throughput_plot(result))
    return [json_path, png_path]


def throughput_plot(result: dict) -> bytes:
    from matplotlib.figure import Figure

    from repro.png import figure_png

    fig = Figure(figsize=(6, 4), dpi=120)
    ax = fig.subplots()
    for engine, e in result["engines"].items():
        members = [r["members"] for r in e["populations"]]
        rates = [r["steps_per_s"] for r in e["populations"]]
        ax.loglog(members, rates, "o-", label=f"{engine} engine")
        for m, r, row in zip(members, rates, e["populations"]):
            ax.annotate(f"{row['ratio']:.0f}x", (m, r), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.axhline(result["reference_steps_per_s"], color="gray", ls="--", label="reference loop (1 member)")
    ax.set_xlabel("members trained together")
    ax.set_ylabel("presentations per second (all members)")
    ab = result.get("ablate_all")
    sub = (f"; ablate --all --seeds 16: {ab['seconds']:,.0f} s ({'estimated' if ab['estimated'] else 'measured'})"
           if ab else "")
    ax.set_title(f"Training throughput on {result['device']}{sub}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


# The job `repro bench --estimate-check` times against its start-of-job estimate: the README's faithfulness
# ladder (usps, 16 seeds), a minute or two on a 2-core CPU.
ESTIMATE_CHECK_LADDER = "faithful"
ESTIMATE_CHECK_RUNGS = ("baseline", "scaled-tanh", "literal-init", "paper", "target-1.2", "fc40")
ESTIMATE_CHECK_DATASET = "usps"


def estimate_check_plan() -> list:
    folder = DEFAULT_LADDER_DIR / ESTIMATE_CHECK_LADDER
    return plan(load_rungs(folder), "cumulative", list(ESTIMATE_CHECK_RUNGS), extra_rungs(folder))


def estimate_check(device: torch.device, job, run_job: Callable[[], float], log: Callable[[str], None] = print) -> dict:
    """The estimate a job (`job`: its repro.jobs.job.JobPlan) announces at its start against its time measured
    end to end (`run_job`), and beside it the estimate from the bench file alone, scaled by this CPU's speed on
    the baseline (what engines whose configurations are not timed here announce). Ratios above 1: the
    estimate was long."""
    from repro.jobs.plan import bench_throughput, measures_here  # plan imports this module

    engine = registry.choose("auto", Config(), device)[0].name
    presentations = job.presentations_left
    ways = {}
    if measures_here(engine, device):
        ways["announced"] = job.measured_estimate(engine)
    if (t := bench_throughput(device, engine, as_another_cpu=True)) is not None:
        ways["bench file, scaled"] = (presentations / t.presentations_per_s, t.source)
    log(f"job: {ESTIMATE_CHECK_LADDER} ladder ({', '.join(ESTIMATE_CHECK_RUNGS)}), {ESTIMATE_CHECK_DATASET}, "
        f"{SEEDS} seeds: {presentations:,} presentations; running it ...")
    measured = run_job()
    out = {**environment(device), "job": {"ladder": ESTIMATE_CHECK_LADDER, "rungs": list(ESTIMATE_CHECK_RUNGS),
                                          "dataset": ESTIMATE_CHECK_DATASET, "seeds": SEEDS,
                                          "presentations": presentations},
           "measured_s": measured, "estimates": {}}
    log(f"measured end to end: {measured:,.1f} s")
    for way, (seconds, source) in ways.items():
        out["estimates"][way] = {"seconds": seconds, "ratio": seconds / measured, "source": source}
        log(f"{way}: {seconds:,.1f} s, {seconds / measured:.2f} x the measured time ({source})")
    return out
