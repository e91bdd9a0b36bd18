"""Scale-out: a job's units trained on a Dask cluster (the `[cluster]` extra), records written here.

`--cluster ADDRESS` (or $REPRO_CLUSTER) sends the job's units to a running Dask scheduler; `--cluster local[:N]`
starts N one-thread worker processes on this machine. A unit is a configuration's whole population of seeds
on one dataset (an entry of the job's plan: 16 seeds fill a 16-lane group, so they are not split). Workers
need the package and the data, not the results folder: a unit trains in a throw-away folder of its worker and
returns its records (and the seed-0 checkpoint) to this process, which writes them into the store, one writer
with atomic files and the job's per-run locks. So:

- a worker killed in the middle of a unit: the scheduler runs the unit again on another worker, from its
  first pass; its records are the same bits as a local run's (a member's numbers depend on neither its
  neighbours nor the threads);
- this process interrupted: units in flight are cancelled, every record received is kept, and the same
  command sends only what is not done;
- a scheduler that cannot be reached: an error naming the address, before anything is written;
- a worker running other code (a digest of the package's source) or holding other data (the prepared
  dataset's fingerprint): refused, and named.

Units of an engine that groups configurations in one launch (the fused engine, on a GPU) go to one worker as
one task that needs the worker resource `GPU` (`dask worker ADDRESS --resources GPU=1`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from repro.data import Dataset, load_dataset
from repro.engines import registry
from repro.errors import ReproError
from repro.jobs.ladder import PlannedConfig
from repro.jobs.run_key import ConfigKey
from repro.jobs.runner import (Progress, RunContext, claim_seeds, expected_cost, train_configuration,
                               train_configurations_in_one_launch, write_run)

PROGRESS_TOPIC = "repro-progress"
CONNECT_TIMEOUT_S = 10
GPU_RESOURCE = "GPU"
SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the package's folder: repro/


class ClusterError(ReproError, RuntimeError):
    """The cluster cannot be used: not installed, not reachable, or a worker that differs from this process."""


class UnitFailed(ReproError, RuntimeError):
    """A unit failed on a worker; the message names the worker and the unit."""


@functools.cache
def code_digest() -> str:
    """A digest of the package's source (every .py and .c file under repro/, by path and content): workers
    must run the same code as the client, installed from a wheel or a checkout alike."""
    h = hashlib.sha256()
    for path in sorted(p for p in SOURCE_ROOT.rglob("*") if p.suffix in (".py", ".c") and "__pycache__" not in p.parts):
        h.update(path.relative_to(SOURCE_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# --- on a worker ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """What a worker trains: one configuration's seeds on one dataset."""

    planned: PlannedConfig
    key: ConfigKey
    seeds: list[int]
    engine: str
    device: str
    code: str  # the client's code_digest()

    @property
    def what(self) -> str:
        return f"{self.key.dataset} | {self.planned.label} | {len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''}"


def _worker_address() -> str:
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not on a worker (called directly)
        return f"pid {os.getpid()}"


@functools.lru_cache(maxsize=4)
def _dataset(name: str) -> Dataset:
    """A dataset as a local run finds it ($REPRO_DATA_DIR, the cache, or a verified download), once per worker."""
    return load_dataset(name)


@dataclass
class _EventProgress:
    """A worker's progress: each finished pass goes to the client as an event (repro.jobs.cluster's topic)."""

    unit: Unit
    worker: str
    total_presentations: int = 0

    def pass_done(self, what: str, pass_index: int, passes: int, test_errors: torch.Tensor, presentations: int):
        from distributed import get_worker

        finite = test_errors[torch.isfinite(test_errors)]
        get_worker().log_event(PROGRESS_TOPIC, {
            "unit": self.unit.key.stem, "what": self.unit.what, "worker": self.worker, "pass": pass_index + 1,
            "passes": passes, "presentations": presentations,
            "test_error": float(finite.mean()) if len(finite) else None})


def _check_worker(units: list[Unit], worker: str) -> dict[str, Dataset]:
    """The units' datasets on this worker; a worker with other code or other data refuses, naming itself."""
    for unit in units:
        if unit.code != code_digest():
            raise ClusterError(f"worker {worker} runs other code (source digest {code_digest()}, the client's "
                               f"{unit.code}); refused unit {unit.what}")
    data = {}
    for unit in units:
        ds = data.setdefault(unit.key.dataset, _dataset(unit.key.dataset))
        if ds.fingerprint != unit.key.fingerprint:
            raise ClusterError(f"worker {worker} holds other data: {ds.name} has fingerprint {ds.fingerprint}, the "
                               f"client's {unit.key.fingerprint}; refused unit {unit.what}")
    return data


def train_units(units: list[Unit]) -> list[tuple]:
    """Train units on this worker (several only for a grouping engine, in one launch per pass) and return
    their finished runs as (record, checkpoint or None); nothing is written where the client can see it."""
    worker = _worker_address()
    try:
        data = _check_worker(units, worker)
        from distributed import get_worker

        torch.set_num_threads(max(1, get_worker().state.nthreads))
        finished: list[tuple] = []
        with tempfile.TemporaryDirectory(prefix="repro-unit-") as scratch:  # per-pass state of this try only
            first = units[0]
            ctx = RunContext(Path(scratch), torch.device(first.device), engine=first.engine,
                             progress=_EventProgress(first, worker), sink=lambda rec, ckpt: finished.append((rec, ckpt)),
                             chosen={u.key: registry.get(u.engine) for u in units})
            jobs = [(u.planned, data[u.key.dataset]) for u in units]
            if len(units) > 1:
                train_configurations_in_one_launch(jobs, first.seeds, ctx)
            else:
                train_configuration(first.planned, jobs[0][1], first.seeds, ctx)
        return finished
    except ReproError:
        raise
    except Exception as e:  # a worker's error, with where it happened
        raise UnitFailed(f"worker {worker}, unit {', '.join(u.what for u in units)}: {type(e).__name__}: {e}") from e


def _identity() -> str:
    return code_digest()


# --- on the client ----------------------------------------------------------------------------------------
def connect(address: str, log: Callable[[str], None]) -> Connection:
    """A client of the scheduler at `address`, or of a local cluster (`local[:N]`: N one-thread workers)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise ClusterError(f"--cluster needs Dask's distributed scheduler: pip install 'lecun1989[cluster]' ({e})")
    cluster = None
    if address == "local" or address.startswith("local:"):
        n = _local_workers(address)
        resources = {GPU_RESOURCE: 1} if torch.cuda.is_available() else None
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               resources=resources)
        log(f"--cluster {address}: a local Dask cluster of {n} one-thread worker processes")
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as e:
            raise ClusterError(f"the Dask scheduler at {address} cannot be reached ({type(e).__name__}: {e}); "
                               f"nothing was trained or written") from None
    return Connection(client, cluster, address, log)


def _local_workers(address: str) -> int:
    count = address.partition(":")[2]
    if not count:
        return os.cpu_count() or 1
    if not count.isdigit() or int(count) < 1:
        raise ClusterError(f"--cluster {address}: expected local or local:N with N a whole number >= 1")
    return int(count)


@dataclass
class Connection:
    client: object
    cluster: object | None
    address: str
    log: Callable[[str], None]
    units_done: int = field(default=0)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def check_workers(self) -> int:
        """The number of workers; a worker with other code is refused, named (before anything is sent)."""
        mine = code_digest()
        theirs = self.client.run(_identity)
        other = {w: d for w, d in theirs.items() if d != mine}
        if other:
            named = ", ".join(f"{w} (source digest {d})" for w, d in sorted(other.items()))
            raise ClusterError(f"workers running other code than this client (source digest {mine}): {named}; "
                               f"install the same version there, or stop them")
        if not theirs:
            self.log(f"the Dask scheduler at {self.address} has no workers yet; units wait for them")
        return len(theirs)

    def train(self, plan, loaded: dict[str, Dataset], ctx: RunContext) -> None:
        """Send the plan's units, write their records as they come back; runs another process holds are left
        to it, then waited for and trained if still missing."""
        workers = self.check_workers()
        self.log(f"--cluster {self.address}: {workers} worker{'s' if workers != 1 else ''} connected")
        entries = plan.units
        while entries:
            ctx.busy.clear()
            self._train(entries, loaded, ctx, plan.request.seeds)
            if not ctx.busy:
                return
            for planned, ds, s in ctx.busy:
                self.log(f"waiting for another process to finish {ds.name} | {planned.label} | seed {s} ...")
                ctx.locks.wait(ConfigKey.of(planned, ds).run(s))
            entries = [e for e in entries if any(p is e.planned for p, _, _ in ctx.busy)]

    def _units(self, entries, loaded, ctx, seeds) -> list[tuple[list[Unit], float, dict | None]]:
        """(units, priority, resources) per task: each entry alone, or the grouping engine's entries together."""
        code = code_digest()
        tasks, grouped = [], []
        for e in entries:
            mine = claim_seeds(e.planned, loaded[e.dataset], seeds, ctx)
            if not mine:
                continue
            unit = Unit(e.planned, e.key, mine, e.engine.name, str(ctx.device), code)
            cost = expected_cost(e.planned.config, len(loaded[e.dataset].y_train)) * len(mine)
            (grouped if e.engine.grouped else tasks).append(([unit], cost, None))
        if grouped:
            units = [u for us, _, _ in grouped for u in us]
            tasks.append((units, sum(c for _, c, _ in grouped), {GPU_RESOURCE: 1}))
        return tasks

    def _train(self, entries, loaded, ctx: RunContext, seeds) -> None:
        from distributed import as_completed

        tasks = self._units(entries, loaded, ctx, seeds)
        if not tasks:
            return
        self.client.subscribe_topic(PROGRESS_TOPIC, functools.partial(_on_pass, ctx.progress, self.client))
        futures = {}
        for units, cost, resources in tasks:
            name = "repro-" + "+".join(u.key.run(u.seeds[0]).stem for u in units)
            future = self.client.submit(train_units, units, key=f"{name}-{time.time_ns()}", pure=False,
                                        priority=int(cost // 1000), resources=resources, retries=0)
            futures[future] = units
        try:
            for future in as_completed(list(futures)):
                units = futures[future]
                for record, checkpoint in future.result():  # a unit's error is raised here, naming its worker
                    write_run(ctx.results_dir, record, checkpoint)
                for u in units:
                    for s in u.seeds:
                        ctx.locks.release(u.key.run(s))
                self.units_done += len(units)
                self.log(f"units done {self.units_done} of {sum(len(us) for us in futures.values())}: "
                         f"{', '.join(u.what for u in units)}; workers connected "
                         f"{len(self.client.scheduler_info().get('workers', {}))}")
        except BaseException:
            self.client.cancel(list(futures))
            raise
        finally:
            self.client.unsubscribe_topic(PROGRESS_TOPIC)


def _on_pass(progress: Progress | None, client, event) -> None:
    """A worker's finished pass, shown as a local run shows it (with the time left for the whole job)."""
    _, msg = event
    if progress is None:
        return
    errors = torch.tensor([msg["test_error"] if msg["test_error"] is not None else float("nan")])
    progress.pass_done(f"{msg['what']} on {msg['worker']}", msg["pass"] - 1, msg["passes"], errors,
                       msg["presentations"])

