"""`repro report`: read every run record, check it, group the runs, and write tables, figures and a report.

Module order (each imports only the ones above it): repro.report.stats, .fmt, .references, .records, .tables,
.match, .plots, .compare, .calibration, .attribution, .attribution_text, .attribution_figures, .thresholds,
.guesses, .claims, .peers, .speed, .tie_rule, .blocks, the sections (repro.report.sections: one module per part of
the report, each returning its files, its text and its generated blocks), then this module, which runs them in
order and writes what they return.

Two kinds of report, chosen by the caller (write_report's `study`):

- a **workspace** (a folder with the layout of results/: <dir>/runs/<dataset>/*.json, <dir>/checkpoints/):
  its own report goes to <out_dir> (default <dir>/report/): report.md, tables/<dataset>.csv|tex,
  figures/*.png, and, with a reference folder, tables/comparison.csv and a section checking its runs
  against the reference (repro.report.compare). Nothing outside <out_dir> is written.
  With factorial runs (labels `f:...`, `repro ablate --mode factorial`), also a section on what each change
  buys whatever the order (repro.report.attribution), tables/{factorial,attribution,interactions}-<dataset>.csv
  and figures/{attribution,interactions}_<dataset>.png; their rows stay out of the ladder's tables and figures.
  With guess runs (labels `guess:<rung>+<guess>`, `repro ablate --mode guesses`), a section judging each on
  training data (repro.report.guesses) and tables/guesses.csv; their rows too stay out of the ladder's.
- the **committed study** (study=True; results/): results/results.md, <paper_dir>/tables, <paper_dir>/figures,
  and the generated blocks of <paper_dir>/paper.md, README.md (beside results/) and results/README.md (the
  record schema); with factorial runs, the same attribution files, a section of results.md and paper.md's
  report:attribution block (and, with guess runs, the guesses section, table and paper.md's report:guesses
  block). Without factorial runs nothing about attribution is written.
- both, with the figures: the page (repro.page) in page/ (<out_dir>/page, <paper_dir>/page).

Outputs are byte-for-byte deterministic for the same inputs (no timestamps). Rules on damaged files,
incompatible records and diverged runs: see repro.report.records; intervals: repro.report.stats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from repro.atomic_files import atomic_write_bytes
from repro.report import compare
from repro.report.compare import Comparison
from repro.report.sections.context import build_context
from repro.report.sections.documents import updated_documents
from repro.report.sections.order import report_sections
from repro.report.sections.report_text import report_text
from repro.jobs.workspace import STUDY_DIR


@dataclass
class Report:
    """What write_report did: the files written, and the check against the reference (None without one)."""

    written: list[Path]
    comparison: Comparison | None = None

    @property
    def all_agree(self) -> bool:
        """False when a configuration differs from the reference, or when a reference was given and nothing
        could be compared; True without a reference."""
        return True if self.comparison is None else self.comparison.all_agree

    @property
    def comparison_text(self) -> str:
        """One line for the terminal ("check: ..."), empty without a reference."""
        return "" if self.comparison is None else compare.summary_line(self.comparison)


def write_report(results_dir: Path = STUDY_DIR, *, study: bool = False, out_dir: Path | None = None,
                 paper_dir: Path | None = None, reference_dir: Path | None = None, data_dir: str | None = None,
                 ladder_dir: Path | None = None, strict: bool = False, make_figures: bool = True,
                 summary_file: Path | None = None, warn: Callable[[str], None] = lambda m: None) -> Report:
    """Write the report of the runs under `results_dir`/runs; return what was written and the check.

    study=False (a workspace): report.md, tables/ and figures/ go to `out_dir` (default results_dir/report);
    with `reference_dir` (the committed study's results/), the runs are checked against its runs
    (repro.report.compare) in report.md and tables/comparison.csv. Nothing else is written.
    study=True (the committed study): results.md into `results_dir`, tables/ and figures/ into `paper_dir`
    (default: paper/ beside results_dir), and the generated blocks of paper.md, README.md and
    results_dir/README.md. `out_dir` and `reference_dir` are not accepted then. With `summary_file`, the
    study's summary (repro.jobs.packaged_study: what a wheel's `report --check` compares with) is written there too.
    A `reference_dir` without runs/ but with the summary (an installed package's study) is read from it.

    ReportError: a folder with no run records (none at all, or every one skipped as damaged), a damaged file
    under strict=True, or arguments that do not fit the kind of report. Warnings go to `warn` and into the
    report's text. Existing figures are left alone when make_figures=False.
    """
    ctx = build_context(results_dir, study=study, out_dir=out_dir, paper_dir=paper_dir, reference_dir=reference_dir,
                        data_dir=data_dir, ladder_dir=ladder_dir, strict=strict, make_figures=make_figures,
                        summary_file=summary_file, warn=warn)
    sections = report_sections(study)
    written, texts, blocks = [], [], []

    def put(path: Path, data: bytes) -> None:
        atomic_write_bytes(path, data)
        written.append(path)

    for section in sections.in_order:
        part = section.render(ctx)
        for path, data in part.files.items():
            put(path, data)
        texts += part.texts
        blocks += part.blocks
    put(ctx.text_path, report_text(ctx, sections.ladder.frames, sections.faithful.frame, sections.figures.made, texts))
    if study:
        for path, data in updated_documents(ctx, blocks).items():
            put(path, data)
    return Report(written, sections.checked.comparison)
