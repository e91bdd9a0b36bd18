"""The records module: what one training run leaves in results/runs/<dataset>/<label>-<digest>-<fp8>-s<seed>.json,
and the one place records are read.

`RunRecord` is the one definition of the record's schema. From it come
- the records the runner writes: `RunRecord(...)` checks itself when built, `to_json()` gives the JSON object;
- the checks on records read back: `RunRecord.from_json(obj)` and `read_record(path)` (the record, or
  `RecordError` naming what is wrong);
- the row tables read (`RunRecord.row`: the JSON object with `_file`, its path relative to runs/); the packaged
  summary of the committed study (repro.jobs.packaged_study) gives rows of the same keys, less the per-pass lists;
- the schema table in results/README.md (`schema_markdown()`, between the `record:schema` markers; a test
  keeps the committed README equal to it).

A results folder is read by `read_records` (every file under runs/: the valid records, the rest with why), and
whether a run is done is decided by `is_done` (its record is there), for the job's plan, the runner's claim on
its seeds and the interrupt message alike.

Each field's JSON type is read from its annotation: `int`, `float` (an int is accepted), `str`, `dict` (JSON
object), `list[float]` (list of numbers), `int | None` (int or null), `bool`. A bool is never accepted as a
number. A record loads unchanged: `RunRecord.from_json(obj).to_json() == obj`, key order included.

This module imports nothing from the store, so store.py may import it; file names come from repro.jobs.run_key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, TypedDict

from repro.errors import ReproError
from repro.jobs.run_key import RunKey

SCHEMA_VERSION = 2
HISTORY_KEYS = ("train_loss", "train_error", "test_loss", "test_error")
FINAL_KEYS = HISTORY_KEYS + ("test_rejection_at_1pct",)


class RecordError(ReproError, ValueError):
    """A JSON object that is not a valid run record; the message says what is wrong."""


class FinalFigures(TypedDict, total=False):
    """A record's `final`: the last pass's figures. A run that diverged has only the four losses and errors of
    its last finished pass (none when it diverged in the first); a dataset with further test sets adds
    `<name>_error` and `<name>_loss` for each (mnist16: `test10k_error`, `test10k_loss`)."""

    train_loss: float
    train_error: float
    test_loss: float
    test_error: float
    train_mistakes: int
    test_mistakes: int
    test_rejection_at_1pct: float
    test_rejection_curve: dict[str, float]  # error level ("0", "0.5", ... "5") -> share of patterns rejected


def _doc(text: str) -> dict:
    return {"doc": text}


_LOSS = ("after each pass: squared error averaged over patterns and the 10 outputs (or cross-entropy for "
         "`output = \"softmax_ce\"`)")
_ERROR = ("after each pass: fraction of misclassified patterns (right only when the label's output is strictly "
          "the largest; a tie for the top is an error)")


@dataclass(frozen=True)
class RunRecord:
    """One training run (schema 2). Field order is the JSON key order."""

    schema: int = field(metadata=_doc(
        f"record format version ({SCHEMA_VERSION})"))
    rung: str = field(metadata=_doc(
        "rung name from `ablations/` (`baseline` for `repro train`; the label in factorial mode)"))
    label: str = field(metadata=_doc(
        "what the run is called in tables: the rung name in cumulative mode, `single:<rung>` or `minus:<rung>` in "
        "single and leave-one-out modes, `f:<rung>+<rung>...` (`f:baseline` for no change) in factorial mode, "
        "`guess:<rung>+<guess>` in guesses mode (file names: `:` and `+` become `_`), `baseline+<digest>` for "
        "`repro train` with overrides; a name only: what the configuration holds is in `mode` and `changes`"))
    mode: str = field(metadata=_doc(
        "the mode that planned the configuration: `cumulative`, `single`, `leave-one-out`, `factorial` or "
        "`guesses` (repro.jobs.ladder)"))
    changes: list[str] = field(metadata=_doc(
        "the changes the configuration holds: the names of the rungs (and guess) applied on its ladder's baseline, "
        "in the order applied (empty for the baseline and for `repro train`; fields set with `--set` are in "
        "`config` only)"))
    rung_title: str = field(metadata=_doc("one-line title of the rung"))
    dataset: str = field(metadata=_doc("`usps` or `mnist16`"))
    dataset_fingerprint: str = field(metadata=_doc("hash of the raw files' checksums and the preparation parameters"))
    seed: int = field(metadata=_doc(
        "fixes everything random: initial weights, then each pass's shifts and dropout masks"))
    config: dict = field(metadata=_doc("every field of `repro.config.Config`"))
    config_digest: str = field(metadata=_doc("short hash of `config`"))
    passes: int = field(metadata=_doc("passes through the 7,291 training patterns"))
    presentations: int = field(metadata=_doc("`passes * 7291`"))
    diverged_at_pass: int | None = field(metadata=_doc(
        "1-based pass after which the loss was no longer finite; the per-pass lists stop before it"))
    train_loss: list[float] = field(metadata=_doc(_LOSS))
    train_error: list[float] = field(metadata=_doc(_ERROR))
    test_loss: list[float] = field(metadata=_doc(_LOSS))
    test_error: list[float] = field(metadata=_doc(_ERROR))
    final: FinalFigures = field(metadata=_doc(
        "last-pass values of the four lists, plus `train_mistakes`, `test_mistakes` (counts), "
        "`test_rejection_at_1pct` (share of test patterns to reject, by the gap between the two largest outputs, "
        "for 1% error on the rest, as in the paper) and `test_rejection_curve` (the same for error levels 0 to 5%, "
        "keyed by the level as a string); for a dataset with further test sets (mnist16: `test10k`, the full MNIST "
        "test set), `<name>_error` and `<name>_loss` on each; for a run that diverged: the last finished pass's "
        "values, no rejection (empty when it diverged in the first pass)"))
    collapsed: bool = field(metadata=_doc(
        "the run collapsed: it diverged, or its final training error is above 50% (the rule and its reason: "
        "`repro/net/collapse.py`)"))
    engine: str = field(metadata=_doc(
        "the engine that trained the run (`repro/engines/registry.py`): `native` (C, members in SIMD lanes), "
        "`population` (lockstep members in torch), `fused` (one Triton kernel launch per pass), `generic` (lockstep "
        "through autograd, for rungs with their own code), `generic-eager` (the same, uncompiled) or `reference` (the "
        "plain loop); where the engine asked for does not implement a configuration, the one that trained it instead"))
    population_members: int = field(metadata=_doc("how many members trained together in lockstep"))
    wall_time_s: float = field(metadata=_doc(
        "wall time of the whole population (members share it); with `--engine fused`, where all populations of a "
        "job train together, the job's wall time until this population finished"))
    device: str = field(metadata=_doc("e.g. `cpu (x86_64, 2 threads)` or `cuda (NVIDIA H100 ...)`"))
    versions: dict = field(metadata=_doc("`repro`, `python`, `torch`, `numpy`"))
    git_commit: str = field(metadata=_doc(
        "commit of the code the job ran, read when the job starts (`-dirty` when `repro/` had uncommitted changes "
        "then)"))
    created: str = field(metadata=_doc("UTC time the record was written"))

    def __post_init__(self) -> None:
        why = _content_problem(self.to_json())
        if why:
            raise RecordError(why)

    # ------------------------------------------------------------------ JSON
    @classmethod
    def from_json(cls, obj: Any) -> RunRecord:
        """The record held by a parsed JSON object; RecordError naming the first thing wrong otherwise."""
        why = _content_problem(obj)
        if why:
            raise RecordError(why)
        return cls(**obj)

    def to_json(self) -> dict[str, Any]:
        """The JSON object (a dict in schema key order) that `atomic_write_json` writes."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    # ------------------------------------------------------------------ derived
    @property
    def finished(self) -> bool:
        """True unless the run diverged (then its numbers stop at the pass before)."""
        return self.diverged_at_pass is None

    @property
    def key(self) -> RunKey:
        return RunKey(self.dataset, self.dataset_fingerprint, self.label, self.config_digest, self.seed)

    @property
    def file_name(self) -> str:
        """`<label>-<digest>-<fp8>-s<seed>.json`, the name the store gives this record."""
        return self.key.file_name

    @property
    def row(self) -> dict[str, Any]:
        """The record as tables read it: its JSON object, with `_file` (its path relative to runs/)."""
        return {**self.to_json(), "_file": self.key.relative_record_path}


# ------------------------------------------------------------------------------------- the field table
@dataclass(frozen=True)
class FieldSpec:
    name: str
    kinds: tuple[type, ...]  # accepted Python types of the parsed JSON value
    nullable: bool
    items: tuple[type, ...] | None  # for lists: accepted types of the items
    type_text: str  # as written in the schema table
    doc: str


def _spec(f: dataclasses.Field, hint: Any) -> FieldSpec:
    nullable = False
    if typing.is_typeddict(hint):
        hint = dict  # a JSON object; its keys are documented by the TypedDict and checked in _content_problem
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable, (hint,) = True, args
    origin, items = typing.get_origin(hint) or hint, None
    if origin is list:
        (item,) = typing.get_args(hint)
        items = (int, float) if item is float else (item,)
        text = f"list of {item.__name__}"
    else:
        text = {dict: "object"}.get(origin, origin.__name__)
    kinds = (int, float) if origin is float else (origin,)
    return FieldSpec(f.name, kinds, nullable, items, text + (" or null" if nullable else ""), f.metadata["doc"])


FIELDS: tuple[FieldSpec, ...] = tuple(
    _spec(f, typing.get_type_hints(RunRecord)[f.name]) for f in dataclasses.fields(RunRecord))


def schema_markdown() -> str:
    """The schema table of results/README.md; fields with the same type and meaning share a row."""
    rows: dict[tuple[str, str], list[str]] = {}
    for s in FIELDS:
        rows.setdefault((s.type_text, s.doc), []).append(s.name)
    lines = ["| field | type | meaning |", "|---|---|---|"]
    lines += [f"| {', '.join(f'`{n}`' for n in names)} | {kind} | {doc} |" for (kind, doc), names in rows.items()]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- validation
def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))


def _type_ok(s: FieldSpec, value: Any) -> bool:
    if value is None:
        return s.nullable
    if not _is(value, s.kinds):
        return False
    return s.items is None or all(_is(v, s.items) for v in value)


def _content_problem(rec: Any) -> str | None:
    if not isinstance(rec, dict):
        return f"not a run record (JSON {type(rec).__name__}, expected an object)"
    missing = [s.name for s in FIELDS if s.name not in rec]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    known = {s.name for s in FIELDS}
    unknown = [k for k in rec if k not in known]
    if unknown:
        return f"unknown field(s) {', '.join(map(str, unknown))} (not in schema {SCHEMA_VERSION})"
    bad = [s for s in FIELDS if not _type_ok(s, rec[s.name])]
    if bad:
        return "wrong type for field(s) " + ", ".join(
            f"{s.name} ({type(rec[s.name]).__name__}, expected {s.type_text})" for s in bad)
    if rec["schema"] != SCHEMA_VERSION:
        return f"schema {rec['schema']} (this version reads schema {SCHEMA_VERSION})"
    if not _is(rec["versions"].get("repro"), (str,)):
        return "versions.repro missing"
    div = rec["diverged_at_pass"]
    if div is not None and not 1 <= div <= rec["passes"]:
        return f"diverged_at_pass = {div!r} (expected null or 1..passes)"
    lengths = {len(rec[k]) for k in HISTORY_KEYS}
    if len(lengths) != 1:
        return "per-pass lists differ in length"
    if div is None:
        if lengths != {rec["passes"]}:
            return f"per-pass lists hold {lengths.pop()} passes, the record says passes = {rec['passes']}"
        final = rec["final"]
        missing = [k for k in (*FINAL_KEYS, "test_rejection_curve") if k not in final]
        if missing:
            return f"missing field(s) final.{', final.'.join(missing)}"
        if any(not _is(final[k], (int, float)) or not math.isfinite(final[k]) for k in FINAL_KEYS):
            return "final values are not finite numbers"
        if not (0.0 <= final["train_error"] <= 1.0 and 0.0 <= final["test_error"] <= 1.0):
            return "final errors are not fractions in [0, 1]"
        curve = final["test_rejection_curve"]
        if not isinstance(curve, dict) or not curve or any(not _is(v, (int, float)) for v in curve.values()):
            return "final.test_rejection_curve is not a mapping of error level -> rejection"
        try:
            [float(k) for k in curve]
        except ValueError:
            return "final.test_rejection_curve has a key that is not a number"
    return None


def _problem(rec: Any, path: str | PurePath | None = None) -> str | None:
    """Why `rec` (parsed JSON) is not a usable record, or None if it is. With `path`
    (the file it was read from: runs/<dataset>/<name>.json, or that path relative to runs/), also check that the
    folder is the record's dataset and the name is the one the store gives it."""
    why = _content_problem(rec)
    if why or path is None:
        return why
    p = PurePath(path)
    if p.parent.name != rec["dataset"]:
        return f"record of dataset {rec['dataset']!r} stored in folder {p.parent.name!r}"
    expected = RunRecord.from_json(rec).file_name
    if p.name != expected:
        return f"file name does not match its contents (expected {expected})"
    return None


def read_record(path: str | Path) -> RunRecord:
    """The record in the file at `path` (results/runs/<dataset>/<name>.json). RecordError
    when it is not readable, truncated or otherwise invalid JSON, has missing or ill-typed fields, or a name or
    folder that does not match its contents."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise RecordError(f"not readable ({e})") from None
    except json.JSONDecodeError as e:
        raise RecordError(f"not valid JSON ({e})") from None
    why = _problem(rec, path)
    if why:
        raise RecordError(why)
    return RunRecord(**rec)


# ------------------------------------------------------------------------------------- a results folder
RECORD_PATTERN = "runs/<dataset>/<label>-<digest>-<fp8>-s<seed>.json"


@dataclass
class RecordScan:
    """What a results folder's runs/ holds: the valid records, and every other file with the reason."""

    records: list[RunRecord] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (path relative to runs/, why it is unusable)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r.row for r in self.records]


def read_records(results_dir: str | Path) -> RecordScan:
    """Every file under <results_dir>/runs, in path order: the valid records, and the rest (bad JSON, missing or
    ill-typed fields, a name that does not match its contents, anything not runs/<dataset>/<name>.json) with why.
    Hidden files (".name.tmp") are atomic writes in progress, or OS clutter, and are passed over silently."""
    runs = Path(results_dir) / "runs"
    scan = RecordScan()
    if not runs.is_dir():
        return scan
    for root, dirs, files in os.walk(runs):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            rel = path.relative_to(runs).as_posix()
            if len(Path(rel).parts) != 2 or not name.endswith(".json"):
                scan.damaged.append((rel, f"not a run record (records are {RECORD_PATTERN})"))
                continue
            try:
                scan.records.append(read_record(path))
            except RecordError as e:
                scan.damaged.append((rel, str(e)))
    return scan


def is_done(results_dir: str | Path, key: RunKey) -> bool:
    """Whether run `key` is done in the results folder: its record is there. A damaged record counts as done
    until a job sets it aside (repro.jobs.store.set_aside_damaged, at every job's start)."""
    return key.record_path(results_dir).is_file()
