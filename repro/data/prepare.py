"""Preparation: from verified raw files to checked splits, and the fingerprint that names the result.

The fingerprint covers the raw files' checksums, the preparation version and every preparation
parameter and option, so a changed parameter can never pick up a stale cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping

import torch

from repro.data.fetch import verified
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
