"""Which mnist16 split the earlier reproduction's prepro.py draws first, over string-hash seeds.

prepro.py loops `for split in {'train', 'test'}` over one numpy stream, so the split whose turn comes first
draws first; a set's order of two strings follows their hashes, which follow the interpreter's string-hash seed
(PYTHONHASHSEED, random per process by default). This runs that loop's first step in a fresh interpreter for
each seed 0..N-1 and counts the seeds whose first split is 'train' (the draw `--mnist-order train-first`).
Writes results/measured/hash-seeds-mnist16.json, which the report reads (repro.report.measured).

Run: python scripts/measure_hash_seeds.py [N]   (N = 2000 by default; about a minute on 2 CPU cores)
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from repro.report.measured import MEASURED_DIR, save  # noqa: E402

# prepro.py's loop as it writes it, first turn: a set display iterated by `for` is compiled to a frozenset constant,
# whose order can differ from that of a set built at run time (`next(iter({...}))` differs for a few seeds).
FIRST_SPLIT = "for split in {'train', 'test'}: print(split); break"


def first_split(seed: int) -> str:
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    # not -I or -E: they ignore PYTHONHASHSEED
    out = subprocess.run([sys.executable, "-S", "-c", FIRST_SPLIT], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def main(n: int) -> None:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        firsts = list(pool.map(first_split, range(n)))
    train_first = firsts.count("train")
    version = platform.python_implementation() + " " + ".".join(platform.python_version_tuple()[:2])
    save(MEASURED_DIR / "hash-seeds-mnist16.json", "hash-seeds-mnist16",
         "how many string-hash seeds make prepro.py's loop over the set {'train', 'test'} take 'train' first",
         f"{version}: `{FIRST_SPLIT}` in a fresh interpreter with PYTHONHASHSEED = 0 .. {n - 1}",
         f"python scripts/measure_hash_seeds.py {n}",
         [{"interpreter": version, "seeds": n, "train_first": train_first, "test_first": n - train_first}])
    print(f"{version}: train first for {train_first} of {n} hash seeds")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
