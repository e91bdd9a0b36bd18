"""Keep the final weights of every seed of the committed mnist16 rungs the peers' figures stand beside
(repro.report.references.PEER_FIGURES), so that the report can score them by argmax as the peers do.

`repro ablate` keeps seed 0's weights only. This retrains each of those configurations for every seed the
committed study has (the engine its records name; the native engine gives the same bits on every x86-64 CPU),
checks that each run ends on its committed record's final errors and losses exactly, and only then writes the
checkpoint beside the seed-0 one (results/checkpoints/mnist16/<record stem>.pt). The committed records are
not touched. Seeds whose checkpoint is there already are not retrained.

Run: REPRO_DATA_DIR=... python scripts/keep_checkpoints.py   (minutes on 2 CPU cores)
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from repro.atomic_files import atomic_torch_save  # noqa: E402
from repro.data import load_dataset  # noqa: E402
from repro.report.references import PEER_FIGURES  # noqa: E402
from repro.jobs.ladder import DEFAULT_LADDER_DIR, load_rungs, plan  # noqa: E402
from repro.jobs.run_key import ConfigKey  # noqa: E402
from repro.jobs.runner import RunContext, train_configuration  # noqa: E402
from repro.jobs.workspace import STUDY_DIR  # noqa: E402

DATASET = "mnist16"
SEEDS = list(range(16))
FINAL = ("train_error", "test_error", "train_loss", "test_loss")


def planned_rungs() -> list:
    """The planned configurations of the rungs the peers' figures stand beside (the ladder's and the peers')."""
    wanted = {f.rung for f in PEER_FIGURES if f.ref.dataset == DATASET}
    configs = plan(load_rungs(DEFAULT_LADDER_DIR)) + plan(load_rungs(DEFAULT_LADDER_DIR / "peers"))
    found = {p.label: p for p in configs if p.label in wanted}
    if set(found) != wanted:
        raise SystemExit(f"no rung for {sorted(wanted - set(found))}")
    return [found[label] for label in sorted(found)]


def keep(planned, ds, results_dir: Path) -> int:
    key = ConfigKey.of(planned, ds)
    committed = {}
    for s in SEEDS:
        path = key.run(s).record_path(results_dir)
        if not path.is_file():
            raise SystemExit(f"{path} is not committed: the configuration differs from the committed study's")
        committed[s] = json.loads(path.read_text())
    todo = [s for s in SEEDS if not key.run(s).checkpoint_path(results_dir).is_file()]
    if not todo:
        return 0
    engines = {committed[s]["engine"] for s in todo}
    if len(engines) != 1:
        raise SystemExit(f"{planned.label}: its records name several engines {sorted(engines)}")
    kept = []

    def sink(record, checkpoint) -> None:
        want, got = committed[record.seed]["final"], record.to_json()["final"]
        differ = [k for k in FINAL if want[k] != got[k]]
        if differ or checkpoint is None:
            raise SystemExit(f"{planned.label} seed {record.seed}: retrained run differs from its record in {differ}")
        kept.append((record.seed, checkpoint))

    with tempfile.TemporaryDirectory(prefix="keep-checkpoints-") as scratch:
        ctx = RunContext(results_dir=Path(scratch), force=True, engine=engines.pop(), sink=sink,
                         checkpoint_seeds=frozenset(todo))
        train_configuration(planned, ds, todo, ctx)
    for seed, checkpoint in kept:  # every run checked before any file is written
        atomic_torch_save(key.run(seed).checkpoint_path(results_dir), checkpoint)
    return len(kept)


def main() -> None:
    ds = load_dataset(DATASET, download=False, cache=False)
    for planned in planned_rungs():
        n = keep(planned, ds, STUDY_DIR)
        print(f"{DATASET} {planned.label}: {n} checkpoint(s) written, each run equal to its record")


if __name__ == "__main__":
    main()
