"""The prepared-tensor cache: ``<data_dir>/prepared/<name>-<fingerprint>.pt``.

A valid cache entry is used without re-reading the raw files; one that is absent, unreadable or
does not match its fingerprint and content checksum is simply rebuilt.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from repro.atomic_files import atomic_torch_save
from repro.data.locations import writable
from repro.data.prepare import valid_split
from repro.data.spec import DatasetSpec, Splits


def _flat(splits: Splits) -> dict[str, torch.Tensor]:
    """{"x_train", "y_train", "x_test", "y_test", "x_<extra>", ...} in split order."""
    out = {}
    for s, (x, y) in splits.items():
        out[f"x_{s}"], out[f"y_{s}"] = x, y
    return out


def _content_sha256(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_path(data_dir: Path, name: str, fingerprint: str) -> Path:
    return data_dir / "prepared" / f"{name}-{fingerprint}.pt"


def load_cache(path: Path, spec: DatasetSpec, fingerprint: str) -> Splits | None:
    """Cached splits, or None if absent or in any way unusable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        splits = {s: (d[f"x_{s}"], d[f"y_{s}"]) for s in spec.sizes}
        ok = (
            d.get("fingerprint") == fingerprint
            and all(valid_split(*splits[s], n) for s, n in spec.sizes.items())
            # catches silent corruption
            and d.get("content_sha256") == _content_sha256(_flat(splits).values())
        )
    except Exception:  # any unreadable cache just means "rebuild"
        return None
    return splits if ok else None


def save_cache(path: Path, spec: DatasetSpec, fingerprint: str, splits: Splits) -> None:
    """Write atomically; a data dir we cannot write to simply gets no cache."""
    if not writable(path.parent):
        return
    flat = _flat(splits)
    blob = {
        "name": spec.name,
        "fingerprint": fingerprint,
        "prep_version": spec.prep_version,
        **flat,
        "content_sha256": _content_sha256(flat.values()),
    }
    try:
        atomic_torch_save(path, blob)  # readers see either no file or the complete one
    except (OSError, RuntimeError):
        pass  # no cache is not an error: the data is prepared again next time
