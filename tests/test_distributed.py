"""Scale-out with torchrun: two CPU processes (gloo) write the same records as one process."""

import json
import os
import subprocess
import sys

from .conftest import data_dir

ARGS = ["ablate", "--rungs", "baseline,adamw", "--passes", "1", "--seeds", "4", "--device", "cpu"]
SAME = ("config", "config_digest", "dataset_fingerprint", "seed", "label", "train_error", "test_error", "diverged_at_pass")


def _records(root):
    return {p.name: json.loads(p.read_text()) for p in sorted((root / "runs" / "usps").glob("*.json"))}


def test_two_ranks_write_the_records_of_one_process(tmp_path):
    env = {**os.environ, "REPRO_DATA_DIR": str(data_dir()), "OMP_NUM_THREADS": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, "-m", "repro.cli", *ARGS, "--results-dir", str(one)], env=env, check=True,
                   capture_output=True, timeout=600)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "repro.cli", *ARGS, "--results-dir", str(two)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rank 1 of 2: seeds [1, 3]" in r.stderr
    a, b = _records(one), _records(two)
    assert sorted(a) == sorted(b) and len(a) == 8
    for name in a:
        for key in SAME:
            assert a[name][key] == b[name][key], (name, key)
        for key in ("train_loss", "test_loss"):
            for x, y in zip(a[name][key], b[name][key]):
                assert abs(x - y) <= 1e-6 * abs(x), (name, key)
    assert {rec["population_members"] for rec in b.values()} == {2}  # really split: 2 seeds per rank
