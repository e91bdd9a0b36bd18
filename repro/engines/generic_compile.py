"""The generic engine's step compiled by torch.compile: the whole gradient of a step (forward with the rung's
hooks, backward, the H2 mask; one output per tensor) traced once per configuration and population size by
`torch.func.grad`, which compiles into one graph (`torch.autograd.grad` would break it); Inductor generates
C++ on the CPU and Triton on CUDA. The update stays eager: the flat optimizers and the update hooks then keep
their arithmetic (Python-float scalars, torch.optim's own code) exactly as the eager step has it. (Compiled
into the graph, an in-place update of the flat buffer became one loop over the whole buffer with integer
index arithmetic per entry, several times the step's cost: measured, torch 2.13 on CPU.)

Compiled code is cached between runs and processes by Inductor, in $TORCHINDUCTOR_CACHE_DIR when set, else
`<$XDG_CACHE_HOME or ~/.cache>/lecun1989/inductor`; where that folder cannot be written, in a private folder
under the temp dir (for this process only; a message says so). A step that cannot be traced or compiled falls
back to the eager step, with a message naming the hook and the reason.
"""

from __future__ import annotations

import os
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Callable

import torch

# Each configuration and population size is its own compiled entry of one traced function; an `ablate --all`
# holds dozens, beyond torch's default limit (8), past which it would silently run the function eagerly.
RECOMPILE_LIMIT = 512


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base and os.path.isabs(base) else Path.home() / ".cache") / "lecun1989" / "inductor"


@cache
def prepare() -> str | None:
    """Point Inductor's cache at a writable folder and raise the recompile limit, once per process; returns a
    note when the cache will not outlive the process. The folder is chosen before torch._dynamo is touched:
    importing it makes Inductor settle on its own default folder (under the temp dir)."""
    note = None if os.environ.get("TORCHINDUCTOR_CACHE_DIR") else _choose_cache_dir()
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    # A new population size is a new graph, never one graph for every size: the tests hold a member's bits
    # the same at each size of a static graph (the package compiles nothing else)
    config.automatic_dynamic_shapes = False
    return note


def _choose_cache_dir() -> str | None:
    folder = default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK | os.X_OK)
    except OSError:
        writable = False
    if writable:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
        return None
    private = tempfile.mkdtemp(prefix="lecun1989-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = private
    return f"the compile cache {folder} cannot be written; compiled steps are cached in {private} for this run only"


def compile_step(fn: Callable) -> Callable:
    """fn compiled as one graph (no graph breaks: a break would leave most of the step eager, slowly)."""
    if note := prepare():
        say(note)
    # One thread: Inductor's parallel loops split sums between threads by the tensors' sizes, so a member's
    # numbers would depend on its population's size (measured: ReLU's H1 gradients, 2 threads, 1 vs 4
    # members); on one thread they do not. The eager rest of a step runs on one thread too (generic.train_pass).
    return torch.compile(fn, fullgraph=True, dynamic=None, options={"cpp.threads": 1})


def table_rows_vary(table: torch.Tensor) -> torch.Tensor:
    """The image table with its row count left symbolic in the traced step: one compiled graph serves every
    training-set size (each would otherwise be a compilation of its own)."""
    torch._dynamo.mark_dynamic(table, 0)
    return table


def fallback_message(err: BaseException, hooks: dict[str, Callable]) -> str:
    """Why the compiled step is given up, naming the hook whose code the error points into (when one does)."""
    text = f"{type(err).__name__}: {err}"
    reason = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    named = [name for name, fn in hooks.items() if _points_into(text, fn)]
    where = f"hook {', '.join(repr(n) for n in named)}" if named else "the step"
    return f"generic engine: {where} cannot be compiled ({type(err).__name__}: {reason}); running the eager step"


def _points_into(text: str, fn: Callable) -> bool:
    code = getattr(fn, "__code__", None)
    return code is not None and code.co_filename in text and code.co_name in text


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
