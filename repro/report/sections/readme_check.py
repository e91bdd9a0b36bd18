"""How good the check is (repro.report.calibration): the README's report:check block, resampled from the
committed ladder's, faithfulness study's and extra rungs' records. Seconds of work: only where the README asks
for it."""

from __future__ import annotations

from repro.report import calibration
from repro.report.blocks import Block, has_block
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class CheckPower:
    def render(self, ctx: Context) -> Part:
        kinds = ctx.kinds
        covered = {k: g for k, g in kinds.main.items() if k[1] in ctx.ladder} | kinds.faithful | kinds.extra
        if not covered or not has_block(ctx.readme, "report:check"):
            return Part()
        uncovered = {"factorial configurations": len(kinds.factorial), "rungs with their own code": len(kinds.code),
                     "guesses": len(kinds.guesses)}
        return Part(blocks=[Block(ctx.readme, "report:check", calibration.readme_block(
            covered, uncovered={k: n for k, n in uncovered.items() if n}))])
