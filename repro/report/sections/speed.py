"""The README's report:speed block, from the committed bench (results/bench/cpu.json; repro.report.speed)."""

from __future__ import annotations

from repro.report import speed
from repro.report.blocks import Block
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class Speed:
    def render(self, ctx: Context) -> Part:
        bench = ctx.results_dir / "bench" / "cpu.json"
        return Part(blocks=[Block(ctx.readme, "report:speed", speed.speed_block(bench))] if bench.is_file() else [])
