"""How good the check is (repro.report.calibration): the README's report:check block, its false-flag rate on every
configuration the check compares and its power on the ladder's, the faithfulness study's and the extra rungs',
resampled from the committed records. A minute of work: only where the README asks for it."""

from __future__ import annotations

from repro.report import calibration
from repro.report.blocks import Block, has_block
from repro.report.sections.context import Context
from repro.report.sections.part import Part


class CheckPower:
    def render(self, ctx: Context) -> Part:
        kinds = ctx.kinds
        power = {k: g for k, g in kinds.main.items() if k[1] in ctx.ladder} | kinds.faithful | kinds.extra
        if not power or not has_block(ctx.readme, "report:check"):
            return Part()
        return Part(blocks=[Block(ctx.readme, "report:check", calibration.readme_block(kinds.all, power))])
