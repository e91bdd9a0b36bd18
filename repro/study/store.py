"""Results store: one self-describing JSON record per run under results/runs/, written atomically.

The schema is documented in results/README.md. A record's file name is derived from what defines the run
(dataset, rung label, config digest, seed), so a finished run is found again and not redone.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

from repro.hardware import describe_cpu
from repro.resources import checkout_root, study_dir

DEFAULT_RESULTS_DIR = study_dir()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results and caches are not secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


def atomic_torch_save(path: Path, obj: Any) -> None:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def safe_label(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def run_path(results_dir: Path, dataset: str, label: str, digest: str, seed: int) -> Path:
    return Path(results_dir) / "runs" / dataset / f"{safe_label(label)}-{digest}-s{seed:03d}.json"


def checkpoint_path(results_dir: Path, dataset: str, label: str, digest: str, seed: int) -> Path:
    return Path(results_dir) / "checkpoints" / dataset / f"{safe_label(label)}-{digest}-s{seed:03d}.pt"


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
    import numpy

    from repro import __version__

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
    import time

    stale = [p for p in sorted(Path(results_dir).glob("*/*/.*.tmp")) if time.time() - p.stat().st_mtime > 60]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_record(path: Path) -> dict[str, Any]:
    """The record in a file, in the current schema (older records gain their derived fields)."""
    from repro.study.record import upgraded

    with open(path) as f:
        return upgraded(json.load(f))


def iter_record_paths(results_dir: Path) -> list[Path]:
    return sorted((Path(results_dir) / "runs").glob("*/*.json"))


# --- damaged records ----------------------------------------------------------------------------------
def record_problem_in_file(path: Path) -> str | None:
    """Why the record at `path` cannot be used (truncated, not JSON, missing or mistyped fields), or None."""
    from repro.study.record import validate_file

    return validate_file(path)


def set_aside_damaged(results_dir: Path, log=lambda msg: None) -> list[Path]:
    """Move every damaged record under runs/ to damaged/ (same sub-path, time-stamped), so its run counts as
    not done and is trained again; each move is logged with the reason."""
    import time

    moved = []
    for path in iter_record_paths(results_dir):
        problem = record_problem_in_file(path)
        if problem is None:
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
        self.dir = Path(results_dir) / "locks"
        self.held: dict[Path, int] = {}

    def _path(self, record: Path) -> Path:
        return self.dir / record.parent.name / (record.stem + ".lock")

    def try_acquire(self, record: Path) -> bool:
        import fcntl

        path = self._path(record)
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

    def wait(self, record: Path) -> None:
        """Block until no other process holds `record`'s lock (then release it at once)."""
        import fcntl

        path = self._path(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            os.close(fd)

    def holder(self, record: Path) -> str:
        try:
            return self._path(record).read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self, record: Path) -> None:
        path = self._path(record)
        fd = self.held.pop(path, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    def release_all(self) -> None:
        for fd in self.held.values():
            os.close(fd)
        self.held.clear()


# --- state after each pass, to resume a configuration mid-way ---------------------------------------------
def state_path(results_dir: Path, dataset: str, label: str, digest: str, seeds: list[int]) -> Path:
    """Where a running population's state after its last finished pass is kept (one file per seed set)."""
    tag = hashlib.sha256(",".join(map(str, seeds)).encode()).hexdigest()[:8]
    return Path(results_dir) / "state" / dataset / f"{safe_label(label)}-{digest}-{tag}.pt"


def load_state(path: Path) -> dict | None:
    """The saved state at `path`, or None (absent, or unreadable: then training starts from pass 1)."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # a damaged state file only costs the passes it held
        return None
