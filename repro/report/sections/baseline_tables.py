"""Configurations shown against the baseline, one table per dataset and a section of the report's text each:
rungs with their own code (code-<dataset>.csv) and the ladder's extra rungs (extra-<dataset>.csv)."""

from __future__ import annotations

from repro.report import tables
from repro.report.records import label_order
from repro.report.sections.context import Context
from repro.report.sections.kinds import Groups, dataset_order
from repro.report.sections.part import Part


def _against_baseline(ctx: Context, groups: Groups, name: str, heading: str, intro: str, order) -> Part:
    """<name>-<dataset>.csv per dataset of `groups`: its rows (`order(labels)`) after the baseline's, when the
    baseline has runs there; the section `## <heading> (<dataset>)`, `intro`, then the table."""
    part, ladder = Part(), ctx.ladder
    for ds in dataset_order(groups):
        base = [ladder[0]] if ladder and (ds, ladder[0]) in ctx.kinds.all else []
        frame = tables.build_table(ctx.kinds.all, ds, base + order([lb for d, lb in groups if d == ds]), ladder, ())
        part.files[ctx.table_dir / f"{name}-{ds}.csv"] = tables.to_csv(frame).encode()
        part.texts.append(f"## {heading} ({ds})\n\n{intro}\n\n" + tables.markdown_table(frame))
    return part


class CodeRungs:
    def render(self, ctx: Context) -> Part:
        return _against_baseline(
            ctx, ctx.kinds.code, "code", "Rungs with their own code",
            "Each a rung's own PyTorch code on the baseline (`code` in the rung file; trained by the generic engine), "
            "compared with the baseline.", sorted)


class ExtraRungs:
    def render(self, ctx: Context) -> Part:
        return _against_baseline(
            ctx, ctx.kinds.extra, "extra", "Extra rungs",
            "Rungs of `ablations/extra/`, each a single patch on the baseline (the controls among them: ReLU trained "
            "by SGD at small learning rates, alone and with the rest of the recipe), compared with the baseline.",
            lambda labels: label_order(labels, ctx.extra_rungs))
