"""Preparation: from verified raw files to checked splits, the fingerprint that names the result, and the
cache of prepared tensors, ``<data_dir>/prepared/<name>-<fingerprint>.pt``.

The fingerprint covers the raw files' checksums, the preparation version and every preparation
parameter and option, so a changed parameter can never pick up a stale cache. A valid cache entry is
used without re-reading the raw files; one that is absent, unreadable or does not match its fingerprint
and content checksum is simply rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping

import torch

from repro.atomic_files import atomic_torch_save
from repro.data.fetch import verified
from repro.data.locations import writable
from repro.data.spec import IMAGE_SIZE, DatasetSpec, Splits


def spec_fingerprint(spec: DatasetSpec, options: Mapping[str, object]) -> str:
    """16 hex digits naming the prepared data of `spec` under its resolved `options`."""
    params: dict = {"n_train": spec.n_train, "n_test": spec.n_test, "size": IMAGE_SIZE, "dtype": "float32"}
    if spec.extra_tests:
        params["extra_tests"] = dict(spec.extra_tests)
    params.update(spec.params)
    params.update(options)
    desc = {
        "dataset": spec.name,
        "raw_sha256": {rf.name: rf.sha256 for rf in spec.raw_files},
        "params": params,
        "prep_version": spec.prep_version,
    }
    blob = json.dumps(desc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def valid_split(x: torch.Tensor, y: torch.Tensor, n: int) -> bool:
    return (
        isinstance(x, torch.Tensor)
        and isinstance(y, torch.Tensor)
        and x.dtype == torch.float32
        and y.dtype == torch.int64
        and tuple(x.shape) == (n, IMAGE_SIZE, IMAGE_SIZE)
        and tuple(y.shape) == (n,)
    )


def build_splits(spec: DatasetSpec, files: Mapping[str, Path], options: Mapping[str, object]) -> Splits:
    # Verify every raw file before parsing any, so a bad file fails fast and cheaply.
    raw = {rf.name: verified(files[rf.name], rf) for rf in spec.raw_files}
    splits = spec.build(spec, raw, options)
    for split, n in spec.sizes.items():
        if split not in splits or not valid_split(*splits[split], n):
            raise RuntimeError(f"build of {spec.name!r} returned a malformed {split!r} split")
    return {s: splits[s] for s in spec.sizes}


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
