"""Measure how far the float32 reference loop moves between CPU code paths, against the tolerance the native
engine and the fused kernel are compared with (conftest.FLOAT32_TOLERANCE; those engines are float32 only, so
the reference side of their comparison is the float32 loop, whose last bits are torch's kernels').

For every rung of the ladder (and its extras) and the SDLM cases of test_sdlm.py, as the tests run them
(150 usps digits, 2 passes, ReLU rungs 1: conftest.float32_comparable; seed 11), the reference loop runs in a child process on each code path this CPU
can run (this CPU's own, then tests/cpu_paths.py's other path); printed per case: the largest
|difference| / (atol + rtol |value|) over the parameters, where 1.0 would use the whole tolerance.

Run: REPRO_DATA_DIR=../shared/data python tests/measure_cpu_spread.py  (a few minutes on 2 CPU cores)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import CONFIGS, FLOAT32_TOLERANCE, N_SUBSET, float32_comparable  # noqa: E402
from tests.cpu_paths import child_environment, other_path  # noqa: E402
from tests.test_sdlm import EQUIV, SDLM  # noqa: E402

CASES = {**{k: float32_comparable(c) for k, c in CONFIGS.items()},
         **{f"sdlm {k}": SDLM.replace(passes=2, **v) for k, v in EQUIV.items()}}


def train_all(out: Path) -> None:
    from repro.data import load_dataset
    from repro.engines.reference import train_reference

    usps = load_dataset("usps")
    x, y = usps.x_train[:N_SUBSET], usps.y_train[:N_SUBSET]
    torch.save({label: train_reference(cfg, x, y, x, y, seed=11).params for label, cfg in CASES.items()}, out)


def used_share(a: dict, b: dict) -> float:
    atol, rtol = FLOAT32_TOLERANCE["atol"], FLOAT32_TOLERANCE["rtol"]
    return max(((a[k] - b[k]).abs() / (atol + rtol * b[k].abs())).max().item() for k in b)


if __name__ == "__main__":
    if len(sys.argv) == 2:
        train_all(Path(sys.argv[1]))
        sys.exit()
    paths = [("this CPU's", {})] + ([other_path()] if other_path() else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, variables in paths:
            out = Path(tmp) / f"{name.replace(' ', '_')}.pt"
            subprocess.run([sys.executable, __file__, str(out)], check=True, env=child_environment(name, variables))
            results[name] = torch.load(out)
    (first, a), *rest = results.items()
    for name, b in rest:
        print(f"{first} path against the {name} path: share of the tolerance the reference loop's own difference uses")
        for label in CASES:
            print(f"  {label:40s} {used_share(a[label], b[label]):.3f}")
