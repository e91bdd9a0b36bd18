"""The tie rule against argmax on the factorial's collapsed runs (repro.report.tie_rule): tie-rule.csv and a
section of the report's text. Only with factorial runs."""

from __future__ import annotations

from repro.report import tables, tie_rule
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class TieRule:
    def render(self, ctx: Context) -> Part:
        part = Part()
        if not ctx.kinds.factorial:
            return part
        ties = tie_rule.build_table(ctx.kinds.factorial, ctx.results_dir, ctx.data_dir, ctx.note)
        if len(ties):
            part.files[ctx.table_dir / "tie-rule.csv"] = tables.to_csv(ties).encode()
            part.texts.append(tie_rule.section_markdown(ties))
        return part
