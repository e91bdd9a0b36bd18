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

import pytest
import torch

import repro.data as data
from repro.data import (
    DATASETS,
    DataError,
    Dataset,
    load_dataset,
    resolve_data_dir,
    summary,
    targets,
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
    return load_dataset("mnist16", linked_dir, download=False, cache=False)


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
    return b"".join(t.numpy().tobytes() for t in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))


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
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    for x, y in ((mnist.x_train, mnist.y_train), (mnist.x_test, mnist.y_test)):
        assert x.min() >= -1 and x.max() <= 1
        assert x.min() == -1  # MNIST background is 0 -> -1
        assert set(y.unique().tolist()) == set(range(10))


def test_mnist16_deterministic_and_seeded(mnist, linked_dir, tmp_path):
    other = tmp_path / "other"
    for name in MNIST_FILES:
        (other / "mnist").mkdir(parents=True, exist_ok=True)
        (other / "mnist" / name).symlink_to(_source_file(name).resolve())
    again = load_dataset("mnist16", other, download=False, cache=False)
    assert again.fingerprint == mnist.fingerprint
    assert _as_bytes(again) == _as_bytes(mnist)

    # The sampling follows the documented recipe exactly.
    raw_lab = gzip.decompress(_source_file("t10k-labels-idx1-ubyte.gz").read_bytes())[8:]
    idx = torch.randperm(10000, generator=torch.Generator().manual_seed(data.MNIST_SEED + 1))[:2007]
    assert mnist.y_test.tolist() == [raw_lab[i] for i in idx.tolist()]

    seeded = load_dataset("mnist16", other, download=False, cache=False, mnist_seed=1)
    assert seeded.fingerprint != mnist.fingerprint
    assert not torch.equal(seeded.x_train, mnist.x_train)


def test_fingerprints_differ_between_datasets(usps, mnist):
    assert usps.fingerprint != mnist.fingerprint


def test_summary(usps):
    text = summary(usps)
    assert usps.fingerprint in text and "usps" in text
    for n in USPS_TRAIN_COUNTS + USPS_TEST_COUNTS + [7291, 2007]:
        assert str(n) in text
    assert "-1.0000" in text and "1.0000" in text
    assert len(text.splitlines()) <= 24


def test_dataset_is_frozen(usps):
    with pytest.raises(dataclasses.FrozenInstanceError):
        usps.name = "x"  # type: ignore[misc]
    assert "usps" in repr(usps) and len(repr(usps)) < 200


# --------------------------------------------------------------------------- targets


def test_targets():
    t = targets(torch.tensor([0, 3, 9]))
    assert t.shape == (3, 10) and t.dtype == torch.float32
    expected = -torch.ones(3, 10)
    expected[0, 0] = expected[1, 3] = expected[2, 9] = 1
    assert torch.equal(t, expected)
    assert targets(torch.tensor([], dtype=torch.int64)).shape == (0, 10)
    with pytest.raises(ValueError):
        targets(torch.tensor([10]))
    with pytest.raises(ValueError):
        targets(torch.tensor([1.0]))


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
    assert data.SHA256["zip.test.gz"] in msg
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
    monkeypatch.setitem(data.SHA256, "zip.test.gz", hashlib.sha256(raw).hexdigest())
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
    assert data._parse_idx(good, "f", 0x801, (3,)).tolist() == [1, 2, 3]
    with pytest.raises(DataError, match="magic"):
        data._parse_idx(bytes([0, 0, 8, 3]) + good[4:], "f", 0x801, (3,))
    with pytest.raises(DataError, match="shape"):
        data._parse_idx(good, "f", 0x801, (4,))
    with pytest.raises(DataError, match="data bytes"):
        data._parse_idx(good[:-1], "f", 0x801, (3,))
    with pytest.raises(DataError, match="header"):
        data._parse_idx(good[:5], "f", 0x803, (3, 28, 28))


# --------------------------------------------------------------------------- missing data


@pytest.mark.parametrize("name", DATASETS)
def test_offline_message_names_every_file(tmp_path, name, no_network):
    with pytest.raises(DataError) as e:
        load_dataset(name, tmp_path, download=False)
    msg = str(e.value)
    files = USPS_FILES if name == "usps" else MNIST_FILES
    for f in files:
        assert f in msg
        assert data.SHA256[f] in msg
        assert str(tmp_path / SUBDIR[f]) in msg
    assert "--data-dir" in msg and "REPRO_DATA_DIR" in msg
    assert no_network == []  # download=False really means no download


def test_failed_download_message(tmp_path, no_network):
    with pytest.raises(DataError) as e:
        load_dataset("mnist16", tmp_path, download=True)
    msg = str(e.value)
    for f in MNIST_FILES:
        assert f in msg and data.SHA256[f] in msg
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


def test_unknown_dataset_and_bad_seed(tmp_path):
    with pytest.raises(DataError, match="usps"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match="mnist_seed"):
        load_dataset("mnist16", tmp_path, mnist_seed=-1)


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
