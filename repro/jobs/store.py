"""Results store: one self-describing JSON record per run under results/runs/, written atomically.

The schema is documented in results/README.md. A record's file name is derived from what defines the run
(repro.jobs.run_key: dataset and its fingerprint, rung label, config digest, seed), so a finished run is
found again and not redone; records are read by repro.jobs.record (`read_records`, `is_done`).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import functools
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy
import torch

from repro import __version__
from repro.hardware import describe_cpu
from repro.resources import checkout_root
from repro.jobs.record import read_records
from repro.jobs.run_key import RunKey


@functools.cache
def git_commit() -> str:
    """The commit of the code this process runs: read once, at the first call (a job calls it when it starts),
    so later edits to the working tree do not change what its records say. Installed from a wheel: "unknown"."""
    root = checkout_root()
    if root is None:
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "repro"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return describe_cpu(torch.get_num_threads())


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "device": device_description(device),
        "versions": {
            "repro": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
        },
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def remove_stale_temporaries(results_dir: Path) -> list[Path]:
    """Delete temporary files left by a writer that was killed mid-write (never a finished record).

    A write takes milliseconds, so a temporary file older than a minute belongs to no live writer."""
    stale = [p for p in sorted(Path(results_dir).glob("*/*/.*.tmp")) if time.time() - p.stat().st_mtime > 60]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# --- damaged records -------------------------------------------------------------------------------------
def set_aside_damaged(results_dir: Path, log=lambda msg: None) -> list[Path]:
    """Move every damaged record under runs/ to damaged/ (same sub-path, time-stamped), so its run counts as
    not done and is trained again; each move is logged with the reason. Files that are not records by their
    place or name (runs/<dataset>/<name>.json) are left where they are."""
    moved = []
    for rel, problem in read_records(results_dir).damaged:
        path = Path(results_dir) / "runs" / rel
        if len(Path(rel).parts) != 2 or path.suffix != ".json":
            continue
        stamp = time.strftime("%Y%m%d-%H%M%S")
        dest = Path(results_dir) / "damaged" / path.parent.name / f"{path.stem}.{stamp}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
        log(f"damaged record {path} ({problem}) moved to {dest}; its run will be trained again")
        moved.append(dest)
    return moved


# --- one writer per run ----------------------------------------------------------------------------------
class SeedLocks:
    """Advisory locks (fcntl.flock), one per run (configuration x seed), held while the run trains.

    A second process on the same results folder skips the seeds another process holds and trains the rest;
    it never does the same work twice. The kernel releases a lock when its process dies (even by SIGKILL),
    so a crashed job leaves nothing to clean up. Lock files live in locks/, apart from the records.
    """

    def __init__(self, results_dir: Path):
        self.results_dir = Path(results_dir)
        self.held: dict[Path, int] = {}

    def _path(self, key: RunKey) -> Path:
        return key.lock_path(self.results_dir)

    def try_acquire(self, key: RunKey) -> bool:
        path = self._path(key)
        if path in self.held:
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.held[path] = fd
        return True

    def wait(self, key: RunKey) -> None:
        """Block until no other process holds `key`'s lock (then release it at once)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            os.close(fd)

    def holder(self, key: RunKey) -> str:
        try:
            return self._path(key).read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self, key: RunKey) -> None:
        path = self._path(key)
        fd = self.held.pop(path, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    def release_all(self) -> None:
        for fd in self.held.values():
            os.close(fd)
        self.held.clear()


# --- state after each pass, to resume a configuration mid-way ---------------------------------------------
def load_state(path: Path) -> dict | None:
    """The saved state at `path`, or None (absent, or unreadable: then training starts from pass 1)."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # a damaged state file only costs the passes it held
        return None
