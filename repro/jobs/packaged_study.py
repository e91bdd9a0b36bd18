"""The committed study in brief: what `repro report --check` needs of each run, carried inside the package.

A wheel has no results/ folder, so `repro report --study` also writes this summary into the package
(repro.resources.summary_file()). It holds, per dataset and configuration (label, config digest, dataset
fingerprint, config), each seed's final figures: the scalars of the record's `final` (train and test error
and loss, mistakes, rejection at 1% error, and any flag such as `collapsed` a record carries there), plus
`diverged_at_pass`, `created` and the repro version, which the report's grouping reads. Per-pass histories,
checkpoints and the rejection curve are left out.

`read_summary` turns it back into rows of the records' shape (repro.jobs.record.RunRecord.row, less the
per-pass lists, the rejection curve and the run's environment): what repro.report.records.group_records and
repro.report.compare read. `reference_rows` reads a reference study: its records, else its summary.
"""

from __future__ import annotations

import json
from pathlib import Path

from repro.resources import SUMMARY_NAME
from repro.jobs.record import read_records
from repro.jobs.run_key import RunKey

SCHEMA = 1
# Per-configuration fields: equal for every seed of a configuration, so stored once.
CONFIG_FIELDS = ("dataset", "label", "rung", "mode", "changes", "config_digest", "dataset_fingerprint", "passes",
                 "config")
# Per-run fields outside `final` that the report reads.
RUN_FIELDS = ("seed", "diverged_at_pass", "collapsed", "created")


def summarize_records(records: list[dict]) -> dict:
    """The summary of run records' rows (repro.jobs.record.RunRecord.row), in a stable order."""
    configs: dict[tuple, dict] = {}
    for rec in sorted(records, key=lambda r: (r["dataset"], r["label"], r["config_digest"], r["seed"], r["created"])):
        key = (rec["dataset"], rec["label"], rec["config_digest"], rec["dataset_fingerprint"], rec["versions"]["repro"])
        entry = configs.setdefault(key, {**{k: rec.get(k) for k in CONFIG_FIELDS}, "repro": rec["versions"]["repro"],
                                         "runs": []})
        run = {k: rec[k] for k in RUN_FIELDS if k in rec}
        run["final"] = {k: v for k, v in rec["final"].items() if not isinstance(v, (dict, list))}
        entry["runs"].append(run)
    return {"schema": SCHEMA, "configurations": list(configs.values())}


def summary_json(records: list[dict]) -> bytes:
    return (json.dumps(summarize_records(records), separators=(",", ":"), sort_keys=True) + "\n").encode()


def read_summary(path: Path) -> list[dict]:
    """Rows, one per run of the summary at `path` (`_file` is the path its record has under runs/)."""
    doc = json.loads(Path(path).read_text())
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: summary schema {doc.get('schema')!r}, this version reads {SCHEMA}")
    records = []
    for entry in doc["configurations"]:
        shared = {k: entry[k] for k in CONFIG_FIELDS}
        for run in entry["runs"]:
            rec = {**shared, **run, "versions": {"repro": entry["repro"]}}
            rec["_file"] = RunKey.of_record(rec).relative_record_path
            records.append(rec)
    return records


def reference_rows(folder: Path) -> list[dict]:
    """The rows of a reference study's runs: its valid records (runs/), else (an installed package's study, which
    has no runs/) its summary's."""
    folder = Path(folder)
    if not (folder / "runs").is_dir() and (folder / SUMMARY_NAME).is_file():
        return read_summary(folder / SUMMARY_NAME)
    return read_records(folder).rows
