"""``usps`` (the default dataset): parsing its raw files into tensors.

The U.S. Postal Service zip-code digits used by LeCun et al. (1989), as distributed with
*The Elements of Statistical Learning* (https://hastie.su.domains/ElemStatLearn/datasets/):
``zip.train.gz`` (7291 lines) and ``zip.test.gz`` (2007 lines). Each line is gzip-compressed
text holding the digit (written as e.g. ``6.0000``) followed by 256 gray levels in [-1, 1],
row-major 16x16. The values are used as they are.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from repro.data.spec import IMAGE_SIZE, DataError, DatasetSpec, Splits


def _parse_usps(raw: bytes, fname: str, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (n,16,16) float32, labels (n,) int64) from the ESL text format."""
    try:
        lines = [ln for ln in raw.decode("ascii").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise DataError(f"{fname}: expected plain ASCII text, found binary data.") from None
    if len(lines) != n_rows:
        raise DataError(f"{fname}: expected {n_rows} rows, found {len(lines)}.")
    rows = [ln.split() for ln in lines]
    width = 1 + IMAGE_SIZE * IMAGE_SIZE
    for i, r in enumerate(rows):
        if len(r) != width:
            raise DataError(
                f"{fname}, line {i + 1}: expected {width} values (a digit then "
                f"{IMAGE_SIZE}x{IMAGE_SIZE} pixels), found {len(r)}."
            )
    try:
        # Parse in float64 then round once to float32, so the bytes do not depend on the parser.
        table = np.array(rows, dtype=np.float64)
    except ValueError as e:
        raise DataError(f"{fname}: expected only numbers ({e}).") from None
    labels, pixels = table[:, 0], table[:, 1:]
    bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0) | (labels > 9))
    if bad.size:
        raise DataError(
            f"{fname}, line {bad[0] + 1}: expected a digit label 0-9, found {labels[bad[0]]}."
        )
    if not np.all(np.isfinite(pixels)) or pixels.min() < -1 or pixels.max() > 1:
        raise DataError(f"{fname}: expected pixel values in [-1, 1], found values outside.")
    x = torch.from_numpy(pixels.astype(np.float32).reshape(n_rows, IMAGE_SIZE, IMAGE_SIZE))
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def build_usps(spec: DatasetSpec, raw: Mapping[str, bytes], options: Mapping) -> Splits:
    return {
        "train": _parse_usps(raw["zip.train.gz"], "zip.train.gz", spec.n_train),
        "test": _parse_usps(raw["zip.test.gz"], "zip.test.gz", spec.n_test),
    }
