"""Where a command writes: the user's workspace by default, the committed study only when asked for by name.

Two places are never confused:

- the **committed study**: `results/` (run records, results.md, bench figures, sweeps), `paper/` and the
  README's generated blocks. It is the reference every user's runs are checked against; a command writes
  there only with `--study`.
- the **workspace**: everything else. `train`, `ablate`, `sweep`, `bench` and `report` write to
  `$REPRO_WORKSPACE`, else `workspace/` in the checkout (git-ignored), else `--results-dir DIR`. It has the
  layout of `results/` (`runs/`, `checkpoints/`, `bench/`, `sweeps/`) plus `report/` (its own tables,
  figures and report.md) and the bookkeeping a job needs to resume and to keep two processes apart
  (`state/`, `locks/`).

Every output folder is checked before anything trains (`check_writable`): a run that cannot write its
records fails at once, with one message, instead of after its training.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from repro.errors import ReproError
from repro.resources import checkout_root, study_dir

STUDY_DIR = study_dir()  # the committed reference study (installed: its packaged summary)
WORKSPACE_ENV = "REPRO_WORKSPACE"


class WorkspaceError(ReproError, RuntimeError):
    """An output folder that cannot be used; the message names it and says why."""


def default_workspace() -> Path:
    """$REPRO_WORKSPACE, else workspace/ in the checkout (or in the current folder outside a checkout)."""
    env = os.environ.get(WORKSPACE_ENV)
    if env:
        return Path(env).expanduser()
    return (checkout_root() or Path.cwd()) / "workspace"


def output_dir(results_dir: str | os.PathLike | None, study: bool) -> Path:
    """The folder a command writes to: the committed study with `--study`, else `--results-dir`, else the
    workspace. Asking for both is an error (the study's folder is fixed)."""
    if study and results_dir is not None and Path(results_dir).resolve() != STUDY_DIR.resolve():
        raise WorkspaceError(f"--study writes to the committed study ({STUDY_DIR}); it cannot be combined with "
                             f"--results-dir {results_dir}")
    if study:
        if checkout_root() is None:
            raise WorkspaceError("--study regenerates the committed study of a checkout; an installed package "
                                 "carries only its summary (clone the repository to regenerate it)")
        return STUDY_DIR
    return Path(results_dir).expanduser() if results_dir is not None else default_workspace()


def is_study(folder: Path) -> bool:
    return Path(folder).resolve() == STUDY_DIR.resolve()


def check_writable(folder: Path) -> Path:
    """Make `folder` (and parents) if needed and prove it can be written by writing and removing a file.

    Permission bits are not consulted: root ignores them, and a read-only mount or a full disk only shows
    when a write is tried."""
    folder = Path(folder)
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise WorkspaceError(f"cannot use {folder}: {parent} is a file, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise WorkspaceError(f"cannot write to {folder}: {e.strerror or e}") from None
    return folder


def check_readable_results(folder: Path) -> Path:
    """A folder a report reads: it must exist and hold run records (runs/<dataset>/*.json)."""
    folder = Path(folder)
    if not folder.exists():
        raise WorkspaceError(f"{folder} does not exist (no runs have been written there; "
                             f"the workspace is {default_workspace()}, the committed study {STUDY_DIR})")
    if not folder.is_dir():
        raise WorkspaceError(f"{folder} is a file, not a results folder")
    return folder
