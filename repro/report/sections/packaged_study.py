"""The committed study's summary for installed packages (repro.jobs.packaged_study: what a wheel's `report --check`
compares with), where write_report's `summary_file` asks for it."""

from __future__ import annotations

from repro.report.sections.context import Context
from repro.report.sections.part import Part
from repro.jobs.packaged_study import summary_json


class PackagedStudy:
    def render(self, ctx: Context) -> Part:
        if ctx.summary_file is None:
            return Part()
        return Part(files={ctx.summary_file: summary_json(ctx.inputs.records)})
