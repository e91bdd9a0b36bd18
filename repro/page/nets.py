"""Which seed-0 nets the page carries and `repro predict` asks: the ladder's rungs on every dataset, and the
faithfulness study's rungs (ablations/faithful/, its extras included: fc40) on its dataset (usps)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from repro.config import Config, ConfigError
from repro.report.plots import seed0_checkpoint
from repro.report.records import Group
from repro.report.references import FAITHFUL_DATASET
from repro.jobs.ladder import extra_rungs, load_rungs

DATASETS = ("usps", "mnist16")


@dataclass
class Net:
    dataset: str
    label: str
    part: str  # "ladder" or "faithful"
    state: dict  # parameter name -> float32 tensor (the checkpoint's keys: repro.net.model)
    cfg: Config

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.label}"


def page_rungs(ladder_dir: Path) -> list[tuple[str, str, str]]:
    """(dataset, label, part) of every net the page shows, in ladder order: the ladder per dataset, then the
    faithfulness rungs that are not ladder rungs (the faithful baseline is the ladder's baseline)."""
    ladder = [r.name for r in load_rungs(ladder_dir)]
    faithful_dir = Path(ladder_dir) / "faithful"
    faithful = ([r.name for r in load_rungs(faithful_dir) + extra_rungs(faithful_dir)]
                if faithful_dir.is_dir() else [])
    return ([(ds, lb, "ladder") for ds in DATASETS for lb in ladder]
            + [(FAITHFUL_DATASET, lb, "faithful") for lb in faithful if lb not in ladder])


def load_nets(results_dir: Path, ladder_dir: Path, groups: dict[tuple[str, str], Group] | None = None,
              warn: Callable[[str], None] = lambda m: None, datasets: tuple[str, ...] = DATASETS) -> list[Net]:
    """The seed-0 nets of page_rungs found under results_dir/checkpoints (a missing one is a warning).
    With `groups` (the report's), a checkpoint is the one its records name; without, found by label."""
    nets = []
    try:
        rungs = page_rungs(ladder_dir)
    except ConfigError as e:
        warn(f"ladder not readable ({e}); no nets for the page")
        return []
    for ds, label, part in rungs:
        if ds not in datasets or (groups is not None and (ds, label) not in groups):
            continue
        ck = seed0_checkpoint(results_dir, None if groups is None else groups[(ds, label)], ds, label, warn,
                              "its net on the page")
        if ck is not None:
            nets.append(Net(ds, label, part, *ck))
    return nets
