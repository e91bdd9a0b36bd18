"""Where the data lives: the data directory, and the checks that a folder in it can be read or written."""

from __future__ import annotations

import os
from pathlib import Path

from repro.data.spec import DataError


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Data directory: explicit argument, else $REPRO_DATA_DIR, else <user cache>/lecun1989."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("REPRO_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "lecun1989"


def check_dir(path: Path) -> None:
    """Raise DataError if `path` exists but cannot be used as a directory to read from."""
    try:
        if not path.exists():
            return
        is_dir = path.is_dir()
    except OSError as e:
        raise DataError(f"Cannot access data directory {path}: {e.strerror or e}.") from None
    if not is_dir:
        raise DataError(f"Data directory {path} exists but is not a directory.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DataError(
            f"Data directory {path} is not readable (permission denied). Fix its permissions "
            "or point the project elsewhere with --data-dir DIR or REPRO_DATA_DIR."
        )


def writable(path: Path) -> bool:
    """Whether we may create files under `path` (its nearest existing ancestor decides).

    A directory without any write permission bit counts as read-only even for root, who would
    otherwise write into deliberately read-only shared data folders.
    """
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    return p.is_dir() and bool(mode & 0o222) and os.access(p, os.W_OK | os.X_OK)


def locate(data_dir: Path, subdir: str, fname: str) -> Path | None:
    """Path of an existing raw file: <data_dir>/<subdir>/<fname>, else <data_dir>/<fname>."""
    for d in (data_dir / subdir, data_dir):
        check_dir(d)
        if (d / fname).is_file():
            return d / fname
    return None
