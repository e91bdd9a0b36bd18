"""The committed study is reproducible: two seeds of two committed configurations, retrained here on the CPU
with the engine their records name, give the committed numbers bit for bit (batch invariance makes a
population of two equal to the committed population of sixteen)."""

import json

import pytest
import torch

from repro.config import config_from_dict

from repro.data import load_dataset
from repro.engines import registry
from repro.jobs.ladder import load_rungs, plan
from repro.jobs.runner import RunContext, train_configuration
from repro.jobs.workspace import STUDY_DIR

from .conftest import data_dir

VOLATILE = ("wall_time_s", "created", "git_commit", "population_members", "device", "versions")
CASES = [("usps", "baseline"), ("mnist16", "adamw")]
SEEDS = [3, 11]


@pytest.mark.parametrize("dataset, label", CASES)
def test_retrained_seeds_equal_the_committed_records(tmp_path, dataset, label):
    (planned,) = [p for p in plan(load_rungs()) if p.label == label]
    digest = planned.config.digest()
    def record(seed: int) -> dict:
        (path,) = (STUDY_DIR / "runs" / dataset).glob(f"{label}-{digest}-*-s{seed:03d}.json")
        return json.loads(path.read_text())

    committed = {s: record(s) for s in SEEDS}
    engines = {rec["engine"] for rec in committed.values()}
    assert len(engines) == 1
    (engine,) = engines
    if why := registry.get(engine).available("cpu"):
        pytest.fail(f"the {engine} engine named by the committed records must run here: {why}")
    ds = load_dataset(dataset, data_dir(), download=False)
    assert ds.fingerprint == committed[SEEDS[0]]["dataset_fingerprint"]
    torch.set_num_threads(2)
    paths = train_configuration(planned, ds, SEEDS, RunContext(tmp_path, engine=engine, progress=None))
    for seed, path in zip(SEEDS, paths):
        got = json.loads(path.read_text())
        assert got["engine"] == engine
        for key in committed[seed]:
            if key == "config":  # fields added since hold their defaults; records written before lack them
                assert config_from_dict(got[key]) == config_from_dict(committed[seed][key])
            elif key not in VOLATILE:
                assert got[key] == committed[seed][key], f"{dataset}/{label} seed {seed}: {key}"
