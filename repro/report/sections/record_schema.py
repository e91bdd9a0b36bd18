"""The run record's schema table in results/README.md (its record:schema block; repro.jobs.record)."""

from __future__ import annotations

from repro.report.blocks import Block
from repro.report.sections.context import Context
from repro.report.sections.part import Part
from repro.jobs.record import schema_markdown

SCHEMA_BLOCK = "record:schema"


class RecordSchema:
    def render(self, ctx: Context) -> Part:
        return Part(blocks=[Block(ctx.results_dir / "README.md", SCHEMA_BLOCK, schema_markdown())])
