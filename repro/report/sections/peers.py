"""The peers' single runs beside our seeds (repro.report.peers), ours scored by the tie rule and, where every
seed's checkpoint is kept, by argmax as the peers score: its tables, a section of the report's text per dataset and
paper.md's report:peers block."""

from __future__ import annotations

from repro.report import peers
from repro.report.blocks import Block
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class Peers:
    def render(self, ctx: Context) -> Part:
        part = Part()
        scores = peers.argmax_scores(ctx.kinds.all, ctx.results_dir, ctx.data_dir, ctx.note)
        part.texts = peers.write(ctx.kinds.all, ctx.table_dir, part.files.__setitem__, scores)
        if ctx.study and part.texts:  # in the paper under its results' heading: one level down
            part.blocks.append(Block(ctx.paper, "report:peers", "\n\n".join(
                text.replace("## ", "#### ", 1) for text in part.texts)))
        return part
