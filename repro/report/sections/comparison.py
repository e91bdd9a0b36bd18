"""A workspace's runs checked against the committed study (repro.report.compare): tables/comparison.csv and a
section of the report's text. Only with a reference folder."""

from __future__ import annotations


from repro.report import compare, tables
from repro.report.compare import Comparison
from repro.report.records import group_records
from repro.report.sections.context import Context
from repro.report.sections.part import Part
from repro.jobs.packaged_study import reference_rows


class CheckAgainstReference:
    """Keeps the check (`comparison`, None without a reference) for write_report's caller."""

    def __init__(self) -> None:
        self.comparison: Comparison | None = None

    def render(self, ctx: Context) -> Part:
        part = Part()
        if ctx.reference_dir is None:
            return part
        reference = group_records(reference_rows(ctx.reference_dir))
        if not reference:
            ctx.note(f"no run records under {ctx.reference_dir / 'runs'}: nothing to check the runs against")
        self.comparison = compare.compare_groups(ctx.kinds.all, reference)
        part.files[ctx.table_dir / "comparison.csv"] = tables.to_csv(self.comparison.table).encode()
        part.texts.append(compare.comparison_markdown(self.comparison))
        return part

