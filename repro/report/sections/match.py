"""Each reading of the faithfulness study against the paper's numbers, by the one rule for a match
(repro.report.match): match-<dataset>.csv, a section of the report's text and paper.md's report:match block."""

from __future__ import annotations

import pandas as pd

from repro.report import match, tables
from repro.report.blocks import Block
from repro.report.references import FAITHFUL_DATASET
from repro.report.sections.context import Context
from repro.report.sections.faithfulness import Faithfulness
from repro.report.sections.part import Part


class Match:
    """Reads the faithfulness study's row order; keeps the table (`table`, None without one) for the headline."""

    def __init__(self, faithful: Faithfulness) -> None:
        self.faithful = faithful
        self.table: pd.DataFrame | None = None

    def render(self, ctx: Context) -> Part:
        part = Part()
        if not ctx.kinds.faithful:
            return part
        table = match.build_table(ctx.kinds.faithful, self.faithful.order, FAITHFUL_DATASET)
        if not len(table):
            return part
        self.table = table
        part.files[ctx.table_dir / f"match-{FAITHFUL_DATASET}.csv"] = tables.to_csv(table).encode()
        part.texts.append(match.markdown(table))
        if ctx.study:
            part.blocks.append(Block(ctx.paper, "report:match", match.markdown(table, "")))
        return part
