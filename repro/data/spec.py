"""What a dataset is: its description (:class:`DatasetSpec`, with its raw files and options), the loaded
tensors (:class:`Dataset`), and the one error the data package raises (:class:`DataError`).

Every dataset is delivered as 16x16 float32 images in [-1, 1] with int64 labels 0-9.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch

from repro.errors import ReproError

IMAGE_SIZE = 16
NUM_CLASSES = 10


class DataError(ReproError):
    """A data problem the user must fix; the message is the whole explanation."""


@dataclass(frozen=True)
class RawFile:
    """One published raw file: its name, the sha256 of its DECOMPRESSED contents, its sources."""

    name: str
    sha256: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class Option:
    """A user-settable preparation option; its value enters the fingerprint.

    `choices` lists the allowed values; empty means "any non-negative integer".
    """

    name: str
    default: object
    choices: tuple = ()
    help: str = ""

    def check(self, value: object) -> object:
        if self.choices:
            if value not in self.choices:
                allowed = ", ".join(repr(c) for c in self.choices)
                raise DataError(f"{self.name} must be one of {allowed}, got {value!r}.")
            return value
        is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if not is_int or value < 0:
            raise DataError(f"{self.name} must be a non-negative integer, got {value!r}.")
        return int(value)


# build(spec, raw, options) -> {split: (x (n,16,16) float32, y (n,) int64)} for "train", "test"
# and every extra test split; `raw` maps each raw file name to its verified decompressed bytes.
Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]
BuildFn = Callable[["DatasetSpec", Mapping[str, bytes], Mapping[str, object]], Splits]


@dataclass(frozen=True, eq=False)  # eq=False: identity hash, the mappings are not hashable
class DatasetSpec:
    """Everything that defines one dataset (see repro.data.registry)."""

    name: str
    description: str  # one line
    subdir: str  # folder of <data_dir> that holds the raw files
    raw_files: tuple[RawFile, ...]
    build: BuildFn
    n_train: int
    n_test: int
    params: Mapping[str, object] = field(default_factory=dict)  # fixed; enter the fingerprint
    options: tuple[Option, ...] = ()  # user-settable; enter the fingerprint
    extra_tests: Mapping[str, int] = field(default_factory=dict)  # extra evaluation split sizes
    prep_version: int = 1  # bump when the build's output changes: old caches are then not found

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": self.n_train, "test": self.n_test, **self.extra_tests}


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value to compare
class Dataset:
    """Loaded tensors: images (n, 16, 16) float32 in [-1, 1], labels (n,) int64 in 0-9."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    fingerprint: str  # hex; identifies source checksums + preparation parameters and options
    extra_tests: Mapping[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    options: Mapping[str, object] = field(default_factory=dict)  # e.g. mnist_order, mnist_seed

    @property
    def n_train(self) -> int:
        return int(self.y_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.y_test.shape[0])

    @property
    def test_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Every evaluation split: "test" first, then the extra ones (e.g. "test10k")."""
        return {"test": (self.x_test, self.y_test), **self.extra_tests}

    def __repr__(self) -> str:  # the default repr would print the tensors
        extra = "".join(f", {k}={tuple(x.shape)}" for k, (x, _) in self.extra_tests.items())
        return (
            f"Dataset(name={self.name!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}{extra}, fingerprint={self.fingerprint!r})"
        )
