"""`repro bench --cluster ADDRESS`: the time of an ablate job through a Dask cluster against the default
runner's (configurations side by side in one process), both measured in the same invocation, alternating
(default, cluster, default, cluster) from an empty folder each time; the best of each way is compared, and the
records of the two ways are checked equal (all but wall time and creation time)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from repro.data import DATASETS
from repro.jobs.job import JobRequest, run_job
from repro.jobs.ladder import load_rungs, plan
from repro.jobs.record import read_records

PROVENANCE = ("wall_time_s", "created")  # what may differ between two runs of the same records


def compare_with_cluster(address: str, rungs: list[str] | None, data_dir, device: torch.device, seeds: int,
                         rounds: int = 2, log: Callable[[str], None] = print) -> dict:
    """Seconds of `ablate --rungs RUNGS --seeds N` on both datasets (every rung without `rungs`: ablate --all)
    by the default runner and through `address`, `rounds` times each, alternating."""
    planned = plan(load_rungs(), "cumulative", rungs or None)
    times: dict[str, list[float]] = {"default": [], "cluster": []}
    with tempfile.TemporaryDirectory(prefix="repro-bench-cluster-") as tmp:
        for r in range(rounds):
            for way, where in (("default", None), ("cluster", address)):
                request = JobRequest(planned, list(DATASETS), list(range(seeds)), Path(tmp) / f"{way}-{r}", device)
                t0 = time.perf_counter()
                run_job(request, log=lambda msg: None, progress=False, cluster=where, data_dir=data_dir)
                times[way].append(time.perf_counter() - t0)
                log(f"ablate ({len(planned)} rungs x {len(DATASETS)} datasets x {seeds} seeds), {way} "
                    f"{'runner' if where is None else f'--cluster {where}'}, round {r + 1}: {times[way][-1]:,.1f} s")
        equal = same_records(Path(tmp) / "default-0", Path(tmp) / "cluster-0")
    best = {way: min(t) for way, t in times.items()}
    log(f"--cluster {address}: {best['cluster']:,.1f} s against the default runner's {best['default']:,.1f} s "
        f"(x{best['cluster'] / best['default']:.2f}, best of {rounds} each); records equal: {equal}")
    return {"cluster": address, "rungs": [p.label for p in planned], "datasets": list(DATASETS), "seeds": seeds,
            "default_s": times["default"], "cluster_s": times["cluster"],
            "ratio": best["cluster"] / best["default"], "records_equal": equal}


def same_records(a: Path, b: Path) -> bool:
    """Whether two results folders hold the same records (the same runs, every field but PROVENANCE equal) and
    nothing else under runs/."""
    def records(folder: Path) -> tuple[dict, list]:
        scan = read_records(folder)
        return ({r.key.relative_record_path: {k: v for k, v in r.to_json().items() if k not in PROVENANCE}
                 for r in scan.records}, scan.damaged)

    (mine, damaged), (theirs, their_damaged) = records(a), records(b)
    return bool(mine) and mine == theirs and not damaged and not their_damaged
