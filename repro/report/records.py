"""Reading run records and grouping them: the report's inputs.

Rules (each also stated in the report's text):
- A file under runs/ that is not a valid record (bad JSON, missing or ill-typed fields, a name that does not
  match its contents, or anything that is not runs/<dataset>/<name>.json; read by repro.jobs.record.read_records)
  is skipped with a warning naming it and why; with strict=True loading stops with a ReportError instead.
  Hidden files (".name.tmp") are atomic writes in progress and are ignored silently.
- Runs are grouped by (dataset, label). A group whose records disagree on dataset_fingerprint,
  config_digest or versions["repro"] keeps only the most common combination (ties: the one with the newest
  record, then the smallest key) and the others are dropped with a warning naming them.
- A run with diverged_at_pass set is counted as diverged and left out of every mean, spread, interval and curve.
- Every record carries `collapsed` (repro.net.collapse's rule, applied when the run's record is written).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from repro.errors import ReproError
from repro.report.stats import CI_LEVEL, Interval, paired_interval, welch_interval
from repro.jobs.run_key import ConfigKey
from repro.jobs.record import read_records


class ReportError(ReproError, RuntimeError):
    """Stops the report: damaged inputs under strict=True, a folder without records, or unusable arguments."""


@dataclass
class Inputs:
    records: list[dict]  # the valid records' rows (repro.jobs.record.RunRecord.row)
    skipped: list[tuple[str, str]]  # (path relative to runs/, reason)


def load_records(results_dir: Path, strict: bool = False, warn: Callable[[str], None] = lambda m: None) -> Inputs:
    """Every record under <results_dir>/runs (repro.jobs.record.read_records); invalid files are skipped with a
    warning (strict: ReportError)."""
    scan = read_records(results_dir)
    for rel, problem in scan.damaged:
        msg = f"runs/{rel}: {problem}"
        if strict:
            raise ReportError(f"{msg} (--strict: stopping; move or fix the file)")
        warn(f"skipped {msg}")
    return Inputs(scan.rows, scan.damaged)


# ----------------------------------------------------------------------------------------- groups
COMPAT_FIELDS = ("dataset_fingerprint", "config_digest", "repro version")


def _compat_key(rec: dict) -> tuple[str, str, str]:
    return rec["dataset_fingerprint"], rec["config_digest"], rec["versions"]["repro"]


@dataclass
class Group:
    dataset: str
    label: str
    records: list[dict]  # the kept, mutually compatible records, by seed
    dropped: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> list[dict]:
        return [r for r in self.records if r["diverged_at_pass"] is None]

    @property
    def n_diverged(self) -> int:
        return len(self.records) - len(self.ok)

    @property
    def stable(self) -> list[dict]:
        """The runs that did not collapse (repro.net.collapse): the ones error statistics describe."""
        return [r for r in self.records if not r["collapsed"]]

    @property
    def n_collapsed(self) -> int:
        """Runs that collapsed, diverged ones included (a diverged run has collapsed)."""
        return len(self.records) - len(self.stable)

    @property
    def first(self) -> dict:
        return self.records[0]

    @property
    def digest(self) -> str:
        return self.first["config_digest"]

    @property
    def mode(self) -> str:
        """The mode that planned the configuration (repro.jobs.ladder)."""
        return self.first["mode"]

    @property
    def changes(self) -> tuple[str, ...]:
        """The rungs (and guess) the configuration holds over its ladder's baseline, in the order applied."""
        return tuple(self.first["changes"])

    @property
    def config_key(self) -> ConfigKey:
        return ConfigKey(self.dataset, self.first["dataset_fingerprint"], self.label, self.digest)

    @property
    def passes(self) -> int:
        return self.first["passes"]

    def values(self, key: str, scale: float = 1.0) -> list[float]:
        """final[key] of each finished run, times `scale` (collapsed runs included: the mixture)."""
        return [scale * r["final"][key] for r in self.ok]

    def stable_values(self, key: str, scale: float = 1.0) -> list[float]:
        """final[key] of each run that did not collapse, times `scale`."""
        return [scale * r["final"][key] for r in self.stable]


@dataclass(frozen=True)
class Difference:
    """mean(b) - mean(a) of a metric over two configurations' runs that did not collapse."""

    interval: Interval
    paired: bool  # paired by seed (the same seeds on both sides, none collapsed), else Welch's
    corr: float  # Pearson correlation of the two sides' values over seeds (paired only; nan otherwise)


def difference(a: Group, b: Group, key: str = "test_error", scale: float = 100.0,
               level: float = CI_LEVEL) -> Difference:
    """b minus a, paired by seed where both ran the same seeds (at least 3) and no run of either collapsed, since
    runs of one seed share their random stream (initial weights, shift and dropout draws); else Welch's."""
    seeds_a, seeds_b = [r["seed"] for r in a.records], [r["seed"] for r in b.records]
    if (a.n_collapsed or b.n_collapsed or len(seeds_a) < 3 or sorted(seeds_a) != sorted(seeds_b)
            or len(set(seeds_a)) != len(seeds_a)):
        return Difference(welch_interval(a.stable_values(key, scale), b.stable_values(key, scale), level), False,
                          float("nan"))
    by_seed_b = {r["seed"]: scale * r["final"][key] for r in b.records}
    xa = [scale * r["final"][key] for r in a.records]
    xb = [by_seed_b[r["seed"]] for r in a.records]
    spread = np.std(xa) * np.std(xb)
    corr = float(np.corrcoef(xa, xb)[0, 1]) if spread > 0 else float("nan")
    return Difference(paired_interval(xa, xb, level), True, corr)


def group_records(records: list[dict], warn: Callable[[str], None] = lambda m: None) -> dict[tuple[str, str], Group]:
    """(dataset, label) -> Group; incompatible minorities are dropped with a warning."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        by_key.setdefault((r["dataset"], r["label"]), []).append(r)
    groups = {}
    for (ds, label), recs in sorted(by_key.items()):
        counts = Counter(_compat_key(r) for r in recs)
        newest = {k: max(r["created"] for r in recs if _compat_key(r) == k) for k in counts}
        keep = sorted(counts, key=lambda k: (-counts[k], _desc(newest[k]), k))[0]
        kept = sorted((r for r in recs if _compat_key(r) == keep), key=lambda r: (r["seed"], r["_file"]))
        dropped = sorted((r for r in recs if _compat_key(r) != keep), key=lambda r: r["_file"])
        if dropped:
            for k in sorted({_compat_key(r) for r in dropped}):
                files = [r["_file"] for r in dropped if _compat_key(r) == k]
                diff = "; ".join(f"{n} {v} (kept: {kv})" for n, v, kv in zip(COMPAT_FIELDS, k, keep) if v != kv)
                warn(f"{ds}/{label}: dropped {len(files)} record(s) incompatible with the {len(kept)} kept: {diff}; "
                     f"files: {', '.join('runs/' + f for f in files)}")
        groups[(ds, label)] = Group(ds, label, kept, dropped)
    return groups


def _desc(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)  # sorts strings in descending order inside an ascending sort key


def label_order(labels, ladder: list[str]) -> list[str]:
    """Ladder rungs in ladder order, then any other labels sorted."""
    labels = set(labels)
    return [n for n in ladder if n in labels] + sorted(labels - set(ladder))


def comparison_label(label: str, mode: str, present: list[str], ladder: list[str]) -> str | None:
    """Which row a row's test error is compared with: the previous ladder rung present; for labels outside the
    ladder, 'full' (every change) for the other leave-one-out rows, else the first rung (the baseline)."""
    if label in ladder:
        before = [n for n in ladder[: ladder.index(label)] if n in present]
        return before[-1] if before else None
    if mode == "leave-one-out" and label != "full" and "full" in present:
        return "full"
    return ladder[0] if ladder and ladder[0] in present and label != ladder[0] else None
