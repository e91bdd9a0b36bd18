"""The committed tables, figures and generated document blocks (paper.md, README.md, and the record schema in
results/README.md) are exactly what `repro report --study` makes from the committed results: a stale table
(results changed, report not rerun) fails here."""

import shutil
from pathlib import Path

from repro.report.build import write_report

from .conftest import data_dir

REPO = Path(__file__).resolve().parents[1]


def test_committed_report_is_up_to_date(tmp_path):
    root = tmp_path / "repo"  # the same layout as the repository, so relative links come out the same
    shutil.copytree(REPO / "results", root / "results")
    (root / "paper").mkdir()
    shutil.copy(REPO / "paper" / "paper.md", root / "paper" / "paper.md")
    shutil.copy(REPO / "paper" / "claims.toml", root / "paper" / "claims.toml")  # every claim checked, rendered
    shutil.copy(REPO / "README.md", root / "README.md")
    shutil.copytree(REPO / "ablations", root / "ablations")
    outcome = write_report(root / "results", study=True, data_dir=str(data_dir()), ladder_dir=root / "ablations",
                           strict=True)
    names = {p.relative_to(root).as_posix() for p in outcome.written}
    assert {"results/results.md", "results/README.md", "README.md", "paper/paper.md",
            "paper/figures/ladder.png", "paper/page/index.html", "paper/page/page.js", "paper/page/data.js"} <= names
    assert outcome.comparison is None
    stale = [str(p.relative_to(root)) for p in outcome.written
             if p.read_bytes() != (REPO / p.relative_to(root)).read_bytes()]
    assert not stale, f"committed files differ from what `repro report` regenerates: {stale}; run `repro report --study`"
