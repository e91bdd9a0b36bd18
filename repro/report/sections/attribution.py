"""What each change buys whatever the order, from a factorial's runs (repro.report.attribution): per dataset
factorial-, attribution- and interactions-<dataset>.csv and two figures, a section of the report's text and
paper.md's report:attribution block. Only with factorial runs."""

from __future__ import annotations

from pathlib import Path

from repro.png import styled_png
from repro.report import attribution, attribution_figures, attribution_text, plots, tables
from repro.report.blocks import Block
from repro.report.sections.context import Context, relative
from repro.report.sections.kinds import dataset_order
from repro.report.sections.part import Part


class Attribution:
    def render(self, ctx: Context) -> Part:
        part = Part()
        if not ctx.kinds.factorial:
            return part
        atts, why_not = [], []
        for ds in dataset_order(ctx.kinds.factorial):
            fac, why = attribution.find_factorial(ctx.kinds.factorial, ds, ctx.ladder)
            if fac is None:
                why_not.append(why)
                ctx.note(why)
                continue
            att = attribution.attribute(fac)
            atts.append(att)
            part.files[ctx.table_dir / f"factorial-{ds}.csv"] = tables.to_csv(att.configuration_table()).encode()
            part.files[ctx.table_dir / f"attribution-{ds}.csv"] = tables.to_csv(att.table()).encode()
            part.files[ctx.table_dir / f"interactions-{ds}.csv"] = tables.to_csv(att.interaction_table()).encode()
            if ctx.make_figures:
                for name, png in attribution_figures.make_figures(
                        att, lambda draw: styled_png(draw, plots.STYLE)).items():
                    part.files[ctx.figure_dir / name] = png
        figures = {att.dataset: {name: (ctx.figure_dir / name, caption)
                                 for name, caption in attribution_figures.captions(att.dataset).items()
                                 if ctx.figure_dir / name in part.files or (ctx.figure_dir / name).is_file()}
                   for att in atts}  # the figures made now, or kept from an earlier report without figures

        def linked_from(folder: Path) -> dict:
            return {ds: {n: (relative(p, folder), c) for n, (p, c) in figs.items()} for ds, figs in figures.items()}

        part.texts.append(attribution_text.section_markdown(atts, linked_from(ctx.text_path.parent), why_not))
        if ctx.study and atts:
            part.blocks.append(Block(ctx.paper, "report:attribution",
                                     attribution_text.paper_block(atts, linked_from(ctx.paper_dir))))
        return part
