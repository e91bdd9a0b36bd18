"""The report's text (results.md of the committed study, report.md of a workspace; repro.report.tables): the
tables by dataset, the faithfulness study, the sections' texts in the order they ran, the figures, the warnings."""

from __future__ import annotations

import pandas as pd

from repro.report import tables
from repro.report.plots import FigureFile
from repro.report.sections.context import Context, relative


def report_text(ctx: Context, frames: dict[str, pd.DataFrame], faithful: pd.DataFrame | None,
                figures: dict[str, FigureFile], texts: list[str]) -> bytes:
    """The text, given the tables by dataset, the faithfulness study's table (None without one), the figures made
    now and the sections' texts; every warning noted so far is listed."""
    links = {name: (relative(ctx.figure_dir / name, ctx.text_path.parent), fig.caption)
             for name, fig in figures.items()}
    name = ctx.results_dir.name
    title = "Results" if ctx.study else f"Report on {name}/"
    return tables.results_markdown(frames, ctx.kinds.main, ctx.kinds.order, ctx.inputs, ctx.notes, ctx.rungs, links,
                                   faithful, runs=f"{name}/runs/", title=title, sections=tuple(texts)).encode()
