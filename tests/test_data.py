"""Tests for repro.data.

The real data is found through REPRO_DATA_DIR (CI points it at the shared folder), else at
../shared/data next to the repository. Missing data is a test failure, never a skip. The tests
never touch the network (repro.data._download is replaced) and never write into the data folder:
they work on temporary folders holding symlinks to, or edited copies of, the raw files.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import repro.data as data
from repro.data.mnist16 import parse_idx
from repro.data.registry import SHA256
from repro.data import (
    DATASETS,
    REGISTRY,
    DataError,
    Dataset,
    load_dataset,
    resolve_data_dir,
    summary,
)

USPS_TRAIN_COUNTS = [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
USPS_TEST_COUNTS = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
USPS_FILES = ("zip.train.gz", "zip.test.gz")
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
SUBDIR = {**{f: "usps" for f in USPS_FILES}, **{f: "mnist" for f in MNIST_FILES}}

# sha256 of x.numpy().tobytes() + y.numpy().tobytes() of each mnist16 split, computed with this
# module's procedure (Karpathy's prepro.py: np.random.seed(1337), permutation per split in the
# given order, x/127.5-1 then bilinear 28->16) with torch 2.13.0 on x86-64 CPU.
MNIST16_SHA256 = {
    "train-first": {
        "train": "cdf44d8f52d088b19ba4910506746a11c28954a7f7c5cf8e7dcb40bfb51e4238",
        "test": "0630efd42114026601d0b55884be59366948e08f34e6999aeb3bc220426afdd5",
        "test10k": "8322f48dd069c85b8b7bc7b474f97dd77f98f2ac39a357a31fc6cdbcaaa29c6c",
    },
    "test-first": {
        "train": "23433dfa1bca9e055e29d42dd8821aa70c997a34267b92be5b49b1c210a57845",
        "test": "da83849d143fbfe89dbfbf8d140f15c43cd8c3dba8b67c266eafa5467d78cb84",
        "test10k": "8322f48dd069c85b8b7bc7b474f97dd77f98f2ac39a357a31fc6cdbcaaa29c6c",
    },
}


def _source_dir() -> Path:
    env = os.environ.get("REPRO_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def _source_file(name: str) -> Path:
    src = _source_dir()
    for p in (src / SUBDIR[name] / name, src / name):
        if p.is_file():
            return p
    pytest.fail(
        f"raw data file {name} not found under {src}; set REPRO_DATA_DIR to the shared data folder"
    )


@pytest.fixture(scope="module")
def linked_dir(tmp_path_factory) -> Path:
    """A fresh data dir whose raw files are symlinks to the real ones (so caches land in tmp)."""
    root = tmp_path_factory.mktemp("linked")
    for name in USPS_FILES + MNIST_FILES:
        (root / SUBDIR[name]).mkdir(exist_ok=True)
        (root / SUBDIR[name] / name).symlink_to(_source_file(name).resolve())
    return root


@pytest.fixture(scope="module")
def usps(linked_dir) -> Dataset:
    return load_dataset("usps", linked_dir, download=False, cache=False)


@pytest.fixture(scope="module")
def mnist(linked_dir) -> Dataset:
    return load_dataset("mnist16", linked_dir, download=False, cache=False)  # the default: test-first


@pytest.fixture(scope="module")
def mnist_train_first(linked_dir) -> Dataset:
    return load_dataset("mnist16", linked_dir, download=False, cache=False, mnist_order="train-first")


@pytest.fixture(scope="module")
def mnist_raw() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """split -> (uint8 images (N, 28, 28), labels (N,)), read here without repro.data."""
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        img = gzip.decompress(_source_file(f"{prefix}-images-idx3-ubyte.gz").read_bytes())
        lab = gzip.decompress(_source_file(f"{prefix}-labels-idx1-ubyte.gz").read_bytes())
        out[split] = (
            np.frombuffer(img, np.uint8, offset=16).reshape(-1, 28, 28),
            np.frombuffer(lab, np.uint8, offset=8),
        )
    return out


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any download attempt fails like an offline machine; tests may install their own fake."""
    calls = []

    def offline(url, dest, timeout):
        calls.append(url)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(data, "_download", offline)
    return calls


def _write_usps(dir_: Path, name: str, edit=None) -> bytes:
    """Copy a usps file into dir_/usps/, optionally editing its decompressed text."""
    raw = gzip.decompress(_source_file(name).read_bytes())
    if edit is not None:
        raw = edit(raw)
    (dir_ / "usps").mkdir(parents=True, exist_ok=True)
    (dir_ / "usps" / name).write_bytes(gzip.compress(raw, compresslevel=1))
    return raw


def _edit_first_row(fn):
    """An edit for _write_usps that rewrites the tokens of the first line with fn."""

    def edit(raw: bytes) -> bytes:
        first, rest = raw.split(b"\n", 1)
        return b" ".join(fn(first.split())) + b"\n" + rest

    return edit


def _set(i: int, value: bytes):
    return _edit_first_row(lambda toks: toks[:i] + [value] + toks[i + 1 :])


def _as_bytes(ds: Dataset) -> bytes:
    extra = [t for xy in ds.extra_tests.values() for t in xy]
    tensors = (ds.x_train, ds.y_train, ds.x_test, ds.y_test, *extra)
    return b"".join(t.numpy().tobytes() for t in tensors)


def _split_sha256(x: torch.Tensor, y: torch.Tensor) -> str:
    h = hashlib.sha256(x.numpy().tobytes())
    h.update(y.numpy().tobytes())
    return h.hexdigest()


def _prepro_draws(order: str) -> dict[str, np.ndarray]:
    """The indices of prepro.py, recomputed with numpy's global stream (state restored after)."""
    state = np.random.get_state()
    try:
        np.random.seed(1337)
        n = {"train": (60000, 7291), "test": (10000, 2007)}
        first = ("train", "test") if order == "train-first" else ("test", "train")
        return {s: np.random.permutation(n[s][0])[: n[s][1]] for s in first}
    finally:
        np.random.set_state(state)


def _bilinear_16(img28: np.ndarray) -> np.ndarray:
    """x/127.5-1 then a 28->16 bilinear resize with half-pixel centres (align_corners=False)."""
    x = img28.astype(np.float64) / 127.5 - 1.0
    src = np.maximum((np.arange(16) + 0.5) * 28 / 16 - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, 27)
    w = src - i0
    rows = x[i0] * (1 - w)[:, None] + x[i1] * w[:, None]
    return rows[:, i0] * (1 - w) + rows[:, i1] * w


# --------------------------------------------------------------------------- real data


def test_usps_shapes_dtypes_range_counts(usps):
    assert usps.name == "usps"
    assert usps.x_train.shape == (7291, 16, 16) and usps.x_test.shape == (2007, 16, 16)
    assert usps.y_train.shape == (7291,) and usps.y_test.shape == (2007,)
    assert usps.x_train.dtype == usps.x_test.dtype == torch.float32
    assert usps.y_train.dtype == usps.y_test.dtype == torch.int64
    for x in (usps.x_train, usps.x_test):
        assert x.min() >= -1 and x.max() <= 1
        assert x.min() == -1 and x.max() == 1  # the ESL files use the full range
    assert torch.bincount(usps.y_train, minlength=10).tolist() == USPS_TRAIN_COUNTS
    assert torch.bincount(usps.y_test, minlength=10).tolist() == USPS_TEST_COUNTS
    assert len(usps.fingerprint) == 16 and int(usps.fingerprint, 16) >= 0


def test_usps_first_row_matches_text(usps):
    first = gzip.decompress(_source_file("zip.train.gz").read_bytes()).split(b"\n", 1)[0].split()
    assert usps.y_train[0].item() == int(float(first[0]))
    expected = torch.tensor([float(v) for v in first[1:]], dtype=torch.float32).reshape(16, 16)
    assert torch.equal(usps.x_train[0], expected)  # row-major


def test_mnist16_shapes_range(mnist):
    assert mnist.name == "mnist16"
    assert mnist.x_train.shape == (7291, 16, 16) and mnist.x_test.shape == (2007, 16, 16)
    assert mnist.y_train.shape == (7291,) and mnist.y_test.shape == (2007,)
    assert (mnist.n_train, mnist.n_test) == (7291, 2007)
    assert list(mnist.extra_tests) == ["test10k"]
    x_full, y_full = mnist.extra_tests["test10k"]
    assert x_full.shape == (10000, 16, 16) and y_full.shape == (10000,)
    assert list(mnist.test_splits) == ["test", "test10k"]
    assert mnist.x_train.dtype == x_full.dtype == torch.float32
    assert mnist.y_train.dtype == y_full.dtype == torch.int64
    for x, y in ((mnist.x_train, mnist.y_train), (mnist.x_test, mnist.y_test), (x_full, y_full)):
        assert x.min() >= -1 and x.max() <= 1
        assert x.min() == -1  # MNIST background is 0 -> -1
        assert set(y.unique().tolist()) == set(range(10))
    assert mnist.options == {"mnist_seed": 1337, "mnist_order": "test-first"}


@pytest.mark.parametrize("order", ["train-first", "test-first"])
def test_mnist16_tensors_sha256(order, mnist, mnist_train_first):
    ds = mnist if order == "test-first" else mnist_train_first
    assert ds.options["mnist_order"] == order
    assert (ds.n_train, ds.n_test, len(ds.extra_tests["test10k"][1])) == (7291, 2007, 10000)
    splits = {"train": (ds.x_train, ds.y_train), **ds.test_splits}
    got = {s: _split_sha256(x, y) for s, (x, y) in splits.items()}
    assert got == MNIST16_SHA256[order]


def test_mnist16_orders_differ(mnist, mnist_train_first):
    a, b = mnist, mnist_train_first
    assert a.fingerprint != b.fingerprint
    assert not torch.equal(a.x_train, b.x_train) and not torch.equal(a.y_test, b.y_test)
    assert _as_bytes(Dataset("x", *a.extra_tests["test10k"], *a.extra_tests["test10k"], "")) == _as_bytes(
        Dataset("x", *b.extra_tests["test10k"], *b.extra_tests["test10k"], "")
    )  # the full test set does not depend on the draw


@pytest.mark.parametrize("order", ["train-first", "test-first"])
def test_mnist16_follows_prepro(order, mnist, mnist_train_first, mnist_raw):
    """Indices from numpy's global stream, pixels from a numpy bilinear resize written here."""
    ds = mnist if order == "test-first" else mnist_train_first
    idx = _prepro_draws(order)
    splits = {"train": (ds.x_train, ds.y_train), "test": (ds.x_test, ds.y_test)}
    for split, (x, y) in splits.items():
        images, labels = mnist_raw[split]
        assert y.tolist() == labels[idx[split]].tolist()
        for i in (0, 1, 2, 1000, len(y) - 1):
            expected = _bilinear_16(images[idx[split][i]])
            assert np.abs(x[i].numpy().astype(np.float64) - expected).max() < 1e-6, (split, i)
    x_full, y_full = ds.extra_tests["test10k"]
    assert y_full.tolist() == mnist_raw["test"][1].tolist()
    for i in (0, 4321, 9999):
        assert np.abs(x_full[i].numpy() - _bilinear_16(mnist_raw["test"][0][i])).max() < 1e-6
    # The sampled test split is exactly a subset of the full one.
    assert torch.equal(ds.x_test, x_full[torch.from_numpy(idx["test"])])


def test_mnist16_deterministic_and_seeded(mnist, tmp_path):
    other = tmp_path / "other"
    for name in MNIST_FILES:
        (other / "mnist").mkdir(parents=True, exist_ok=True)
        (other / "mnist" / name).symlink_to(_source_file(name).resolve())
    again = load_dataset("mnist16", other, download=False, cache=False, mnist_order=None)
    assert again.fingerprint == mnist.fingerprint
    assert _as_bytes(again) == _as_bytes(mnist)

    seeded = load_dataset("mnist16", other, download=False, cache=False, mnist_seed=1)
    assert seeded.fingerprint != mnist.fingerprint
    assert not torch.equal(seeded.x_train, mnist.x_train)
    assert seeded.options == {"mnist_seed": 1, "mnist_order": "test-first"}


def test_mnist16_options_in_fingerprint():
    spec = REGISTRY["mnist16"]
    fps = {
        data._fingerprint(spec, {"mnist_seed": s, "mnist_order": o})
        for s in (0, 1337)
        for o in ("train-first", "test-first")
    }
    assert len(fps) == 4


def test_mnist16_cache_keeps_extra_split(tmp_path, mnist, monkeypatch):
    for name in MNIST_FILES:
        (tmp_path / name).symlink_to(_source_file(name).resolve())
    first = load_dataset("mnist16", tmp_path, download=False)
    assert first.fingerprint == mnist.fingerprint
    assert (tmp_path / "prepared" / f"mnist16-{mnist.fingerprint}.pt").is_file()
    with monkeypatch.context() as m:
        m.setattr(data, "_build", lambda *a, **k: pytest.fail("cache not used"))
        cached = load_dataset("mnist16", tmp_path, download=False)
    assert _as_bytes(cached) == _as_bytes(mnist)
    assert list(cached.extra_tests) == ["test10k"] and cached.options == mnist.options


def test_fingerprints_differ_between_datasets(usps, mnist):
    assert usps.fingerprint != mnist.fingerprint


def test_summary(usps, mnist):
    text = summary(usps)
    assert usps.fingerprint in text and "usps" in text
    for n in USPS_TRAIN_COUNTS + USPS_TEST_COUNTS + [7291, 2007]:
        assert str(n) in text
    assert "-1.0000" in text and "1.0000" in text
    assert len(text.splitlines()) <= 24
    text = summary(mnist)
    assert "mnist_order=test-first" in text and "mnist_seed=1337" in text
    assert "test10k" in text and "10000" in text
    assert len(text.splitlines()) <= 24


def test_registry_describes_each_dataset():
    assert DATASETS == tuple(REGISTRY) == ("usps", "mnist16")
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.subdir == SUBDIR[spec.raw_files[0].name]
        assert (spec.n_train, spec.n_test) == (7291, 2007)
        for rf in spec.raw_files:
            assert SHA256[rf.name] == rf.sha256 and len(rf.sha256) == 64 and rf.urls
    assert [rf.name for rf in REGISTRY["usps"].raw_files] == list(USPS_FILES)
    assert [rf.name for rf in REGISTRY["mnist16"].raw_files] == list(MNIST_FILES)
    assert data.dataset_spec("mnist16") is REGISTRY["mnist16"]
    assert data.dataset_spec("mnist16").extra_tests == {"test10k": 10000}
    with pytest.raises(DataError, match="usps"):
        data.dataset_spec("mnist")
    # Results recorded before the registry existed keep their usps fingerprint.
    assert data._fingerprint(REGISTRY["usps"], {}) == "2c8560c6fec64987"


def test_dataset_sizes_and_positional_construction():
    ds = Dataset("usps", torch.zeros(5, 16, 16), torch.zeros(5, dtype=torch.int64),
                 torch.zeros(3, 16, 16), torch.zeros(3, dtype=torch.int64), "fp")
    assert (ds.n_train, ds.n_test) == (5, 3)
    assert ds.extra_tests == {} and ds.options == {} and list(ds.test_splits) == ["test"]


def test_dataset_is_frozen(usps):
    with pytest.raises(dataclasses.FrozenInstanceError):
        usps.name = "x"  # type: ignore[misc]
    assert "usps" in repr(usps) and len(repr(usps)) < 200


# --------------------------------------------------------------------------- cache


def test_cache_round_trip(linked_dir, usps, monkeypatch):
    first = load_dataset("usps", linked_dir, download=False)
    cache_file = linked_dir / "prepared" / f"usps-{usps.fingerprint}.pt"
    assert cache_file.is_file()
    assert [p.name for p in cache_file.parent.iterdir()] == [cache_file.name]  # no temp leftovers
    assert _as_bytes(first) == _as_bytes(usps)

    def no_build(*args, **kwargs):
        raise AssertionError("cache not used")

    with monkeypatch.context() as m:
        m.setattr(data, "_build", no_build)
        cached = load_dataset("usps", linked_dir, download=False)
    assert cached.fingerprint == usps.fingerprint
    assert _as_bytes(cached) == _as_bytes(usps)

    # A damaged cache is ignored and rebuilt.
    cache_file.write_bytes(cache_file.read_bytes()[:1000])
    rebuilt = load_dataset("usps", linked_dir, download=False)
    assert _as_bytes(rebuilt) == _as_bytes(usps)
    with monkeypatch.context() as m:
        m.setattr(data, "_build", no_build)
        assert _as_bytes(load_dataset("usps", linked_dir, download=False)) == _as_bytes(usps)


def test_cache_with_tampered_tensors_is_rebuilt(linked_dir, usps):
    load_dataset("usps", linked_dir, download=False)
    cache_file = linked_dir / "prepared" / f"usps-{usps.fingerprint}.pt"
    d = torch.load(cache_file, weights_only=True)
    d["x_train"][0, 0, 0] = 0.5  # silent corruption with valid shapes
    torch.save(d, cache_file)
    assert _as_bytes(load_dataset("usps", linked_dir, download=False)) == _as_bytes(usps)


def test_read_only_dir_skips_cache(tmp_path, usps):
    for name in USPS_FILES:
        _write_usps(tmp_path, name)
    tmp_path.chmod(0o555)
    try:
        ds = load_dataset("usps", tmp_path, download=False)
    finally:
        tmp_path.chmod(0o755)
    assert _as_bytes(ds) == _as_bytes(usps)
    assert not (tmp_path / "prepared").exists()


def test_files_directly_in_data_dir_are_accepted(tmp_path, usps):
    for name in USPS_FILES:
        (tmp_path / name).symlink_to(_source_file(name).resolve())
    ds = load_dataset("usps", tmp_path, download=False, cache=False)
    assert _as_bytes(ds) == _as_bytes(usps)


# --------------------------------------------------------------------------- bad data


def test_checksum_mismatch(tmp_path, no_network):
    _write_usps(tmp_path, "zip.train.gz")
    _write_usps(tmp_path, "zip.test.gz", edit=_set(1, b"-0.999"))
    with pytest.raises(DataError) as e:
        load_dataset("usps", tmp_path)
    msg = str(e.value)
    assert "zip.test.gz" in msg
    assert SHA256["zip.test.gz"] in msg
    assert "not used" in msg
    assert not (tmp_path / "prepared").exists()
    assert no_network == []  # a present-but-wrong file is reported, not re-downloaded


def test_truncated_gzip(tmp_path):
    _write_usps(tmp_path, "zip.train.gz")
    blob = _source_file("zip.test.gz").read_bytes()
    (tmp_path / "usps" / "zip.test.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"zip\.test\.gz.*gzip"):
        load_dataset("usps", tmp_path, download=False)
    assert not (tmp_path / "prepared").exists()


def test_not_gzip(tmp_path):
    _write_usps(tmp_path, "zip.train.gz")
    (tmp_path / "usps" / "zip.test.gz").write_bytes(b"this is not gzip data")
    with pytest.raises(DataError, match=r"zip\.test\.gz.*gzip"):
        load_dataset("usps", tmp_path, download=False)


def _edited_but_trusted(tmp_path, monkeypatch, edit):
    """Write an edited zip.test.gz and accept its checksum, so the format checks are reached."""
    _write_usps(tmp_path, "zip.train.gz")
    raw = _write_usps(tmp_path, "zip.test.gz", edit=edit)
    spec = REGISTRY["usps"]
    files = tuple(
        dataclasses.replace(rf, sha256=hashlib.sha256(raw).hexdigest()) if rf.name == "zip.test.gz" else rf
        for rf in spec.raw_files
    )
    monkeypatch.setitem(REGISTRY, "usps", dataclasses.replace(spec, raw_files=files))
    with pytest.raises(DataError) as e:
        load_dataset("usps", tmp_path, download=False)
    assert not (tmp_path / "prepared").exists()
    return str(e.value)


def test_wrong_number_of_rows(tmp_path, monkeypatch):
    msg = _edited_but_trusted(tmp_path, monkeypatch, lambda raw: raw.split(b"\n", 1)[1])
    assert "zip.test.gz" in msg and "2007" in msg and "2006" in msg


def test_wrong_number_of_values(tmp_path, monkeypatch):
    drop_one = _edit_first_row(lambda toks: toks[:1] + toks[2:])
    msg = _edited_but_trusted(tmp_path, monkeypatch, drop_one)
    assert "zip.test.gz" in msg and "257" in msg


def test_value_out_of_range(tmp_path, monkeypatch):
    msg = _edited_but_trusted(tmp_path, monkeypatch, _set(1, b"-1.5"))
    assert "zip.test.gz" in msg and "[-1, 1]" in msg


def test_bad_label(tmp_path, monkeypatch):
    msg = _edited_but_trusted(tmp_path, monkeypatch, _set(0, b"12"))
    assert "zip.test.gz" in msg and "0-9" in msg


def test_idx_header_checks():
    good = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    assert parse_idx(good, "f", 0x801, (3,)).tolist() == [1, 2, 3]
    with pytest.raises(DataError, match="magic"):
        parse_idx(bytes([0, 0, 8, 3]) + good[4:], "f", 0x801, (3,))
    with pytest.raises(DataError, match="shape"):
        parse_idx(good, "f", 0x801, (4,))
    with pytest.raises(DataError, match="data bytes"):
        parse_idx(good[:-1], "f", 0x801, (3,))
    with pytest.raises(DataError, match="header"):
        parse_idx(good[:5], "f", 0x803, (3, 28, 28))


# --------------------------------------------------------------------------- missing data


@pytest.mark.parametrize("name", DATASETS)
def test_offline_message_names_every_file(tmp_path, name, no_network):
    with pytest.raises(DataError) as e:
        load_dataset(name, tmp_path, download=False)
    msg = str(e.value)
    files = USPS_FILES if name == "usps" else MNIST_FILES
    for f in files:
        assert f in msg
        assert SHA256[f] in msg
        assert str(tmp_path / SUBDIR[f]) in msg
    assert "--data-dir" in msg and "REPRO_DATA_DIR" in msg
    assert no_network == []  # download=False really means no download


def test_failed_download_message(tmp_path, no_network):
    with pytest.raises(DataError) as e:
        load_dataset("mnist16", tmp_path, download=True)
    msg = str(e.value)
    for f in MNIST_FILES:
        assert f in msg and SHA256[f] in msg
    assert "network disabled in tests" in msg
    assert len(no_network) == 8  # both mirrors tried for each of the four files
    assert list((tmp_path / "mnist").iterdir()) == []  # no partial downloads left behind


def test_download_is_verified_and_installed(tmp_path, monkeypatch, usps):
    def fake(url, dest, timeout):
        Path(dest).write_bytes(_source_file(url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(data, "_download", fake)
    ds = load_dataset("usps", tmp_path, download=True, cache=False)
    assert _as_bytes(ds) == _as_bytes(usps)
    assert sorted(p.name for p in (tmp_path / "usps").iterdir()) == sorted(USPS_FILES)


def test_bad_download_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(
        data, "_download", lambda url, dest, timeout: Path(dest).write_bytes(gzip.compress(b"x"))
    )
    with pytest.raises(DataError, match="wrong sha256"):
        load_dataset("usps", tmp_path, download=True)
    assert list((tmp_path / "usps").iterdir()) == []


def test_unreadable_directory(tmp_path, monkeypatch):
    locked = tmp_path / "usps"
    locked.mkdir()
    locked.chmod(0)
    if os.access(locked, os.R_OK | os.X_OK):  # running as root: permissions do not bind
        real_access = os.access

        def access(p, mode, **kw):
            return Path(p) != locked and real_access(p, mode, **kw)

        monkeypatch.setattr(data.os, "access", access)
    try:
        with pytest.raises(DataError, match="not readable"):
            load_dataset("usps", tmp_path, download=False)
    finally:
        (tmp_path / "usps").chmod(0o755)


def test_data_dir_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="not a directory"):
        load_dataset("usps", tmp_path / "f", download=False)


def test_unknown_dataset_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="usps"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match="mnist_seed"):
        load_dataset("mnist16", tmp_path, mnist_seed=-1)
    with pytest.raises(DataError, match="mnist_order.*train-first.*test-first"):
        load_dataset("mnist16", tmp_path, mnist_order="random")
    with pytest.raises(DataError, match="mnist_order"):
        load_dataset("usps", tmp_path, mnist_order="random")  # checked even where unused
    with pytest.raises(TypeError, match="mnist_sed"):
        load_dataset("mnist16", tmp_path, mnist_sed=1)


# --------------------------------------------------------------------------- data dir


def test_resolve_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("REPRO_DATA_DIR")
    assert resolve_data_dir() == tmp_path / "xdg" / "lecun1989"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "lecun1989"
    assert isinstance(resolve_data_dir(), Path)


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
                    reason="torch's baseline interpolate kernel rounds otherwise (what mnist_resize is written to avoid)")
def test_mnist_resize_is_torchs_avx2_interpolate_on_every_mnist_image(mnist_raw):
    """mnist_resize writes out the arithmetic of torch's AVX2/AVX-512 bilinear kernel (prepro.py's call), so that
    it is the same bits on every CPU: checked here against that kernel on all 70,000 images."""
    from repro.data.mnist16 import mnist_resize

    for images, _ in mnist_raw.values():
        raw = torch.from_numpy(images.copy())
        x = raw.to(torch.float32) / 127.5 - 1.0
        want = torch.nn.functional.interpolate(x.unsqueeze(1), size=(16, 16), mode="bilinear", align_corners=False,
                                               antialias=False).squeeze(1)
        assert torch.equal(mnist_resize(raw), want)
