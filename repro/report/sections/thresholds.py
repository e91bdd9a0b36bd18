"""Every collapse-based number at other collapse thresholds (repro.report.thresholds): thresholds.csv and a
section of the report's text. Only with factorial runs."""

from __future__ import annotations

from repro.report import tables, thresholds
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class Thresholds:
    def render(self, ctx: Context) -> Part:
        part = Part()
        if ctx.kinds.factorial:
            table = thresholds.build_table(ctx.kinds.all, ctx.ladder)
            part.files[ctx.table_dir / "thresholds.csv"] = tables.to_csv(table).encode()
            part.texts.append(thresholds.markdown(table))
        return part
