"""The page's builder (repro/page/build.py) without a browser: what a workspace's page carries, and its bytes.
The page in Chromium: tests/test_page.py (slow tier)."""

import json
import re
import shutil

from repro.page.build import build_page
from repro.report.records import group_records, load_records
from repro.resources import ladder_dir

from .conftest import REPO, data_dir

COMMITTED = REPO / "results"


def _workspace(tmp_path, runs):
    """A workspace holding the committed records and seed-0 checkpoints of `runs` [(dataset, label)]."""
    ws = tmp_path / "ws"
    for ds, label in runs:
        for sub, ext in (("runs", "json"), ("checkpoints", "pt")):
            for path in (COMMITTED / sub / ds).glob(f"{label}-*-s000.{ext}"):
                (ws / sub / ds).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, ws / sub / ds / path.name)
    return ws


def _data(files):
    return json.loads(files["data.js"].decode().split("=", 1)[1].rstrip().rstrip(";"))


def test_a_workspaces_page_carries_its_own_nets_and_runs(tmp_path):
    ws = _workspace(tmp_path, [("usps", "baseline"), ("mnist16", "long"), ("usps", "gelu")])  # gelu: not shown
    groups = group_records(load_records(ws).records)
    warnings = []
    files = build_page(ws, ladder_dir(), groups, str(data_dir()), warnings.append)
    assert not warnings
    data = _data(files)
    assert [(n["dataset"], n["label"]) for n in data["nets"]] == [("usps", "baseline"), ("mnist16", "long")]
    for net in data["nets"]:
        record = groups[(net["dataset"], net["label"])].first
        assert net["n_wrong"] == record["final"]["test_mistakes"] == len(net["wrong"])
        digits = data["digits"][net["dataset"]]
        assert set(net["wrong"]) <= set(digits["index"]) and net["threshold_digit"] in digits["index"]
        assert digits["index"][:100] == list(range(100))  # the buttons' digits, then those the nets get wrong
    assert [(r["label"], [s[0] for s in r["seeds"]]) for r in data["runs"]] == [("baseline", [0]), ("long", [0])]
    scripts = re.findall(r'<script src="([^"]+)"></script>', files["index.html"].decode())
    assert scripts[0] == "data.js" and scripts[-1] == "page.js" and sorted(scripts) == sorted(files.keys() - {"index.html"})
    assert all(len(b) < 1_000_000 for b in files.values())  # no committed file over 1 MB
    # (the same bytes on every build: tests/test_committed_report.py regenerates the committed page)


def test_no_page_without_a_rung_it_shows(tmp_path):
    ws = _workspace(tmp_path, [("usps", "gelu")])
    warnings = []
    assert build_page(ws, ladder_dir(), group_records(load_records(ws).records), str(data_dir()), warnings.append) == {}
    assert not warnings
