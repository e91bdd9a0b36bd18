"""What every section of the report reads (`Context`, made once by `build_context`): where the report is written,
the ladder, the records, and their configurations sorted into kinds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from repro.config import ConfigError
from repro.report.records import Inputs, ReportError, group_records, load_records
from repro.report.sections.kinds import Kinds, classify
from repro.resources import paper_dir as _paper_dir
from repro.jobs.ladder import DEFAULT_LADDER_DIR, extra_rungs, load_rungs
from repro.jobs.workspace import STUDY_DIR

DEFAULT_PAPER_DIR = _paper_dir()  # None when installed from a wheel


@dataclass(frozen=True)
class Context:
    """One report's inputs and destinations. For the committed study (`study`), tables and figures go to
    paper_dir/{tables,figures} and the text to results_dir/results.md; for a workspace, all of it to out_dir."""

    results_dir: Path
    study: bool
    out_dir: Path | None  # a workspace's report folder (None for the committed study)
    paper_dir: Path | None  # the committed study's paper/ (None for a workspace)
    reference_dir: Path | None  # the study a workspace's runs are checked against
    summary_file: Path | None  # where the committed study's summary goes (repro.jobs.packaged_study)
    data_dir: str | None
    make_figures: bool
    ladder_dir: Path
    rungs: list  # the ladder's rungs, in order (none when the ladder is not readable)
    faithful_rungs: list[str]  # the faithfulness study's readings, in order, then its extra rungs
    extra_rungs: list[str]  # the ladder's extra rungs (ablations/extra/)
    inputs: Inputs
    kinds: Kinds
    notes: list[str]  # the warnings so far, in order: the report's text lists them
    note: Callable[[str], None]  # a warning: to the caller now (write_report's `warn`), and into `notes`

    @property
    def ladder(self) -> list[str]:
        return [r.name for r in self.rungs]

    @property
    def folder(self) -> Path:
        """Where tables, figures and the page go: the committed study's paper/, else the workspace's report."""
        return self.paper_dir if self.study else self.out_dir

    @property
    def table_dir(self) -> Path:
        return self.folder / "tables"

    @property
    def figure_dir(self) -> Path:
        return self.folder / "figures"

    @property
    def page_dir(self) -> Path:
        return self.folder / "page"

    @property
    def text_path(self) -> Path:
        """The report's text: results.md of the committed study, report.md of a workspace."""
        return self.results_dir / "results.md" if self.study else self.out_dir / "report.md"

    @property
    def paper(self) -> Path:
        """The committed study's paper.md (its generated blocks)."""
        return self.paper_dir / "paper.md"

    @property
    def readme(self) -> Path:
        """The checkout's README.md beside results/ (its generated blocks)."""
        return self.results_dir.parent / "README.md"


def build_context(results_dir: Path, *, study: bool, out_dir: Path | None, paper_dir: Path | None,
                  reference_dir: Path | None, data_dir: str | None, ladder_dir: Path | None, strict: bool,
                  make_figures: bool, summary_file: Path | None, warn: Callable[[str], None]) -> Context:
    """The context of write_report's arguments (see there); ReportError for arguments that do not fit the kind of
    report, or a folder without run records."""
    results_dir = Path(results_dir)
    out_dir, paper_dir = _destinations(results_dir, study, out_dir, paper_dir, reference_dir)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        warn(f"warning: {msg}")

    ladder_root = Path(ladder_dir) if ladder_dir else DEFAULT_LADDER_DIR
    rungs = _readable(lambda: load_rungs(ladder_root), [], note, "ladder not readable ({}); rows are sorted by label")
    inputs = load_records(results_dir, strict=strict, warn=note)
    if not inputs.records:
        skipped = f" ({len(inputs.skipped)} file(s) there skipped as damaged or foreign)" if inputs.skipped else ""
        raise ReportError(f"no run records under {results_dir / 'runs'}{skipped}: nothing to report "
                          "(runs are written there by `repro train` and `repro ablate`)")
    groups = group_records(inputs.records, warn=note)
    faithful = _faithful_rungs(ladder_root, note)
    extra = [r.name for r in _readable(lambda: extra_rungs(ladder_root), [], note,
                                       "extra rungs not readable ({}); their runs are reported with the ladder's")]
    kinds = classify(groups, [r.name for r in rungs], faithful, extra)
    return Context(results_dir=results_dir, study=study, out_dir=out_dir, paper_dir=paper_dir,
                   reference_dir=_path(reference_dir), summary_file=_path(summary_file), data_dir=data_dir,
                   make_figures=make_figures, ladder_dir=ladder_root, rungs=rungs, faithful_rungs=faithful,
                   extra_rungs=extra, inputs=inputs, kinds=kinds, notes=notes, note=note)


def _destinations(results_dir: Path, study: bool, out_dir: Path | None, paper_dir: Path | None,
                  reference_dir: Path | None) -> tuple[Path | None, Path | None]:
    """(out_dir, paper_dir) for the kind of report; ReportError for arguments of the other kind, or a workspace's
    report that would land inside the committed study."""
    if study:
        if out_dir is not None or reference_dir is not None:
            raise ReportError("the committed study's report is written to results/ and paper/: out_dir and "
                              "reference_dir are for a workspace's report (study=False)")
        return None, Path(paper_dir) if paper_dir is not None else results_dir.parent / "paper"
    if paper_dir is not None:
        raise ReportError("paper_dir is only for the committed study (study=True); a workspace's report "
                          "goes to out_dir")
    out_dir = Path(out_dir) if out_dir is not None else results_dir / "report"
    for committed in (STUDY_DIR, DEFAULT_PAPER_DIR, *((reference_dir,) if reference_dir else ())):
        if committed is not None and _inside(out_dir, Path(committed)):
            raise ReportError(f"a workspace's report would be written into {committed} ({out_dir}); the "
                              "committed study is written only when asked for (study=True)")
    return out_dir, None


def _readable(read: Callable[[], list], fallback: list, note: Callable[[str], None], why: str) -> list:
    """read(), or `fallback` with a note (`why` formatted with the error) when its rung files are not readable."""
    try:
        return read()
    except ConfigError as e:
        note(why.format(e))
        return fallback


def _faithful_rungs(ladder_dir: Path, note: Callable[[str], None]) -> list[str]:
    """The faithfulness ladder's readings (ablations/faithful/, beside the main ladder), then its extra rungs; none
    without that folder."""
    folder = Path(ladder_dir) / "faithful"
    if not folder.is_dir():
        return []
    rungs = _readable(lambda: load_rungs(folder) + extra_rungs(folder), [], note,
                      "faithfulness ladder not readable ({}); its table is skipped")
    return [r.name for r in rungs]


def _path(path: Path | str | None) -> Path | None:
    return None if path is None else Path(path)


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def relative(path: Path, start: Path) -> str:
    """`path` as a link from the folder `start` (POSIX separators)."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
