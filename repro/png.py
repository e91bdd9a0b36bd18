"""The one PNG writer for every figure the package makes (report, bench, sweep): matplotlib's object API on
the Agg canvas, no pyplot (no global figure registry, no backend switch), no timestamp or "Software" text
chunk, so the same figure gives byte-identical files.

    fig = Figure(figsize=(6, 4), dpi=120)   # matplotlib.figure.Figure, not pyplot
    ax = fig.subplots()
    ...
    data = figure_png(fig)

`styled_png(draw, rc)` renders `draw()` under matplotlib's defaults plus `rc`, whatever matplotlibrc the user
has, so a figure does not depend on the machine it is drawn on.
"""

from __future__ import annotations

import io
from typing import Callable

import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure_png(fig: Figure, *, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes (dpi: savefig.dpi of the current rc, which defaults to the figure's own)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, **({"dpi": dpi} if dpi else {}))
    return buf.getvalue()


def styled_png(draw: Callable[[], Figure], rc: dict | None = None) -> bytes:
    """PNG of the figure `draw()` builds, drawn and saved under matplotlib's defaults updated by `rc`."""
    with matplotlib.rc_context():
        matplotlib.style.use("default")
        matplotlib.rcParams.update(rc or {})
        return figure_png(draw())
