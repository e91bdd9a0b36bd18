"""Which sections a report has, and in what order they run: the order their texts appear in the report's text
and their warnings among its warnings."""

from __future__ import annotations

from dataclasses import dataclass

from repro.report.sections.attribution import Attribution
from repro.report.sections.baseline_tables import CodeRungs, ExtraRungs
from repro.report.sections.comparison import CheckAgainstReference
from repro.report.sections.faithfulness import Faithfulness
from repro.report.sections.figures import Figures
from repro.report.sections.guesses import Guesses
from repro.report.sections.headline import Headline
from repro.report.sections.ladder import LadderTables
from repro.report.sections.match import Match
from repro.report.sections.measured import Measured
from repro.report.sections.page import Page
from repro.report.sections.part import Section
from repro.report.sections.peers import Peers
from repro.report.sections.readme_check import CheckPower
from repro.report.sections.record_schema import RecordSchema
from repro.report.sections.speed import Speed
from repro.report.sections.packaged_study import PackagedStudy
from repro.report.sections.thresholds import Thresholds
from repro.report.sections.tie_rule import TieRule


@dataclass(frozen=True)
class ReportSections:
    """Every section in order (`in_order`), and those whose results the report's text and write_report's caller
    read once they have run."""

    in_order: list[Section]
    ladder: LadderTables
    faithful: Faithfulness
    figures: Figures
    checked: CheckAgainstReference


def report_sections(study: bool) -> ReportSections:
    """The sections of a workspace's report, or (`study`) of the committed study's, which also refreshes the
    generated blocks of its documents and writes its summary."""
    ladder, faithful, figures, checked = LadderTables(), Faithfulness(), Figures(), CheckAgainstReference()
    match = Match(faithful)
    in_order: list[Section] = [ladder, faithful, checked, CodeRungs(), match, ExtraRungs(), Guesses(), Peers(),
                               Attribution(), TieRule(), Thresholds(), figures, Page()]
    if study:
        in_order += [Measured(), Headline(ladder, faithful, match, figures), CheckPower(), Speed(), RecordSchema(), PackagedStudy()]
    return ReportSections(in_order, ladder, faithful, figures, checked)
