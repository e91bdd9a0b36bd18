"""Data loading for the LeCun et al. (1989) reproduction.

Every dataset is delivered as 16x16 float32 images in [-1, 1] with int64 labels 0-9, split into
7291 training and 2007 test examples (the sizes used in the paper); a dataset may add further
evaluation splits (``Dataset.extra_tests``). ``Dataset.n_train`` / ``Dataset.n_test`` give the
sizes, so no other module needs to know them.

The datasets are ``usps`` (the default; repro.data.usps) and ``mnist16`` (repro.data.mnist16).
This module is the package's public face: :func:`load_dataset` checks the options, looks for the
prepared tensors in the cache (repro.data.prepare), and otherwise finds, downloads and verifies the
raw files (repro.data.fetch), builds the splits (repro.data.prepare) and caches them. Each dataset
is one entry of repro.data.registry; the types are in repro.data.spec, the data directory's rules
in repro.data.locations.
"""

from __future__ import annotations

import os
from typing import Mapping

import torch

from repro.data.prepare import cache_path as _cache_path
from repro.data.prepare import load_cache as _load_cache
from repro.data.prepare import save_cache as _save_cache
from repro.data.fetch import download_file as _download
from repro.data.fetch import raw_files as _raw_files
from repro.data.locations import resolve_data_dir
from repro.data.mnist16 import MNIST_ORDER, MNIST_ORDERS, MNIST_SEED
from repro.data.prepare import build_splits as _build
from repro.data.prepare import spec_fingerprint as _fingerprint
from repro.data.registry import DATASETS, PREP_VERSION, REGISTRY, dataset_spec
from repro.data.spec import NUM_CLASSES, DataError, Dataset, DatasetSpec, Option, RawFile

__all__ = [
    "DATASETS",
    "REGISTRY",
    "DataError",
    "Dataset",
    "DatasetSpec",
    "dataset_spec",
    "RawFile",
    "Option",
    "resolve_data_dir",
    "load_dataset",
    "fingerprint",
    "summary",
    "MNIST_SEED",
    "MNIST_ORDER",
    "MNIST_ORDERS",
    "PREP_VERSION",
]


def _options(spec: DatasetSpec, given: Mapping[str, object]) -> dict[str, object]:
    """The dataset's options (defaults filled in, all checked).

    Options of other registered datasets are checked and then ignored, so one call (e.g. with
    mnist_order=...) works for every dataset; a value of None means the default.
    """
    known = {o.name: o for s in REGISTRY.values() for o in s.options}
    for key, value in given.items():
        if key not in known:
            raise TypeError(
                f"load_dataset() got an unknown option {key!r}; known options: "
                f"{', '.join(sorted(known)) or 'none'}"
            )
        if value is not None:
            known[key].check(value)
    out = {}
    for o in spec.options:
        value = given.get(o.name)
        out[o.name] = o.check(o.default if value is None else value)
    return out


def fingerprint(name: str, **options: object) -> str:
    """The fingerprint `load_dataset(name, **options)` gives its dataset, without reading any data."""
    spec = dataset_spec(name)
    return _fingerprint(spec, _options(spec, options))


def load_dataset(
    name: str = "usps",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    *,
    cache: bool = True,
    **options: object,
) -> Dataset:
    """Load a prepared dataset (see module docstring).

    Options (keywords; None means the default): ``mnist_seed`` (default 1337) and
    ``mnist_order`` ("test-first" by default, or "train-first") only affect mnist16.
    `cache=False` neither reads nor writes prepared/.
    """
    spec = dataset_spec(name)
    opts = _options(spec, options)
    root = resolve_data_dir(data_dir)
    fp = _fingerprint(spec, opts)
    cache_path = _cache_path(root, name, fp)

    splits = _load_cache(cache_path, spec, fp) if cache else None
    if splits is None:
        # _download and _build are looked up here, in this module, at call time: they are the
        # seams tests replace (repro.data._download to stay offline, repro.data._build to prove a
        # cache hit).
        files = _raw_files(spec, root, download, _download)
        splits = _build(spec, files, opts)
        if cache:
            _save_cache(cache_path, spec, fp, splits)
    extra = {s: splits[s] for s in spec.extra_tests}
    return Dataset(name, *splits["train"], *splits["test"], fingerprint=fp, extra_tests=extra, options=opts)


def summary(ds: Dataset) -> str:
    """One screen of text: options, class counts per split, value range and fingerprint."""
    lines = [f"dataset {ds.name}  fingerprint {ds.fingerprint}"]
    if ds.options:
        lines.append("options " + "  ".join(f"{k}={v}" for k, v in ds.options.items()))
    splits = {"train": (ds.x_train, ds.y_train), **ds.test_splits}
    width = max(5, *(len(s) for s in splits))
    lines.append(f"{'split':<{width}} {'n':>6} " + "".join(f"{c:>6}" for c in range(NUM_CLASSES)))
    for split, (_, y) in splits.items():
        counts = torch.bincount(y, minlength=NUM_CLASSES).tolist()
        lines.append(f"{split:<{width}} {len(y):>6} " + "".join(f"{c:>6}" for c in counts))
    for split, (x, _) in splits.items():
        lines.append(
            f"{split:<{width}} images {tuple(x.shape[1:])} {str(x.dtype).replace('torch.', '')}, "
            f"values in [{x.min().item():.4f}, {x.max().item():.4f}], mean {x.mean().item():.4f}"
        )
    return "\n".join(lines)
