"""The page (repro.page): the nets of the ladder and the faithfulness study reading digits in a browser, written
beside the figures (page/). Only with figures."""

from __future__ import annotations

from repro.page.build import build_page
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class Page:
    def render(self, ctx: Context) -> Part:
        if not ctx.make_figures:
            return Part()
        files = build_page(ctx.results_dir, ctx.ladder_dir, ctx.kinds.all, ctx.data_dir, ctx.note)
        return Part(files={ctx.page_dir / name: data for name, data in files.items()})
