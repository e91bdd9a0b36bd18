"""`repro predict`: a user's image prepared like a dataset's digits (repro/predict.py), and the command."""

import gzip

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from repro.cli import main
from repro.data.mnist16 import mnist_resize, parse_idx
from repro.predict import PredictError, predict, prepare_image
from repro.resources import ladder_dir

from .conftest import REPO, data_dir

RESULTS = REPO / "results"
N_MNIST = 30


def _save(pixels: np.ndarray, path, scale: int, dark_on_light: bool):
    """A [-1, 1] digit (ink +1) as a PNG `scale` times larger, nearest-neighbour: as a scan would show it."""
    gray = (pixels + 1) * 127.5
    gray = 255 - gray if dark_on_light else gray
    big = np.kron(np.round(gray).astype(np.uint8), np.ones((scale, scale), dtype=np.uint8))
    Image.fromarray(big, "L").convert("RGB").save(path)
    return path


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().double(), b.flatten().double())[0, 1])


def test_a_usps_test_digit_scanned_back_is_the_digit_again(usps, tmp_path):
    # usps digits fill their 16x16 frame already: scaled up 8 times and prepared, each comes back close to itself
    for k in range(20):
        x = usps.x_test[k]
        for dark in (True, False):  # a scan and the data's own polarity, told apart by the border
            got = prepare_image(_save(x.numpy(), tmp_path / f"{k}-{dark}.png", 8, dark), "usps")
            assert got.shape == (16, 16) and got.dtype == torch.float32
            assert -1 <= got.min() and got.max() <= 1
            assert _corr(got, x) > 0.85, k


def test_an_mnist_digit_is_prepared_as_mnist16_prepares_it(tmp_path):
    # MNIST's own 28x28 digits are already boxed to 20 px and centred by mass: prepared from a 4x scan of one,
    # the input is close to the dataset's own 16x16 of it (strokes 1-2 px wide there: a pixel's shift costs
    # much correlation), and the top rung reads both alike
    raw = gzip.decompress((data_dir() / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    labels = parse_idx(gzip.decompress((data_dir() / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()), "t10k",
                       0x0801, (10000,))[:N_MNIST]
    images = parse_idx(raw, "t10k", 0x0803, (10000, 28, 28))[:N_MNIST]
    own = mnist_resize(images)
    pngs = [_save(images[k].numpy() / 127.5 - 1, tmp_path / f"{k}.png", 4, dark_on_light=True) for k in range(N_MNIST)]
    corr = [_corr(prepare_image(png, "mnist16"), own[k]) for k, png in enumerate(pngs)]
    said = [a.digit for _, _, [a] in predict(pngs, "mnist16", RESULTS, ladder_dir(), ("long",))]
    # measured on these 30: correlation 0.49-1.00, median 0.82; `long` reads 29 of 30 as labelled
    assert min(corr) > 0.4 and np.median(corr) > 0.7, corr
    assert sum(s == int(y) for s, y in zip(said, labels)) >= N_MNIST - 2, (said, labels)


def test_every_rungs_net_answers_a_drawn_digit(usps, tmp_path):
    png = _save(usps.x_test[0].numpy(), tmp_path / "digit.png", 6, dark_on_light=True)
    [(path, x, answers)] = predict([png], "usps", RESULTS, ladder_dir())
    assert [a.label for a in answers] == ["baseline", "relu", "adamw", "lr-decay", "dropout", "shift", "long",
                                          "scaled-tanh", "literal-init", "paper", "target-1.2", "fc40"]
    assert sum(a.digit == int(usps.y_test[0]) for a in answers) >= 10  # a clear digit: (nearly) all agree
    assert all(len(a.outputs) == 10 for a in answers)


def test_the_command_prints_each_rungs_answer_and_refuses_a_bad_file(usps, tmp_path):
    png = _save(usps.x_test[1].numpy(), tmp_path / "digit.jpg", 5, dark_on_light=True)  # a JPEG, as a photo
    run = CliRunner().invoke(main, ["predict", str(png), "--dataset", "mnist16", "--rung", "long", "--rung", "relu"])
    assert run.exit_code == 0, run.output
    rows = [line.split() for line in run.output.splitlines()[2:]]
    assert [r[0] for r in rows] == ["relu", "long"] and all(len(r) == 12 for r in rows)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    run = CliRunner().invoke(main, ["predict", str(bad)])
    assert run.exit_code == 1 and "not an image Pillow can read" in run.output
    run = CliRunner().invoke(main, ["predict", str(png), "--rung", "nonesuch"])
    assert run.exit_code == 1 and "nonesuch" in run.output


def test_a_blank_image_has_no_ink(tmp_path):
    Image.new("RGB", (50, 40), (250, 250, 245)).save(tmp_path / "blank.png")
    with pytest.raises(PredictError, match="no ink"):
        prepare_image(tmp_path / "blank.png", "usps")
