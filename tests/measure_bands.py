"""Measure the bands of tests/test_regression.py: every rung's short version, seeds 0-15, on usps.

Run: REPRO_DATA_DIR=../shared/data python tests/measure_bands.py  (a few minutes on 2 CPU cores)
"""

import statistics as st

from repro.data import load_dataset
from repro.jobs.ladder import load_rungs, plan

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_regression import short_errors  # noqa: E402

if __name__ == "__main__":
    ds = load_dataset("usps")
    for p in plan(load_rungs()):
        test, train = short_errors(p.config, ds, list(range(16)))
        row = [st.mean(test), st.stdev(test), min(test), max(test), st.mean(train), st.stdev(train), min(train), max(train)]
        print(f'    "{p.label}": ({", ".join(f"{v:.2f}" for v in row)}),', flush=True)
