"""Every committed claim can fail: for each claim of paper/claims.toml and each value its condition reads, moving
that value past the condition (a number pushed far up or down, its sign turned or set to another number the
claim reads, a word swapped, a flag flipped; expressions recomputed from the moved value) makes the condition
false. A condition that holds whatever a value is does not test that value."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from types import SimpleNamespace

import pytest

from repro.report import claims
from repro.report.records import group_records, load_records

REPO = Path(__file__).resolve().parents[1]
CLAIMS, FAMILIES = claims.load_claims(REPO / "paper" / "claims.toml")


@pytest.fixture(scope="module")
def sources():
    groups = group_records(load_records(REPO / "results", warn=lambda m: None).records)
    return claims._Sources(REPO / "paper" / "tables", groups, FAMILIES)


def _moves(value):
    """Values past any threshold a condition could set on `value`."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, (int, float)):
        return [-value - 1.0, 10.0 * abs(value) + 100.0, 0.0, -1e9, 1e9, 0.5]
    if isinstance(value, str):
        return ["matches" if value != "matches" else "does not match", "better" if value != "better" else "worse",
                "no such text"]
    if isinstance(value, SimpleNamespace):
        out = []
        for attr, v in vars(value).items():
            if isinstance(v, (bool, int, float)):
                for moved in _moves(v):
                    ns = copy.copy(value)
                    setattr(ns, attr, moved)
                    out.append(ns)
        return out
    return []


def _holds(claim, names) -> bool:
    values = {}
    try:
        for k, v in claim.values.items():
            values[k] = (claims._evaluate(ast.parse(v[1:].strip(), mode="eval"), values) if v.startswith("=")
                         else names[k])
        return bool(claims._evaluate(ast.parse(claim.holds, mode="eval"), values))
    except (TypeError, ValueError, AttributeError, ZeroDivisionError):
        return False  # a moved value the condition cannot compare or compute with: the claim fails


def _condition_reads(claim) -> set[str]:
    """The values a claim's condition reads, directly or through the expressions it names."""
    names = lambda text: {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}
    exprs = {k: v[1:].strip() for k, v in claim.values.items() if v.startswith("=")}
    reads, frontier = set(), names(claim.holds)
    while frontier - reads:
        reads |= frontier
        frontier = set().union(*(names(exprs[k]) for k in reads if k in exprs)) | reads
    return {k for k in reads if k in claim.values and k not in exprs}


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.name for c in CLAIMS])
def test_a_claim_fails_when_any_value_its_condition_reads_is_moved(claim, sources):
    read = {k: sources.value(v) for k, v in claim.values.items() if not v.startswith("=")}
    assert _holds(claim, read), f"{claim.name} does not hold on the committed study"
    reads = _condition_reads(claim)
    assert reads, f"claim {claim.name}: its condition reads none of its values"
    numbers = [v for v in read.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    stuck = [name for name in sorted(reads)  # moved far, or onto another number the claim reads
             if all(_holds(claim, {**read, name: moved})
                    for moved in _moves(read[name]) + (numbers if isinstance(read[name], (int, float)) else []))]
    assert not stuck, f"claim {claim.name}: moving {stuck} never makes `{claim.holds}` false"
