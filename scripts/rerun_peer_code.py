"""Run the earlier reproduction's own repro.py (github.com/karpathy/lecun1989-repro), unchanged, on each mnist16
draw, and commit what it prints after its last pass: results/measured/code-reruns-mnist16.json, which the
report reads (repro.report.measured, repro.report.peers).

Each draw (`--mnist-order test-first` / `train-first`, repro.data) is written to train1989.pt and test1989.pt in
a scratch copy of the checkout, as the peer's prepro.py writes them: images (n, 1, 16, 16) float32 in [-1, 1],
targets (n, 10) of -1 with +1 at the label. repro.py then trains there (torch.manual_seed(1337), 23 passes of
SGD), and its last `eval:` lines give the misses (as it prints them, int(error * n) of a float32 fraction) and
the losses.

Run: REPRO_DATA_DIR=... python scripts/rerun_peer_code.py PATH/TO/lecun1989-repro
(repro.py imports tensorboardX; it trains one pattern at a time, so each draw takes a while)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from repro.data import load_dataset  # noqa: E402
from repro.report.measured import MEASURED_DIR, load, save  # noqa: E402
from repro.report.references import PEER_SEED, PEER_WEIGHTS_LABEL  # noqa: E402

DRAWS = ("test-first", "train-first")
EVAL = re.compile(r"eval: split (train|test) *\. loss ([0-9.e+-]+)\. error [0-9.]+%\. misses: (\d+)")


def write_draw(folder: Path, draw: str) -> None:
    ds = load_dataset("mnist16", download=False, cache=False, mnist_order=draw)
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        targets = torch.full((len(y), 10), -1.0)
        targets[torch.arange(len(y)), y] = 1.0
        torch.save((x.unsqueeze(1).float().contiguous(), targets), folder / f"{split}1989.pt")


def rerun(checkout: Path, draw: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="peer-rerun-") as tmp:
        work = Path(tmp)
        shutil.copy(checkout / "repro.py", work / "repro.py")
        write_draw(work, draw)
        out = subprocess.run([sys.executable, "repro.py", "-o", str(work / "out")], cwd=work, capture_output=True,
                             text=True, check=True).stdout
    last = {m.group(1): (float(m.group(2)), int(m.group(3))) for m in EVAL.finditer(out)}  # the last pass wins
    return {"draw": draw, "our_run": PEER_WEIGHTS_LABEL, "seed": PEER_SEED, "train_misses": last["train"][1],
            "test_misses": last["test"][1], "train_loss": last["train"][0], "test_loss": last["test"][0]}


def main(checkout: Path) -> None:
    rows = [rerun(checkout, draw) for draw in DRAWS]
    old = load("code-reruns-mnist16")  # its description stays; the rows are measured again
    how = old.how.replace("torch 2.13", f"torch {torch.__version__.split('+')[0]}", 1)
    save(MEASURED_DIR / "code-reruns-mnist16.json", "code-reruns-mnist16", old.what, how, old.command, rows)
    for r in rows:
        print(r)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
