"""The faithfulness study (ablations/faithful/): which reading of the paper reproduces its numbers, one table
(faithful-<dataset>.csv and .tex) beside the paper's own figures; paper.md's report:faithful block."""

from __future__ import annotations

import pandas as pd

from repro.report import tables
from repro.report.blocks import Block
from repro.report.records import label_order
from repro.report.references import FAITHFUL_DATASET, FAITHFUL_REFERENCES
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class Faithfulness:
    """Keeps the table (`frame`, None without faithfulness runs) and its rows' order (`order`) for the match
    against the paper and the headline."""

    def __init__(self) -> None:
        self.frame: pd.DataFrame | None = None
        self.order: list[str] = []

    def render(self, ctx: Context) -> Part:
        part, groups = Part(), ctx.kinds.faithful
        if groups:
            self.order = label_order([lb for _, lb in groups], ctx.faithful_rungs)
            self.frame = tables.with_paper_loss(tables.build_table(
                groups, FAITHFUL_DATASET, self.order, ctx.faithful_rungs, FAITHFUL_REFERENCES))
            name = f"faithful-{FAITHFUL_DATASET}"
            part.files[ctx.table_dir / f"{name}.csv"] = tables.to_csv(self.frame).encode()
            part.files[ctx.table_dir / f"{name}.tex"] = tables.to_latex(self.frame, name).encode()
        if ctx.study:
            part.blocks.append(Block(ctx.paper, "report:faithful", tables.faithful_block(self.frame)))
        return part
