"""Generated blocks inside hand-written documents: the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`
(NAME `report:headline`, `report:results`, ... and `record:schema`) is replaced by what the report computes; the
rest of the document is left as written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Block:
    """The text of one generated block of the document at `path`."""

    path: Path
    name: str
    text: str


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of the block `name`."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def has_block(path: Path, name: str) -> bool:
    """Whether the document at `path` exists and holds both markers of `name`."""
    return path.is_file() and all(m in path.read_text() for m in markers(name))


def refresh_block(doc: str, name: str, text: str) -> str | None:
    """`doc` with the part between its `name` markers replaced by `text`; None when a marker is missing."""
    start, end = markers(name)
    if start not in doc or end not in doc:
        return None
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{text.strip()}\n{end}{tail}"


def refreshed_documents(blocks: list[Block]) -> dict[Path, str]:
    """Each document named by `blocks` (in order of first mention) with every block of it refreshed; documents
    that do not exist, or hold none of their blocks' markers, are left out (nothing is written to them)."""
    out: dict[Path, str] = {}
    for path in dict.fromkeys(b.path for b in blocks):
        if not path.is_file():
            continue
        doc, found = path.read_text(), False
        for block in (b for b in blocks if b.path == path):
            updated = refresh_block(doc, block.name, block.text)
            if updated is not None:
                doc, found = updated, True
        if found:
            out[path] = doc
    return out
