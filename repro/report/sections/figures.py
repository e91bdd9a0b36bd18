"""The ladder's figures (repro.report.plots: learning curves, final errors, rejection, and from seed-0
checkpoints the misclassified digits and H1's kernels), into figures/. Without figures asked for, none."""

from __future__ import annotations

from repro.report import plots
from repro.report.plots import FigureFile
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class Figures:
    """Keeps the figures made (`made`, file name -> figure, in the report's order) for the texts that show them."""

    def __init__(self) -> None:
        self.made: dict[str, FigureFile] = {}

    def render(self, ctx: Context) -> Part:
        if ctx.make_figures:
            self.made = plots.make_figures(ctx.kinds.main, ctx.kinds.order, ctx.ladder, ctx.results_dir,
                                           ctx.data_dir, warn=ctx.note, study=ctx.study)
        return Part(files={ctx.figure_dir / name: fig.png for name, fig in self.made.items()})
