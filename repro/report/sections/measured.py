"""Measurements that are not runs (results/measured/: hash seeds, SDLM's curvature gap, the peer-code reruns;
repro.report.measured) as tables of the committed study, which its claims read."""

from __future__ import annotations

from repro.report import measured
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class Measured:
    def render(self, ctx: Context) -> Part:
        part = Part()
        measured.write_tables(ctx.table_dir, part.files.__setitem__)
        return part
