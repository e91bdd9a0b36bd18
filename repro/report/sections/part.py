"""What a section of the report returns (`Part`), and what a section is (`Section`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from repro.report.blocks import Block
from repro.report.sections.context import Context


@dataclass
class Part:
    """A section's output: files to write as they are (tables, figures, the page), sections of the report's text
    (Markdown, each with its own heading, placed after the tables by dataset in the order the sections run), and
    generated blocks of the committed study's documents (refreshed for the committed study only)."""

    files: dict[Path, bytes] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


class Section(Protocol):
    def render(self, ctx: Context) -> Part:
        """This section's files, text and blocks for the report `ctx` describes."""
