"""Results store: one self-describing JSON record per run under results/runs/, written atomically.

The schema is documented in results/README.md. A record's file name is derived from what defines the run
(dataset, rung label, config digest, seed), so a finished run is found again and not redone.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

SCHEMA_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS_DIR = REPO_ROOT / "results"


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
    so later edits to the working tree do not change what its records say."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no", "repro"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


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
    with open(path) as f:
        return json.load(f)


def iter_record_paths(results_dir: Path) -> list[Path]:
    return sorted((Path(results_dir) / "runs").glob("*/*.json"))
