"""The committed study's hand-written documents (paper.md, README.md, results/README.md) with their generated
blocks refreshed and their claims rendered (repro.report.claims)."""

from __future__ import annotations

from pathlib import Path

from repro.report import claims
from repro.report.blocks import Block, refreshed_documents
from repro.report.sections.context import Context


def updated_documents(ctx: Context, blocks: list[Block]) -> dict[Path, bytes]:
    """Each document that changes (or holds a block), with `blocks` refreshed and its claims rendered. The claims
    (paper/claims.toml) are checked first, against the tables already written: a claim the study no longer
    supports stops the report (ClaimError, naming it) before any document changes."""
    claims_file = ctx.paper_dir / "claims.toml"
    claim_texts = claims.evaluate(claims_file, ctx.table_dir, ctx.kinds.all) if claims_file.is_file() else {}
    docs = refreshed_documents(blocks)
    for path in (ctx.paper, ctx.readme):
        text = docs[path] if path in docs else path.read_text() if path.is_file() else ""
        if not claims.cited(text):
            continue
        if not claims_file.is_file():
            ctx.note(f"{path.name} cites claims but there is no {claims_file}: their texts are left as they are")
            continue
        rendered = claims.render(text, claim_texts, path.name)
        if rendered != text:
            docs[path] = rendered
    return {path: text.encode() for path, text in docs.items()}
