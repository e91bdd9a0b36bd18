"""Guesses judged on training data (repro.report.guesses): guesses.csv, a section of the report's text and
paper.md's report:guesses block."""

from __future__ import annotations

from repro.report import guesses, tables
from repro.report.blocks import Block
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class Guesses:
    def render(self, ctx: Context) -> Part:
        part = Part()
        if not ctx.kinds.guesses:
            return part
        table = guesses.build_table(ctx.kinds.guesses, ctx.kinds.all)
        part.files[ctx.table_dir / "guesses.csv"] = tables.to_csv(table).encode()
        part.texts.append(guesses.section_markdown(table))
        if ctx.study:
            part.blocks.append(Block(ctx.paper, "report:guesses", guesses.section_markdown(table, "")))
        return part
