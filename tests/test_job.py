"""The job: planned once (engine chosen once per configuration, seeds done and to do), run by one function that
the command line, the API and the bench share; `--engine auto` on a GPU groups configurations into one launch
as `--engine fused` does; no engine name is compared outside the registry."""

from __future__ import annotations

import ast
import dataclasses
import json

import pytest
import torch

from repro import api
from repro.config import Config
from repro.engines import registry
from repro.jobs.job import JobRequest, facts_of, facts_without_data, plan_job, run_job
from repro.jobs.ladder import PlannedConfig, Rung, load_rungs, plan

from tests.conftest import REPO

RUNG = Rung(0, "r", "test", "", "test")


def _small(ds, n_train, n_test=32):
    return dataclasses.replace(ds, x_train=ds.x_train[:n_train], y_train=ds.y_train[:n_train],
                               x_test=ds.x_test[:n_test], y_test=ds.y_test[:n_test])


def test_the_plan_chooses_each_engine_once_and_counts_seeds_done(usps, tmp_path, monkeypatch):
    planned = [dataclasses.replace(p, config=p.config.replace(passes=1)) for p in plan(load_rungs())[:2]]
    request = JobRequest(planned, ["usps"], [0, 1, 2], tmp_path, torch.device("cpu"), engine="population")
    data = {"usps": _small(usps, 16)}
    run_job(dataclasses.replace(request, seeds=[1]), data=data, log=lambda m: None, progress=False)
    calls = []
    real = registry.choose
    monkeypatch.setattr(registry, "choose", lambda *a: calls.append(a) or real(*a))
    job = plan_job(request, facts_of(data))
    assert len(calls) == len(job.entries) == 2
    assert [(e.done, e.todo, e.engine.name) for e in job.entries] == [([1], [0, 2], "population")] * 2
    assert job.presentations_left == 2 * 2 * 16
    # --dry-run reads the same plan from the dataset's description, without loading it
    assert facts_without_data(["usps"]) == facts_of({"usps": usps})


def test_api_train_is_the_job_damaged_records_set_aside_and_runs_locked(usps, tmp_path, monkeypatch):
    small = _small(usps, 16)
    cfg = Config(passes=1)
    first = api.train(cfg, small, seeds=[0], label="x", engine="population", results_dir=tmp_path, progress=False)
    (record,) = (tmp_path / "runs").rglob("*.json")
    record.write_text("{ damaged")
    from repro.jobs import store

    locked = []
    real = store.SeedLocks.try_acquire
    monkeypatch.setattr(store.SeedLocks, "try_acquire", lambda self, key: locked.append(key) or real(self, key))
    again = api.train(cfg, small, seeds=[0], label="x", engine="population", results_dir=tmp_path, progress=False)
    assert len(list((tmp_path / "damaged").rglob("*.json"))) == 1 and json.loads(record.read_text())
    assert [k.seed for k in locked] == [0]
    assert again["test_error"].tolist() == first["test_error"].tolist()


def test_auto_on_a_gpu_groups_configurations_as_fused_does(usps, tmp_path, monkeypatch):
    """The device is chosen in the test: the CPU stands for a GPU (the fused engine is `auto`'s first choice
    on it), and the kernel runs in Triton's interpreter."""
    pytest.importorskip("triton")
    import repro.engines.fused.population as fused

    for name, engine in registry.ENGINES.items():
        gpu_like = dict(auto_on=("cpu",), devices=("cpu",)) if engine.grouped else dict(auto_on=())
        monkeypatch.setitem(registry.ENGINES, name, dataclasses.replace(engine, **gpu_like))
    groups = []

    class Spy(fused.FusedGroup):
        def __init__(self, pops, *args, **kwargs):
            groups.append(len(pops))
            super().__init__(pops, *args, **kwargs)

    monkeypatch.setattr(fused, "FusedGroup", Spy)
    planned = [PlannedConfig(label, RUNG, Config(passes=1, dropout=d)) for label, d in (("a", 0.0), ("b", 0.25))]
    request = JobRequest(planned, ["usps"], [0, 1], tmp_path, torch.device("cpu"))  # engine: auto
    job = run_job(request, data={"usps": _small(usps, 8, 8)}, log=lambda m: None, progress=False)
    assert {e.engine.name for e in job.entries} == {"fused"} and groups == [2]
    assert {r.engine for r in job.records()} == {"fused"}


ENGINE_NAMES = set(registry.NAMES)
NOT_ENGINES = {("repro/report/tables.py", "kind"): "a table row's kind (a published reference run)"}


def _engine_name_comparisons(source: str, rel: str) -> list[str]:
    """Comparisons (==, !=, in) with an engine name's literal, and registry calls given one, in a module's
    source (`rel`: its path in the repository)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            literals = [n for side in sides for n in ast.walk(side)
                        if isinstance(n, ast.Constant) and n.value in ENGINE_NAMES]
            others = [s for s in sides if not isinstance(s, ast.Constant)]
            if literals and not any(isinstance(o, ast.Attribute) and (rel, o.attr) in NOT_ENGINES for o in others):
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("choose", "get") and ast.unparse(node.func.value).endswith("registry")
              and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in ENGINE_NAMES):
            found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_engine_name_is_compared_outside_the_registry():
    registry_file = REPO / "repro" / "engines" / "registry.py"
    found = [hit for path in sorted((REPO / "repro").rglob("*.py")) if path != registry_file
             for hit in _engine_name_comparisons(path.read_text(), path.relative_to(REPO).as_posix())]
    assert not found, "engine names compared outside the registry (ask the Engine for a trait):\n" + "\n".join(found)


def test_the_scan_finds_comparisons_and_registry_calls_by_name():
    probe = 'def f(engine, row):\n    return engine.name == "native" or registry.get("fused") or row.kind == "reference"\n'
    assert len(_engine_name_comparisons(probe, "repro/x.py")) == 3
    assert len(_engine_name_comparisons(probe, "repro/report/tables.py")) == 2
