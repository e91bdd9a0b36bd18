"""No function in the package is over 100 lines (Triton kernels included: `@triton.jit` functions are Python
functions to `ast`, and a long one is split into helpers, one per layer and direction, as kernel.c is)."""

import ast

from tests.conftest import REPO

MAX_LINES = 100
# Functions known to be longer, with what is to become of them; an entry that no longer applies fails too.
KNOWN_LONG: dict[str, str] = {}


def _lengths() -> dict[str, int]:
    """'path::qualified name' -> lines from `def` to the function's last line, for every function in repro/."""
    found = {}
    for path in sorted((REPO / "repro").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()

        def visit(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    name = f"{prefix}{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        found[f"{rel}::{name}"] = child.end_lineno - child.lineno + 1
                    visit(child, name + ".")
                else:
                    visit(child, prefix)

        visit(ast.parse(path.read_text(), str(path)), "")
    return found


def test_no_function_is_over_100_lines():
    lengths = _lengths()
    assert len(lengths) > 500  # the scan sees the package
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES and name not in KNOWN_LONG}
    assert not too_long, f"functions over {MAX_LINES} lines: {too_long}"
    stale = [name for name in KNOWN_LONG if lengths.get(name, 0) <= MAX_LINES]
    assert not stale, f"KNOWN_LONG entries that are no longer over {MAX_LINES} lines (remove them): {stale}"


def test_the_scan_sees_the_fused_kernels_helpers():
    lengths = _lengths()
    for name in ("train_pass_kernel", "_net1989_pass", "_net1989_forward", "_fc40_pass"):
        assert f"repro/engines/fused/kernel.py::{name}" in lengths, name
