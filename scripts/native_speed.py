"""Training speed of the native engine against the population engine, measured in one process.

    python scripts/native_speed.py [--members 1 16 224] [--seconds 3] [--single-run] [--config '{"optimizer": "adamw"}']

Figures: member-steps/s of training only (whole passes over a slice of usps), both engines, same machine and
run; with --single-run also the wall time of one 23-pass run (1 member, training plus evaluation of the
train and test sets after every pass) on the native engine.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from repro.config import Config
from repro.data import load_dataset
from repro.engines.native.engine import NativePopulation
from repro.engines.population import population_class


def rate(cls, cfg: Config, ds, members: int, seconds: float) -> float:
    """member-steps/s: passes over n patterns, n chosen so that one pass takes about `seconds`."""
    n = 64
    while True:
        pop = cls(cfg, list(range(members)), ds.x_train[:n], ds.y_train[:n])
        pop.train_pass(0)  # warm-up (and the kernel build, on first use)
        t0 = time.perf_counter()
        pop.train_pass(1)
        dt = time.perf_counter() - t0
        if dt >= seconds or n >= len(ds.x_train):
            return members * n / dt
        n = min(len(ds.x_train), int(n * max(2.0, 1.2 * seconds / max(dt, 1e-6))))


def single_run(cls, ds) -> float:
    cfg = Config()
    t0 = time.perf_counter()
    pop = cls(cfg, [0], ds.x_train, ds.y_train)
    for p in range(cfg.passes):
        pop.train_pass(p)
        pop.evaluate(ds.x_train, ds.y_train)
        pop.evaluate(ds.x_test, ds.y_test)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, nargs="+", default=[1, 16, 224])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--config", default="{}", help="JSON patch over the default config")
    ap.add_argument("--single-run", action="store_true")
    ap.add_argument("--skip-population", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(os.environ.get("REPRO_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    ds = load_dataset("usps", data, download=False)
    cfg = Config().replace(**json.loads(args.config))
    print(f"config patch {args.config}; {args.threads} threads")
    for members in args.members:
        nat = rate(NativePopulation, cfg, ds, members, args.seconds)
        line = f"{members:>4} members: native {nat:>10,.0f} member-steps/s"
        if not args.skip_population:
            pop = rate(population_class(cfg.architecture), cfg, ds, members, args.seconds)
            line += f"   population {pop:>9,.0f}   ratio {nat / pop:5.2f}x"
        print(line, flush=True)
    if args.single_run:
        print(f"single 23-pass run (1 member, usps, train+test evaluation each pass): native {single_run(NativePopulation, ds):.1f} s")


if __name__ == "__main__":
    main()
