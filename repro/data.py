"""Data loading for the LeCun et al. (1989) reproduction.

Every dataset is delivered as 16x16 float32 images in [-1, 1] with int64 labels 0-9, split into
7291 training and 2007 test examples (the sizes used in the paper); a dataset may add further
evaluation splits (``Dataset.extra_tests``). ``Dataset.n_train`` / ``Dataset.n_test`` give the
sizes, so no other module needs to know them.

``usps`` (default)
    The U.S. Postal Service zip-code digits used by LeCun et al. (1989), as distributed with
    *The Elements of Statistical Learning* (https://hastie.su.domains/ElemStatLearn/datasets/):
    ``zip.train.gz`` (7291 lines) and ``zip.test.gz`` (2007 lines). Each line is gzip-compressed
    text holding the digit (written as e.g. ``6.0000``) followed by 256 gray levels in [-1, 1],
    row-major 16x16. The values are used as they are.

``mnist16``
    The MNIST stand-in of Karpathy's 2022 "lecun1989-repro", drawn exactly as its ``prepro.py``
    draws it, but computed from the original MNIST IDX files (gzip-compressed
    ``train-images-idx3-ubyte.gz`` etc.; IDX = big-endian header: magic number 0x0801 for
    unsigned-byte vectors / 0x0803 for unsigned-byte 3-d arrays, then one uint32 per dimension,
    followed by the raw bytes). The procedure:

    * one numpy random stream seeded with 1337 (``np.random.seed(1337)``; here a private
      ``np.random.RandomState(1337)``, which is the same generator without touching global state);
    * for each split in turn, ``permutation(len(split))[:n]`` with n = 7291 for train (of 60,000)
      and 2007 for test (of 10,000); the split drawn second continues the same stream;
    * each chosen 28x28 image is converted to float32, scaled with ``x / 127.5 - 1.0`` and *then*
      resized to 16x16 with ``torch.nn.functional.interpolate(mode="bilinear",
      align_corners=False, antialias=False)`` (the defaults of the original call). No clamping.

    The original loops over the Python *set* ``{'train', 'test'}``, whose iteration order follows
    the string-hash seed, so two draws exist. The option ``mnist_order`` names them:
    ``"train-first"`` (train takes the first permutation after seeding) and ``"test-first"``.

    **Default: "test-first"**, the draw both published runs used, settled by measurement: the
    earlier reproduction's own ``repro.py``, run unchanged (torch 2.13, CPU) on each draw built
    from the raw IDX files, ends its 23 passes at

    ============================  ==========  ============  ==========  ===========
    draw                          train loss  train misses  test loss   test misses
    ============================  ==========  ============  ==========  ===========
    test-first                    3.892e-3    44            2.799e-2    84
    train-first                   5.382e-3    63            2.750e-2    76
    published, 2023 ladder blog   3.880e-3    44            2.824e-2    84
    published, 2022 repro.py      4.073e-3    45            2.838e-2    82
    ============================  ==========  ============  ==========  ===========

    The blog's run equals test-first to the miss; the 2022 run is within one or two misses and a
    few percent of loss of test-first (another torch version's rounding) and far from train-first
    on training loss. ``mnist_order="train-first"`` gives the other draw.

    The full 10,000-image MNIST test set, prepared the same way (no sampling), is the extra
    evaluation split ``Dataset.extra_tests["test10k"] == (x, y)``; the 2007-image ``x_test`` is
    a subset of it.

Each dataset is one :class:`DatasetSpec` in :data:`REGISTRY`: its raw files (with the sha256 of
their decompressed contents and their public sources), the sub-folder holding them, the split
sizes, the fixed preparation parameters and the user options that enter the cache fingerprint,
and a build function from verified raw bytes to tensors. Adding a dataset is one entry plus its
build function.

Raw files are looked up in ``<data_dir>/<subdir>/`` (``usps/``, ``mnist/``), falling back to
``<data_dir>/`` itself, and are always verified by the sha256 of their *decompressed* bytes, so
any gzip wrapping of the same content is accepted. Missing files are downloaded from the public
sources when allowed; otherwise a :class:`DataError` explains exactly what to put where.

Prepared tensors are cached in ``<data_dir>/prepared/<name>-<fingerprint>.pt``. The fingerprint
covers the raw files' checksums, the preparation version and every preparation parameter and
option, so a changed parameter can never pick up a stale cache. A valid cache entry is used
without re-reading the raw files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from repro.atomic_files import atomic_torch_save
from repro.errors import ReproError

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

IMAGE_SIZE = 16
NUM_CLASSES = 10
DOWNLOAD_TIMEOUT_S = 20  # per socket operation; a hung mirror must not hang the run

MNIST_SEED = 1337  # np.random.seed of Karpathy's prepro.py
MNIST_ORDERS = ("train-first", "test-first")  # which split takes the first permutation draw
MNIST_ORDER = "test-first"  # default: the draw of the published runs; see the module docstring


class DataError(ReproError):
    """A data problem the user must fix; the message is the whole explanation."""


# --------------------------------------------------------------------------- descriptions


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
    """Everything that defines one dataset (see the module docstring)."""

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

    def raw_file(self, fname: str) -> RawFile:
        return next(f for f in self.raw_files if f.name == fname)


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


# --------------------------------------------------------------------------- locations


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Data directory: explicit argument, else $REPRO_DATA_DIR, else <user cache>/lecun1989."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("REPRO_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "lecun1989"


def _check_dir(path: Path) -> None:
    """Raise DataError if `path` exists but cannot be used as a directory to read from."""
    try:
        if not path.exists():
            return
        is_dir = path.is_dir()
    except OSError as e:
        raise DataError(f"Cannot access data directory {path}: {e.strerror or e}.") from None
    if not is_dir:
        raise DataError(f"Data directory {path} exists but is not a directory.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DataError(
            f"Data directory {path} is not readable (permission denied). Fix its permissions "
            "or point the project elsewhere with --data-dir DIR or REPRO_DATA_DIR."
        )


def _writable(path: Path) -> bool:
    """Whether we may create files under `path` (its nearest existing ancestor decides).

    A directory without any write permission bit counts as read-only even for root, who would
    otherwise write into deliberately read-only shared data folders.
    """
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    return p.is_dir() and bool(mode & 0o222) and os.access(p, os.W_OK | os.X_OK)


def _locate(data_dir: Path, subdir: str, fname: str) -> Path | None:
    """Path of an existing raw file: <data_dir>/<subdir>/<fname>, else <data_dir>/<fname>."""
    for d in (data_dir / subdir, data_dir):
        _check_dir(d)
        if (d / fname).is_file():
            return d / fname
    return None


# --------------------------------------------------------------------------- raw files


def _decompress(path: Path, what: str | None = None) -> bytes:
    """Whole decompressed contents of a gzip file; any failure becomes a DataError."""
    what = what or str(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise DataError(f"Cannot read {what}: {e.strerror or e}.") from None
    try:
        return gzip.decompress(blob)
    # BadGzipFile is an OSError; a truncated stream raises EOFError.
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{what} is not a valid gzip file (truncated or corrupt: {e}). The file was not "
            "used; delete it and put an intact copy in its place."
        ) from None


def _verified(path: Path, rf: RawFile) -> bytes:
    """Decompressed bytes of a raw file whose sha256 matches the expected value."""
    raw = _decompress(path)
    actual = hashlib.sha256(raw).hexdigest()
    if actual != rf.sha256:
        raise DataError(
            f"Checksum mismatch for {path}:\n"
            f"  expected sha256 (of decompressed contents): {rf.sha256}\n"
            f"  actual sha256   (of decompressed contents): {actual}\n"
            "The file was not used and nothing was prepared from it. Replace it with an intact "
            f"copy (source: {' or '.join(rf.urls)})."
        )
    return raw


def _download(url: str, dest: Path, timeout: float) -> None:
    """Write the body of `url` to `dest` (a single point that tests replace to stay offline)."""
    req = urllib.request.Request(url, headers={"User-Agent": "lecun1989-repro"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as f:
        while chunk := resp.read(1 << 20):
            f.write(chunk)


def _fetch(rf: RawFile, target_dir: Path) -> list[str]:
    """Try every source for `rf`; on success it is at target_dir/name. Returns failure notes."""
    failures = []
    if not _writable(target_dir):
        return [f"{target_dir} is not writable"]
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"cannot create {target_dir}: {e.strerror or e}"]
    for url in rf.urls:
        tmp = None
        try:
            # Download next to the target and rename only after the checksum passed, so a
            # partial or wrong download can never be mistaken for the real file.
            fd, tmp_name = tempfile.mkstemp(prefix=f".{rf.name}.", suffix=".part", dir=target_dir)
            os.close(fd)
            tmp = Path(tmp_name)
            _download(url, tmp, DOWNLOAD_TIMEOUT_S)
            raw = _decompress(tmp, what=f"download of {url}")
            actual = hashlib.sha256(raw).hexdigest()
            if actual != rf.sha256:
                raise DataError(f"wrong sha256 {actual}")
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the data is not secret
            os.replace(tmp, target_dir / rf.name)
            tmp = None
            return []
        except (OSError, ValueError, DataError) as e:  # URLError/HTTPError/timeouts are OSErrors
            failures.append(f"{url}: {e}")
        finally:
            if tmp is not None:
                try:
                    tmp.unlink()
                except OSError:
                    pass
    return failures


def _raw_files(spec: DatasetSpec, data_dir: Path, download: bool) -> dict[str, Path]:
    """Paths of all raw files of a dataset, downloading missing ones if allowed."""
    _check_dir(data_dir)
    found = {rf.name: _locate(data_dir, spec.subdir, rf.name) for rf in spec.raw_files}
    missing = [rf for rf in spec.raw_files if found[rf.name] is None]
    failures: list[str] = []
    if missing and download:
        for rf in missing:
            failures += _fetch(rf, data_dir / spec.subdir)
            found[rf.name] = _locate(data_dir, spec.subdir, rf.name)
        missing = [rf for rf in spec.raw_files if found[rf.name] is None]
    if missing:
        lines = [f"Dataset {spec.name!r} needs raw files that were not found in {data_dir}:"]
        for rf in missing:
            lines += [
                f"  - {rf.name}",
                f"      put it in:  {data_dir / spec.subdir}",
                f"      sha256 of its decompressed contents: {rf.sha256}",
                f"      public source: {' or '.join(rf.urls)}",
            ]
        if not download:
            lines.append("Automatic download is disabled.")
        else:
            lines.append("Automatic download failed:")
            lines += [f"  {msg}" for msg in failures]
        lines.append(
            "Place the files as shown (e.g. copy them from a machine that has them), or point the "
            "project at a folder that has them with --data-dir DIR or the REPRO_DATA_DIR "
            "environment variable."
        )
        raise DataError("\n".join(lines))
    return found  # type: ignore[return-value]


# --------------------------------------------------------------------------- usps


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


def _build_usps(spec: DatasetSpec, raw: Mapping[str, bytes], options: Mapping) -> Splits:
    return {
        "train": _parse_usps(raw["zip.train.gz"], "zip.train.gz", spec.n_train),
        "test": _parse_usps(raw["zip.test.gz"], "zip.test.gz", spec.n_test),
    }


# --------------------------------------------------------------------------- mnist16


def _parse_idx(raw: bytes, fname: str, magic: int, shape: tuple[int, ...]) -> torch.Tensor:
    """uint8 tensor from an IDX file, checking its magic number and shape."""
    header = 4 + 4 * len(shape)
    if len(raw) < header:
        raise DataError(f"{fname}: too short for an IDX header ({len(raw)} bytes).")
    (found_magic,) = struct.unpack(">I", raw[:4])
    if found_magic != magic:
        raise DataError(
            f"{fname}: expected IDX magic number {magic:#010x}, found {found_magic:#010x}."
        )
    dims = struct.unpack(f">{len(shape)}I", raw[4:header])
    if dims != shape:
        raise DataError(f"{fname}: expected shape {shape}, header says {dims}.")
    n = int(np.prod(shape))
    if len(raw) - header != n:
        raise DataError(
            f"{fname}: expected {n} data bytes after the header, found {len(raw) - header}."
        )
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    return torch.from_numpy(arr.copy())


# split -> (images file, its shape, labels file); magic 0x0803: uint8 3-d array, 0x0801: vector.
_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", (60000, 28, 28), "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", (10000, 28, 28), "t10k-labels-idx1-ubyte.gz"),
}


def _mnist_resize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (n, 28, 28) -> float32 (n, 16, 16): x/127.5 - 1 first, then bilinear resize.

    Exactly the per-image arithmetic of prepro.py (batched; each output pixel is computed from
    its own image alone, so batching does not change a bit).
    """
    x = images.to(torch.float32) / 127.5 - 1.0
    x = F.interpolate(
        x.unsqueeze(1),
        size=(IMAGE_SIZE, IMAGE_SIZE),
        mode="bilinear",
        align_corners=False,
        antialias=False,
    )
    return x.squeeze(1).contiguous()


def _mnist_draws(seed: int, order: str, sizes: Mapping[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """Indices drawn per split: one RandomState(seed) stream, splits in `order`.

    `sizes` maps split -> (population, sample size). RandomState(seed) is the generator that
    np.random.seed(seed) seeds globally, so this is np.random.permutation(N)[:n] of prepro.py.
    """
    rs = np.random.RandomState(seed)
    splits = ("train", "test") if order == "train-first" else ("test", "train")
    return {s: rs.permutation(sizes[s][0])[: sizes[s][1]] for s in splits}


def _build_mnist16(spec: DatasetSpec, raw: Mapping[str, bytes], options: Mapping) -> Splits:
    images, labels = {}, {}
    for split, (img_f, shape, lab_f) in _MNIST_FILES.items():
        images[split] = _parse_idx(raw[img_f], img_f, 0x0803, shape)
        labels[split] = _parse_idx(raw[lab_f], lab_f, 0x0801, shape[:1])
        if int(labels[split].max()) >= NUM_CLASSES:
            raise DataError(f"{lab_f}: expected labels 0-9, found {int(labels[split].max())}.")
    n = {"train": spec.n_train, "test": spec.n_test}
    sizes = {s: (images[s].shape[0], n[s]) for s in images}
    idx = {
        s: torch.from_numpy(i)
        for s, i in _mnist_draws(options["mnist_seed"], options["mnist_order"], sizes).items()
    }
    x_full = _mnist_resize(images["test"])
    y_full = labels["test"].to(torch.int64)
    return {
        "train": (_mnist_resize(images["train"][idx["train"]]), labels["train"][idx["train"]].long()),
        "test": (x_full[idx["test"]].contiguous(), y_full[idx["test"]]),
        "test10k": (x_full, y_full),
    }


# --------------------------------------------------------------------------- registry

_USPS_URL = "https://hastie.su.domains/ElemStatLearn/datasets/{}"
_MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/{}",
    "https://storage.googleapis.com/cvdf-datasets/mnist/{}",
)


def _usps_file(name: str, sha256: str) -> RawFile:
    return RawFile(name, sha256, (_USPS_URL.format(name),))


def _mnist_file(name: str, sha256: str) -> RawFile:
    return RawFile(name, sha256, tuple(u.format(name) for u in _MNIST_URLS))


REGISTRY: dict[str, DatasetSpec] = {}


def _register(spec: DatasetSpec) -> DatasetSpec:
    REGISTRY[spec.name] = spec
    return spec


_register(
    DatasetSpec(
        name="usps",
        description="USPS zip-code digits (ESL distribution), the data of LeCun et al. 1989",
        subdir="usps",
        raw_files=(
            _usps_file(
                "zip.train.gz",
                "abc9f5c75b997cabe66b5d01727d5a681c69298e1641a8d37b55433a52129dc0",
            ),
            _usps_file(
                "zip.test.gz",
                "6bde17b4f1cd68e0630cd2751d6495b5795d9165ab2dc4a0be8b7002b732f4cc",
            ),
        ),
        build=_build_usps,
        n_train=7291,
        n_test=2007,
    )
)

_register(
    DatasetSpec(
        name="mnist16",
        description="MNIST resampled to 16x16 as in Karpathy's 2022 lecun1989-repro prepro.py",
        subdir="mnist",
        raw_files=(
            _mnist_file(
                "train-images-idx3-ubyte.gz",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            _mnist_file(
                "train-labels-idx1-ubyte.gz",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            _mnist_file(
                "t10k-images-idx3-ubyte.gz",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            _mnist_file(
                "t10k-labels-idx1-ubyte.gz",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ),
        build=_build_mnist16,
        n_train=7291,
        n_test=2007,
        params={
            "procedure": "karpathy/lecun1989-repro prepro.py",
            "sampling": "RandomState(mnist_seed), permutation(N)[:n] per split in mnist_order",
            "scale": "float32 x/127.5-1, before resize",
            "resize": "interpolate bilinear align_corners=False antialias=False",
        },
        options=(
            Option("mnist_seed", MNIST_SEED, help="np.random.seed of the draw"),
            Option("mnist_order", MNIST_ORDER, MNIST_ORDERS, help="which split is drawn first"),
        ),
        extra_tests={"test10k": 10000},
        prep_version=2,  # 1: torch.randperm draws per split, resize before scaling
    )
)

DATASETS = tuple(REGISTRY)

# Derived views (read-only): raw file -> sha256 of its decompressed contents; dataset -> version.
SHA256 = MappingProxyType({rf.name: rf.sha256 for s in REGISTRY.values() for rf in s.raw_files})
PREP_VERSION = MappingProxyType({name: s.prep_version for name, s in REGISTRY.items()})


def dataset_spec(name: str) -> DatasetSpec:
    """The registered description of dataset `name` (sizes, raw files, options) without loading it."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise DataError(f"Unknown dataset {name!r}; choose one of: {', '.join(REGISTRY)}.") from None


# --------------------------------------------------------------------------- preparation


def _fingerprint(spec: DatasetSpec, options: Mapping[str, object]) -> str:
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


def _valid(x: torch.Tensor, y: torch.Tensor, n: int) -> bool:
    return (
        isinstance(x, torch.Tensor)
        and isinstance(y, torch.Tensor)
        and x.dtype == torch.float32
        and y.dtype == torch.int64
        and tuple(x.shape) == (n, IMAGE_SIZE, IMAGE_SIZE)
        and tuple(y.shape) == (n,)
    )


def _build(spec: DatasetSpec, files: Mapping[str, Path], options: Mapping[str, object]) -> Splits:
    # Verify every raw file before parsing any, so a bad file fails fast and cheaply.
    raw = {rf.name: _verified(files[rf.name], rf) for rf in spec.raw_files}
    splits = spec.build(spec, raw, options)
    for split, n in spec.sizes.items():
        if split not in splits or not _valid(*splits[split], n):
            raise RuntimeError(f"build of {spec.name!r} returned a malformed {split!r} split")
    return {s: splits[s] for s in spec.sizes}


# --------------------------------------------------------------------------- cache


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


def _load_cache(path: Path, spec: DatasetSpec, fingerprint: str) -> Splits | None:
    """Cached splits, or None if absent or in any way unusable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        splits = {s: (d[f"x_{s}"], d[f"y_{s}"]) for s in spec.sizes}
        ok = (
            d.get("fingerprint") == fingerprint
            and all(_valid(*splits[s], n) for s, n in spec.sizes.items())
            # catches silent corruption
            and d.get("content_sha256") == _content_sha256(_flat(splits).values())
        )
    except Exception:  # any unreadable cache just means "rebuild"
        return None
    return splits if ok else None


def _save_cache(path: Path, spec: DatasetSpec, fingerprint: str, splits: Splits) -> None:
    """Write atomically; a data dir we cannot write to simply gets no cache."""
    if not _writable(path.parent):
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


# --------------------------------------------------------------------------- public API


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
    cache_path = root / "prepared" / f"{name}-{fp}.pt"

    splits = _load_cache(cache_path, spec, fp) if cache else None
    if splits is None:
        files = _raw_files(spec, root, download)
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
