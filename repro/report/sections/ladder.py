"""The tables by dataset: the ladder's rungs and every configuration of no other kind, one table per dataset
(<dataset>.csv and .tex); the report's text shows them first (repro.report.tables.results_markdown)."""

from __future__ import annotations

import pandas as pd

from repro.report import tables
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class LadderTables:
    """Keeps the tables (`frames`, dataset -> table) for the report's text and the documents' headline."""

    def __init__(self) -> None:
        self.frames: dict[str, pd.DataFrame] = {}

    def render(self, ctx: Context) -> Part:
        part = Part()
        for ds, order in ctx.kinds.order.items():
            frame = self.frames[ds] = tables.build_table(ctx.kinds.main, ds, order, ctx.ladder)
            part.files[ctx.table_dir / f"{ds}.csv"] = tables.to_csv(frame).encode()
            part.files[ctx.table_dir / f"{ds}.tex"] = tables.to_latex(frame, ds).encode()
        return part
