"""The study on a Dask cluster (`--cluster`): a real scheduler and two one-thread workers, started here as
separate processes on 127.0.0.1 in a folder with no results in it. A small `ablate` through them writes the
records of a local run, bit for bit (native engine); a worker killed in the middle of a unit: the unit runs again
on the other worker and every record is written once, equal to the local run's; the client killed: the same
command resumes; an unreachable address and a worker running other code are refused with their messages."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("distributed", reason="the [cluster] extra (.ci/run installs it)")

from repro.cli import main  # noqa: E402
from repro.config import Config  # noqa: E402
from repro.jobs import cluster  # noqa: E402
from repro.jobs.ladder import PlannedConfig, Rung  # noqa: E402
from repro.jobs.run_key import ConfigKey  # noqa: E402

from tests.conftest import REPO, data_dir  # noqa: E402

JOB = ["ablate", "--rungs", "baseline,relu", "--dataset", "usps", "--seeds", "2", "--passes", "6", "--engine", "native"]
SAME = ("train_loss", "train_error", "test_loss", "test_error", "final", "diverged_at_pass", "collapsed", "engine",
        "config_digest", "dataset_fingerprint", "seed", "label")
REPRO = [sys.executable, "-m", "repro.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**more) -> dict:
    return {**os.environ, "REPRO_DATA_DIR": str(data_dir()), "PYTHONUNBUFFERED": "1", **more}


class Cluster:
    """A scheduler and workers, each its own process; workers run in `folder` (no results in it)."""

    def __init__(self, folder: Path):
        self.folder, self.procs, self.workers = folder, [], {}
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self._start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                     str(port), "--no-dashboard"], _env())

    def _start(self, cmd, env) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, cwd=self.folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def add_worker(self, env: dict | None = None) -> str:
        port = _free_port()
        address = f"tcp://127.0.0.1:{port}"
        self.workers[address] = self._start(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--no-nanny", "--nthreads", "1",
             "--host", "127.0.0.1", "--worker-port", str(port), "--no-dashboard"], env or _env())
        return address

    def wait_for(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(n, timeout=120)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture
def dask_cluster(tmp_path):
    folder = tmp_path / "workers"
    folder.mkdir()
    c = Cluster(folder)
    try:
        c.add_worker()
        c.add_worker()
        c.wait_for(2)
        yield c
    finally:
        c.stop()
    assert not list(folder.rglob("*.json")), "a worker wrote a record"


def _run(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(REPRO + [str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def local_records(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    r = _run(JOB + ["--results-dir", out], REPO)
    assert r.returncode == 0, r.stderr
    return _records(out)


def _records(root: Path) -> dict:
    return {p.name: json.loads(p.read_text()) for p in sorted((root / "runs").rglob("*.json"))}


def _assert_equal(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want) and len(want) == 4
    for name in want:
        for key in SAME:
            assert got[name][key] == want[name][key], (name, key)


def test_ablate_on_a_cluster_writes_the_records_of_a_local_run(dask_cluster, local_records, tmp_path):
    out = tmp_path / "cluster"
    r = _run(JOB + ["--results-dir", out, "--cluster", dask_cluster.address], tmp_path)
    assert r.returncode == 0, r.stderr
    _assert_equal(_records(out), local_records)
    assert len(list((out / "checkpoints").rglob("*s000.pt"))) == 2  # seed 0 of each configuration
    assert "2 workers connected" in r.stderr and "units done 2 of 2" in r.stderr
    again = _run(JOB + ["--results-dir", out, "--cluster", dask_cluster.address], tmp_path)
    assert "0 runs to train, 4 already" in again.stderr and "units done" not in again.stderr


PASS_LINE = re.compile(r"\[usps \| (\S+) \| 2 seeds on (tcp://[\d.:]+)\] pass (\d+)/6")


def test_a_killed_workers_unit_runs_again_elsewhere(dask_cluster, local_records, tmp_path):
    out = tmp_path / "cluster"
    proc = subprocess.Popen(REPRO + JOB + ["--results-dir", str(out), "--cluster", dask_cluster.address],
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    seen_after = []
    for line in proc.stderr:
        m = PASS_LINE.search(line)
        if m and killed is None:
            killed = (m.group(1), m.group(2))  # a unit that reported a finished pass: its worker dies now
            dask_cluster.workers[m.group(2)].send_signal(signal.SIGKILL)
        elif m and killed and m.group(1) == killed[0]:
            seen_after.append(m.group(2))
    proc.wait(timeout=600)
    assert proc.returncode == 0
    assert killed is not None and seen_after and set(seen_after) == set(dask_cluster.workers) - {killed[1]}, \
        "the unit did not run again on the other worker"
    _assert_equal(_records(out), local_records)
    assert not list(out.rglob("*.tmp*")) and not list((out / "damaged").rglob("*"))


def test_a_killed_client_resumes(dask_cluster, local_records, tmp_path):
    out = tmp_path / "cluster"
    proc = subprocess.Popen(REPRO + JOB + ["--results-dir", str(out), "--cluster", dask_cluster.address],
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("units done 1 of 2"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=600)
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    r = _run(JOB + ["--results-dir", out, "--cluster", dask_cluster.address], tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"(\d) runs? to train, (\d) already", r.stderr).groups() in {("2", "2"), ("0", "4")}
    _assert_equal(_records(out), local_records)


def test_a_worker_running_other_code_is_refused_and_named(tmp_path):
    other = tmp_path / "other"
    shutil.copytree(REPO / "repro", other / "repro", ignore=shutil.ignore_patterns("__pycache__"))
    with open(other / "repro" / "config.py", "a") as f:
        f.write("\n# a change\n")
    folder = tmp_path / "workers"
    folder.mkdir()
    c = Cluster(folder)
    try:
        worker = c.add_worker(_env(PYTHONPATH=str(other)))
        c.wait_for(1)
        r = _run(JOB + ["--results-dir", tmp_path / "out", "--cluster", c.address], tmp_path)
    finally:
        c.stop()
    assert r.returncode != 0
    assert "workers running other code than this client" in r.stderr and worker in r.stderr, r.stderr
    assert not (tmp_path / "out" / "runs").exists()


# --- fast: no cluster needed ------------------------------------------------------------------------------
def test_an_unreachable_scheduler_is_an_error_naming_it_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    r = CliRunner().invoke(main, [*JOB, "--seeds", "1", "--results-dir", str(tmp_path / "out"), "--cluster", address])
    assert r.exit_code == 1
    assert f"the Dask scheduler at {address} cannot be reached" in r.output and "nothing was" in r.output
    assert not (tmp_path / "out").exists()


def test_a_worker_with_other_data_refuses_the_unit_naming_itself_and_the_unit(usps):
    planned = PlannedConfig("baseline", Rung(0, "baseline", "t", "", "s"), Config())
    key = ConfigKey.of(planned, usps)
    unit = cluster.Unit(planned, ConfigKey(key.dataset, "0" * 16, key.label, key.digest), [0], "native", "cpu",
                        cluster.code_digest())
    with pytest.raises(cluster.ClusterError, match=r"worker pid \d+ holds other data: usps has fingerprint .*"
                                                   r"refused unit usps \| baseline \| 1 seed"):
        cluster.train_units([unit])


def test_local_cluster_sizes():
    assert cluster._local_workers("local:3") == 3 and cluster._local_workers("local") == (os.cpu_count() or 1)
    with pytest.raises(cluster.ClusterError, match="local:N"):
        cluster._local_workers("local:0")


def test_the_benchs_record_comparison_ignores_only_wall_time_and_creation_time(tmp_path):
    from repro.jobs.bench_cluster import same_records

    from .test_report import make_record, write

    record = make_record()
    later = {"wall_time_s": 2.0, "created": "2026-01-02T00:00:00+00:00"}
    for folder, changes in (("a", {}), ("b", later), ("c", {"population_members": 8}), ("d", {})):
        write(tmp_path / folder, {**record, **changes})
    (tmp_path / "d" / "runs" / "usps" / "notes.json").write_text("{")  # not a record: the folders differ
    assert same_records(tmp_path / "a", tmp_path / "b") and not same_records(tmp_path / "a", tmp_path / "c")
    assert not same_records(tmp_path / "a", tmp_path / "d")
    (tmp_path / "empty").mkdir()
    assert not same_records(tmp_path / "empty", tmp_path / "empty")  # nothing to compare is not agreement
