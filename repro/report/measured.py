"""Measurements the report reads that are not training runs: committed data, one small JSON file each under
results/measured/ (the peer's own code rerun on each mnist16 draw, the string-hash seeds that decide its draw,
the SDLM recursion's distance from the exact Gauss-Newton diagonal).

Each file holds `schema` (1), `name` (the table it becomes: paper/tables/<name>.csv, read by the claims as
`table <name> ...`), `what` (what was measured), `how` (on what, with what), `command` (the command that
measures it again and rewrites the file) and `rows` (a list of objects, one per row, the same keys in each).
A measurement is a fact about code, not about a study's runs, so every report reads the committed files,
whichever results folder it reports on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from repro.report.records import ReportError
from repro.report.tables import to_csv
from repro.jobs.workspace import STUDY_DIR

MEASURED_DIR = STUDY_DIR / "measured"
SCHEMA = 1
FIELDS = ("schema", "name", "what", "how", "command", "rows")


@dataclass(frozen=True)
class Measurement:
    name: str
    what: str
    how: str
    command: str
    table: pd.DataFrame


def load(name: str, folder: Path = MEASURED_DIR) -> Measurement:
    """The measurement `name` (folder/<name>.json); ReportError when it is missing or not of the schema."""
    path = Path(folder) / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ReportError(f"measurement {name} not readable ({path}): {e}") from e
    missing = [f for f in FIELDS if f not in data]
    if missing or data["schema"] != SCHEMA or data["name"] != name or not data["rows"]:
        raise ReportError(f"{path} is not a measurement of schema {SCHEMA} named {name} with rows "
                          f"(missing: {missing or 'none'})")
    keys = list(data["rows"][0])
    if any(list(row) != keys for row in data["rows"]):
        raise ReportError(f"{path}: every row must have the keys {keys}, in that order")
    return Measurement(name, data["what"], data["how"], data["command"], pd.DataFrame(data["rows"], columns=keys))


def save(path: Path, name: str, what: str, how: str, command: str, rows: list[dict]) -> None:
    """Write a measurement file (the scripts that measure call this)."""
    text = json.dumps({"schema": SCHEMA, "name": name, "what": what, "how": how, "command": command,
                       "rows": rows}, indent=1)
    Path(path).write_text(text + "\n")


def names(folder: Path = MEASURED_DIR) -> list[str]:
    return sorted(p.stem for p in Path(folder).glob("*.json"))


def write_tables(table_dir: Path, put: Callable[[Path, bytes], None], folder: Path = MEASURED_DIR) -> None:
    """Every measurement as table_dir/<name>.csv, with its `how` as a last column, so that the claims read it."""
    for name in names(folder):
        m = load(name, folder)
        put(Path(table_dir) / f"{name}.csv", to_csv(m.table.assign(how=m.how)).encode())
