"""`repro predict`: a digit image of one's own, prepared to look like a dataset's digits, read by the seed-0 nets.

The preparation, step by step (the page's drawing pad, repro/page/page.js `prepareInk`, repeats it number for
number, in the same order of float64 operations, and tests/test_page.py checks that the two agree):

1. gray levels 0-255 (Pillow's "L"; transparent pixels count as white paper);
2. ink: dark ink on light paper (a scan, a photo, the page's pad) is inverted so that ink is bright, as in the
   datasets; which of the two an image is, is told by its border (mean gray above 127.5: light paper), or set;
3. the paper's level (median of the border) is taken off and the ink stretched to 0-255;
4. the ink's bounding box (ink above 64) is cut out, then
   - usps: its longer side scaled to 16 px (area averaging), centred in the 16x16 frame, as the USPS digits
     are size-normalised to fill the frame; x / 127.5 - 1;
   - mnist16: its longer side scaled to 20 px, placed in a 28x28 field so that its centre of mass falls on
     the field's centre (as MNIST was made), rounded to bytes, then the dataset's own resize
     (repro.data.mnist16.mnist_resize: x / 127.5 - 1, bilinear to 16x16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from repro.data.mnist16 import mnist_resize
from repro.data.spec import IMAGE_SIZE
from repro.errors import ReproError

INK_LEVEL = 64  # ink above this (of 255, after stretching) bounds the digit
MNIST_BOX = 20  # MNIST's digits: the longer side of the bounding box scaled to 20 px ...
MNIST_FIELD = 28  # ... in a 28x28 field
POLARITIES = ("auto", "dark-on-light", "light-on-dark")


class PredictError(ReproError, ValueError):
    """An image that cannot be read, or holds no ink."""


def read_gray(path: Path) -> np.ndarray:
    """(H, W) float64 gray levels 0-255 of an image file; transparent pixels are white paper."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.is_file():
        raise PredictError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()
            rgba = ImageOps.exif_transpose(im).convert("RGBA")  # a phone's photo, turned as it was taken
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise PredictError(f"{path}: not an image Pillow can read ({e})") from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.float64)


def _round(v: float) -> int:
    """Half up, as the page's Math.floor(v + 0.5) (numpy's round goes half to even)."""
    return int(math.floor(v + 0.5))


def ink_of(gray: np.ndarray, polarity: str = "auto") -> np.ndarray:
    """(H, W) gray 0-255 -> (H, W) float64 ink 0-255 (ink bright, paper 0), stretched; PredictError without ink."""
    if polarity not in POLARITIES:
        raise PredictError(f"unknown polarity {polarity!r}; valid: {', '.join(POLARITIES)}")
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    # the border's mean, summed in order as the page sums it
    light_paper = sum(border.tolist()) / len(border) > 127.5 if polarity == "auto" else polarity == "dark-on-light"
    ink = 255.0 - gray if light_paper else gray
    if light_paper:
        border = 255.0 - border
    level = float(np.sort(border)[len(border) // 2])  # the upper median: one element, as the page takes it
    peak = float(ink.max())
    if peak - level < 32:
        raise PredictError("no ink found: the image is nearly uniform (a digit needs strokes that differ from the "
                           "paper by at least 32 of 255 gray levels)")
    return np.maximum(ink - level, 0.0) * (255.0 / (peak - level))


def area_resize_1d(src: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Resample `src` along `axis` to `size` by area averaging: output i averages input [i n/size, (i+1) n/size),
    each input pixel weighted by its overlap. Sums run in a fixed order (the page's order)."""
    src = np.moveaxis(src, axis, 0)
    n = src.shape[0]
    out = np.empty((size,) + src.shape[1:])
    scale = n / size
    for i in range(size):
        lo, hi = i * n / size, (i + 1) * n / size
        acc = np.zeros(src.shape[1:])
        for k in range(math.floor(lo), math.ceil(hi)):
            acc = acc + (min(hi, k + 1) - max(lo, k)) * src[k]
        out[i] = acc / scale
    return np.moveaxis(out, 0, axis)


def area_resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    return area_resize_1d(area_resize_1d(img, h, 0), w, 1)


def ink_box(ink: np.ndarray, longer: int) -> np.ndarray:
    """The ink's bounding box, its longer side scaled to `longer` px (the other in proportion, at least 1)."""
    rows = np.flatnonzero((ink > INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > INK_LEVEL).any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    side = max(h, w)
    return area_resize(crop, max(1, _round(h * longer / side)), max(1, _round(w * longer / side)))


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(row, column) of the ink's centre of mass, summed in row-major order (the page's order)."""
    total = sy = sx = 0.0
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            v = float(img[r, c])
            total += v
            sy += r * v
            sx += c * v
    return sy / total, sx / total


def prepare_usps(ink: np.ndarray) -> torch.Tensor:
    box = ink_box(ink, IMAGE_SIZE)
    frame = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    top, left = (IMAGE_SIZE - box.shape[0]) // 2, (IMAGE_SIZE - box.shape[1]) // 2
    frame[top:top + box.shape[0], left:left + box.shape[1]] = box
    return torch.from_numpy((frame / 127.5 - 1.0).astype(np.float32))


def prepare_mnist16(ink: np.ndarray) -> torch.Tensor:
    box = ink_box(ink, MNIST_BOX)
    cy, cx = centre_of_mass(box)
    h, w = box.shape
    centre = (MNIST_FIELD - 1) / 2
    top = min(max(_round(centre - cy), 0), MNIST_FIELD - h)
    left = min(max(_round(centre - cx), 0), MNIST_FIELD - w)
    field = np.zeros((MNIST_FIELD, MNIST_FIELD))
    field[top:top + h, left:left + w] = box
    as_bytes = torch.from_numpy(np.floor(np.clip(field, 0, 255) + 0.5).astype(np.uint8))
    return mnist_resize(as_bytes.unsqueeze(0))[0]


PREPARE = {"usps": prepare_usps, "mnist16": prepare_mnist16}


def prepare_image(path: Path, dataset: str, polarity: str = "auto") -> torch.Tensor:
    """An image file -> (16, 16) float32 input in [-1, 1], prepared like `dataset`'s digits (module docstring)."""
    if dataset not in PREPARE:
        raise PredictError(f"unknown dataset {dataset!r}; valid: {', '.join(PREPARE)}")
    return PREPARE[dataset](ink_of(read_gray(Path(path)), polarity))


@dataclass
class Answer:
    label: str  # the configuration (rung) whose seed-0 net answered
    outputs: list[float]  # its ten output values
    digit: int | None  # the top output, None when the top outputs tie (counted wrong by the study)


def answer(label: str, values: torch.Tensor) -> Answer:
    """One net's (10,) output values -> its answer under the study's rule (repro.net.metrics: strictly on top)."""
    top = values.max()
    winners = (values == top).nonzero().flatten().tolist()
    return Answer(label, [float(v) for v in values], winners[0] if len(winners) == 1 else None)


def predict(paths: list[Path], dataset: str, results_dir: Path, ladder_dir: Path, rungs: tuple[str, ...] = (),
            polarity: str = "auto") -> list[tuple[Path, torch.Tensor, list[Answer]]]:
    """Per image: its prepared (16, 16) input and the answer of each seed-0 net of `dataset` under results_dir
    (the page's nets, repro.page.nets; `rungs` picks some), computed as the study computes (float32)."""
    from repro.net.model import forward, outputs
    from repro.page.nets import load_nets

    missing: list[str] = []
    nets = load_nets(results_dir, ladder_dir, warn=missing.append, datasets=(dataset,))
    unknown = sorted(set(rungs) - {n.label for n in nets})
    if unknown:
        raise PredictError(f"no seed-0 net of rung(s) {', '.join(unknown)} for {dataset} under "
                           f"{results_dir}/checkpoints; there: {', '.join(n.label for n in nets) or 'none'}")
    nets = [n for n in nets if not rungs or n.label in rungs]
    if not nets:
        raise PredictError(f"no seed-0 checkpoint of a ladder rung for {dataset} under {results_dir}/checkpoints "
                           "(the committed study's are in a checkout's results/; a workspace's: --results-dir)")
    out = []
    for path in paths:
        x = prepare_image(Path(path), dataset, polarity)
        with torch.no_grad():
            answers = [answer(n.label, outputs(n.cfg, forward(n.state, x.unsqueeze(0), n.cfg))[0]) for n in nets]
        out.append((Path(path), x, answers))
    return out
