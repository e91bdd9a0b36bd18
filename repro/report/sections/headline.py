"""The committed study's tables and figures in its documents: paper.md's report:results block (every table by
dataset, then the figures) and the README's report:headline block (test errors by rung, the references, the
faithfulness study in one paragraph, the ladder figure)."""

from __future__ import annotations

from pathlib import Path

from repro.report import attribution_figures, plots, tables
from repro.report.blocks import Block
from repro.report.references import MOST_LITERAL
from repro.report.sections.context import Context, relative
from repro.report.sections.faithfulness import Faithfulness
from repro.report.sections.figures import Figures
from repro.report.sections.ladder import LadderTables
from repro.report.sections.match import Match
from repro.report.sections.part import Part


class Headline:
    def __init__(self, ladder: LadderTables, faithful: Faithfulness, match: Match, figures: Figures) -> None:
        self.ladder, self.faithful, self.match, self.figures = ladder, faithful, match, figures

    def render(self, ctx: Context) -> Part:
        figs = self._figures(ctx)
        frames = self.ladder.frames
        headline = tables.headline_block(
            frames, ctx.kinds.order, {k: relative(ctx.paper_dir / v, ctx.readme.parent) for k, (v, _) in figs.items()},
            self.faithful.frame, MOST_LITERAL, self.match.table)
        return Part(blocks=[Block(ctx.paper, "report:results", tables.paper_results_block(frames, figs)),
                            Block(ctx.readme, "report:headline", headline)])

    def _figures(self, ctx: Context) -> dict[str, tuple[str, str]]:
        """The ladder's figures (file name -> link from paper/, caption): those made now, else (a report without
        figures) those already in paper/figures/, in the order make_figures gives."""
        if self.figures.made:
            return {name: (f"figures/{name}", fig.caption) for name, fig in self.figures.made.items()}
        return {p.name: (f"figures/{p.name}", plots.CAPTIONS.get(p.name, p.name))
                for p in sorted(ctx.figure_dir.glob("*.png"), key=_figure_order)
                if not attribution_figures.is_attribution_figure(p.name)}


def _figure_order(path: Path) -> tuple[int, str]:
    """The order make_figures gives (that of plots.CAPTIONS), so a report without figures lists the existing
    ones as a report with figures does."""
    names = list(plots.CAPTIONS)
    return (names.index(path.name) if path.name in names else len(names), path.name)
