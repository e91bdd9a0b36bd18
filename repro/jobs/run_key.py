"""What identifies a run, and the one place its files are named.

A run is defined by its dataset (the name and the fingerprint of the prepared data), its label, the digest of
its configuration and its seed. Its record, checkpoint and lock are named after all of these, so a record
made on other data (another `mnist16` draw) is not taken for this run's; the state a running population
saves after each pass is named after its configuration and its set of seeds.

    runs/<dataset>/<label>-<digest>-<fp8>-s<seed>.json     the record (fp8: the fingerprint's first 8 digits)
    checkpoints/<dataset>/<same stem>.pt                   the trained weights (seed 0 by default)
    locks/<dataset>/<same stem>.lock                       held while the run trains
    state/<dataset>/<label>-<digest>-<fp8>-<seeds hash>.pt a population's state after its last pass

This module imports nothing from the package, so the record, the store and the report may all use it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

FINGERPRINT_DIGITS = 8  # enough to tell two draws of a dataset apart in a file name


def safe_label(label: str) -> str:
    """A label as it may stand in a file name (`:` and `+` of factorial and guess labels become `_`)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


@dataclass(frozen=True)
class ConfigKey:
    """A configuration trained on one dataset: every run of it shares this, and differs by its seed."""

    dataset: str
    fingerprint: str  # the prepared data's fingerprint (repro.data.Dataset.fingerprint)
    label: str
    digest: str  # repro.config.Config.digest()

    @classmethod
    def of(cls, planned: Any, ds: Any) -> ConfigKey:
        """The key of a planned configuration (repro.jobs.ladder.PlannedConfig) on a dataset (repro.data.Dataset)."""
        return cls(ds.name, ds.fingerprint, planned.label, planned.config.digest())

    @property
    def stem(self) -> str:
        return f"{safe_label(self.label)}-{self.digest}-{self.fingerprint[:FINGERPRINT_DIGITS]}"

    def run(self, seed: int) -> RunKey:
        return RunKey(self.dataset, self.fingerprint, self.label, self.digest, seed)

    def state_path(self, results_dir: Path, seeds: list[int]) -> Path:
        """Where a running population's state after its last finished pass is kept (one file per seed set)."""
        tag = hashlib.sha256(",".join(map(str, seeds)).encode()).hexdigest()[:8]
        return Path(results_dir) / "state" / self.dataset / f"{self.stem}-{tag}.pt"


@dataclass(frozen=True)
class RunKey:
    """One run: a configuration on a dataset, and a seed. Further fields (a hash of user code) may join."""

    dataset: str
    fingerprint: str
    label: str
    digest: str
    seed: int

    @classmethod
    def of_record(cls, rec: Mapping[str, Any]) -> RunKey:
        """The key of a record (its JSON object, or a record-like dict of the study's summary)."""
        return cls(rec["dataset"], rec["dataset_fingerprint"], rec["label"], rec["config_digest"], rec["seed"])

    @property
    def config(self) -> ConfigKey:
        return ConfigKey(self.dataset, self.fingerprint, self.label, self.digest)

    @property
    def stem(self) -> str:
        return f"{self.config.stem}-s{self.seed:03d}"

    @property
    def file_name(self) -> str:
        """The record's file name."""
        return f"{self.stem}.json"

    @property
    def relative_record_path(self) -> str:
        """The record's path relative to runs/: `<dataset>/<file name>`."""
        return f"{self.dataset}/{self.file_name}"

    def record_path(self, results_dir: Path) -> Path:
        return Path(results_dir) / "runs" / self.dataset / self.file_name

    def checkpoint_path(self, results_dir: Path) -> Path:
        return Path(results_dir) / "checkpoints" / self.dataset / f"{self.stem}.pt"

    def lock_path(self, results_dir: Path) -> Path:
        return Path(results_dir) / "locks" / self.dataset / f"{self.stem}.lock"
