"""repro.report.measured: committed measurements that are not runs (results/measured/) are read, checked
against their schema and written as the tables the claims read."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from repro.report import measured
from repro.report.records import ReportError

REPO = Path(__file__).resolve().parents[1]


def test_save_then_load_gives_the_rows_and_their_provenance(tmp_path):
    rows = [{"draw": "a", "misses": 3}, {"draw": "b", "misses": 5}]
    measured.save(tmp_path / "m.json", "m", "what", "how", "cmd", rows)
    m = measured.load("m", tmp_path)
    assert (m.what, m.how, m.command) == ("what", "how", "cmd")
    assert m.table.to_dict("records") == rows


@pytest.mark.parametrize("change", [{"schema": 2}, {"name": "other"}, {"rows": []}, {"how": None},
                                    {"rows": [{"a": 1}, {"b": 2}]}])
def test_a_file_off_the_schema_is_refused(tmp_path, change):
    data = {"schema": 1, "name": "m", "what": "w", "how": "h", "command": "c", "rows": [{"a": 1}]}
    data.update(change)
    if change.get("how", 1) is None:
        del data["how"]
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(ReportError):
        measured.load("m", tmp_path)
    with pytest.raises(ReportError):
        measured.load("missing", tmp_path)


def test_every_committed_measurement_is_a_table_with_how_it_was_measured(tmp_path):
    written = {}
    measured.write_tables(tmp_path, lambda path, data: written.__setitem__(path.name, data))
    names = measured.names()
    assert {"code-reruns-mnist16", "hash-seeds-mnist16", "sdlm-gap"} <= set(names)
    assert set(written) == {f"{n}.csv" for n in names}
    for name in names:
        m = measured.load(name)
        script = m.command.split("python ", 1)[1].split()[0]
        assert (REPO / script).is_file(), f"{name}: its command's script {script} is not in the checkout"
        assert m.what and m.how
        csv = pd.read_csv(io.StringIO(written[f"{name}.csv"].decode()))
        assert list(csv.columns) == list(m.table.columns) + ["how"] and len(csv) == len(m.table)
