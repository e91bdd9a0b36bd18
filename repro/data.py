"""Data loading for the LeCun et al. (1989) reproduction.

Two datasets, both delivered as 16x16 float32 images in [-1, 1] with 7291 training and 2007 test
examples (the sizes used in the paper):

``usps`` (default)
    The U.S. Postal Service zip-code digits used by LeCun et al. (1989), as distributed with
    *The Elements of Statistical Learning* (https://hastie.su.domains/ElemStatLearn/datasets/):
    ``zip.train.gz`` (7291 lines) and ``zip.test.gz`` (2007 lines). Each line is gzip-compressed
    text holding the digit (written as e.g. ``6.0000``) followed by 256 gray levels in [-1, 1],
    row-major 16x16. The values are used as they are.

``mnist16``
    A stand-in built from MNIST (original IDX files, gzip-compressed:
    ``train-images-idx3-ubyte.gz`` etc.). IDX = big-endian header (magic number 0x0801 for
    unsigned-byte vectors / 0x0803 for unsigned-byte 3-d arrays, then one uint32 per dimension)
    followed by the raw bytes. A seeded sample of 7291 training and 2007 test images is drawn,
    each 28x28 image is resized to 16x16 (bilinear, no antialiasing) and scaled with x/127.5 - 1.

Raw files are looked up in ``<data_dir>/usps/`` and ``<data_dir>/mnist/`` (falling back to
``<data_dir>/`` itself) and are always verified by the sha256 of their *decompressed* bytes, so
any gzip wrapping of the same content is accepted. Missing files are downloaded from the public
sources when allowed; otherwise a :class:`DataError` explains exactly what to put where.

Prepared tensors are cached in ``<data_dir>/prepared/<name>-<fingerprint>.pt``. The fingerprint
covers the raw files' checksums and every preparation parameter, so a changed parameter can never
pick up a stale cache. A valid cache entry is used without re-reading the raw files.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "resolve_data_dir",
    "load_dataset",
    "targets",
    "summary",
    "MNIST_SEED",
    "PREP_VERSION",
]

DATASETS = ("usps", "mnist16")

# Bump whenever the preparation code changes its output: it is part of the fingerprint, so old
# cache entries are simply no longer found.
PREP_VERSION = 1

MNIST_SEED = 0  # default seed of the mnist16 sample
N_TRAIN, N_TEST = 7291, 2007  # sizes of the 1989 training and test sets
IMAGE_SIZE = 16
NUM_CLASSES = 10
DOWNLOAD_TIMEOUT_S = 20  # per socket operation; a hung mirror must not hang the run

# sha256 of the DECOMPRESSED contents (see shared/data/README.md). Checking decompressed bytes
# means re-compressed copies of the same data are accepted.
SHA256 = {
    "zip.train.gz": "abc9f5c75b997cabe66b5d01727d5a681c69298e1641a8d37b55433a52129dc0",
    "zip.test.gz": "6bde17b4f1cd68e0630cd2751d6495b5795d9165ab2dc4a0be8b7002b732f4cc",
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

_USPS_URL = "https://hastie.su.domains/ElemStatLearn/datasets/{}"
_MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/{}",
    "https://storage.googleapis.com/cvdf-datasets/mnist/{}",
)

# Subdirectory of the data dir that holds each raw file (same layout as shared/data).
_SUBDIR = {
    "zip.train.gz": "usps",
    "zip.test.gz": "usps",
    "train-images-idx3-ubyte.gz": "mnist",
    "train-labels-idx1-ubyte.gz": "mnist",
    "t10k-images-idx3-ubyte.gz": "mnist",
    "t10k-labels-idx1-ubyte.gz": "mnist",
}

_RAW_FILES = {
    "usps": ("zip.train.gz", "zip.test.gz"),
    "mnist16": (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ),
}


# IDX magic number and shape of each MNIST file (0x0803: uint8 3-d array, 0x0801: uint8 vector).
_IDX_LAYOUT = {
    "train-images-idx3-ubyte.gz": (0x0803, (60000, 28, 28)),
    "train-labels-idx1-ubyte.gz": (0x0801, (60000,)),
    "t10k-images-idx3-ubyte.gz": (0x0803, (10000, 28, 28)),
    "t10k-labels-idx1-ubyte.gz": (0x0801, (10000,)),
}


class DataError(Exception):
    """A data problem the user must fix; the message is the whole explanation."""


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value to compare
class Dataset:
    name: str
    x_train: torch.Tensor  # (7291, 16, 16) float32 in [-1, 1]
    y_train: torch.Tensor  # (7291,) int64, 0-9
    x_test: torch.Tensor  # (2007, 16, 16) float32 in [-1, 1]
    y_test: torch.Tensor  # (2007,) int64, 0-9
    fingerprint: str  # hex; identifies source checksums + preparation parameters

    def __repr__(self) -> str:  # the default repr would print the tensors
        return (
            f"Dataset(name={self.name!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}, fingerprint={self.fingerprint!r})"
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


def _source_urls(fname: str) -> tuple[str, ...]:
    if _SUBDIR[fname] == "usps":
        return (_USPS_URL.format(fname),)
    return tuple(u.format(fname) for u in _MNIST_URLS)


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


def _locate(data_dir: Path, fname: str) -> Path | None:
    """Path of an existing raw file: <data_dir>/<subdir>/<fname>, else <data_dir>/<fname>."""
    for d in (data_dir / _SUBDIR[fname], data_dir):
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


def _verified(path: Path) -> bytes:
    """Decompressed bytes of a raw file whose sha256 matches the expected value."""
    raw = _decompress(path)
    actual = hashlib.sha256(raw).hexdigest()
    expected = SHA256[path.name]
    if actual != expected:
        raise DataError(
            f"Checksum mismatch for {path}:\n"
            f"  expected sha256 (of decompressed contents): {expected}\n"
            f"  actual sha256   (of decompressed contents): {actual}\n"
            "The file was not used and nothing was prepared from it. Replace it with an intact "
            f"copy (source: {' or '.join(_source_urls(path.name))})."
        )
    return raw


def _download(url: str, dest: Path, timeout: float) -> None:
    """Write the body of `url` to `dest` (a single point that tests replace to stay offline)."""
    req = urllib.request.Request(url, headers={"User-Agent": "lecun1989-repro"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as f:
        while chunk := resp.read(1 << 20):
            f.write(chunk)


def _fetch(fname: str, target_dir: Path) -> list[str]:
    """Try every source for `fname`; on success it is at target_dir/fname. Returns failure notes."""
    failures = []
    if not _writable(target_dir):
        return [f"{target_dir} is not writable"]
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"cannot create {target_dir}: {e.strerror or e}"]
    for url in _source_urls(fname):
        tmp = None
        try:
            # Download next to the target and rename only after the checksum passed, so a
            # partial or wrong download can never be mistaken for the real file.
            fd, tmp_name = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=target_dir)
            os.close(fd)
            tmp = Path(tmp_name)
            _download(url, tmp, DOWNLOAD_TIMEOUT_S)
            raw = _decompress(tmp, what=f"download of {url}")
            actual = hashlib.sha256(raw).hexdigest()
            if actual != SHA256[fname]:
                raise DataError(f"wrong sha256 {actual}")
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the data is not secret
            os.replace(tmp, target_dir / fname)
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


def _raw_files(name: str, data_dir: Path, download: bool) -> dict[str, Path]:
    """Paths of all raw files of a dataset, downloading missing ones if allowed."""
    _check_dir(data_dir)
    found = {f: _locate(data_dir, f) for f in _RAW_FILES[name]}
    missing = [f for f, p in found.items() if p is None]
    failures: list[str] = []
    if missing and download:
        for f in missing:
            failures += _fetch(f, data_dir / _SUBDIR[f])
            found[f] = _locate(data_dir, f)
        missing = [f for f, p in found.items() if p is None]
    if missing:
        lines = [f"Dataset {name!r} needs raw files that were not found in {data_dir}:"]
        for f in missing:
            lines += [
                f"  - {f}",
                f"      put it in:  {data_dir / _SUBDIR[f]}",
                f"      sha256 of its decompressed contents: {SHA256[f]}",
                f"      public source: {' or '.join(_source_urls(f))}",
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


# --------------------------------------------------------------------------- parsing


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


def _sample_and_resize(
    images: torch.Tensor, labels: torch.Tensor, k: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded sample of k images, resized 28x28 -> 16x16 and scaled to [-1, 1]."""
    # A private generator per split: the draw cannot depend on global RNG state or call order.
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(images.shape[0], generator=g)[:k]
    x = images[idx].to(torch.float32).unsqueeze(1)
    x = F.interpolate(
        x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False, antialias=False
    ).squeeze(1)
    # Bilinear weights are convex, so this is already in [-1, 1] up to rounding; clamp the rounding.
    x = (x / 127.5 - 1.0).clamp_(-1.0, 1.0).contiguous()
    return x, labels[idx].to(torch.int64)


def _prep_params(name: str, mnist_seed: int) -> dict:
    params = {"n_train": N_TRAIN, "n_test": N_TEST, "size": IMAGE_SIZE, "dtype": "float32"}
    if name == "mnist16":
        params.update(
            seed_train=mnist_seed,
            seed_test=mnist_seed + 1,
            sampling="randperm(n, torch.Generator(seed))[:k]",
            resize="interpolate bilinear align_corners=False antialias=False",
            scale="x/127.5-1",
        )
    return params


def _fingerprint(name: str, mnist_seed: int) -> str:
    spec = {
        "dataset": name,
        "raw_sha256": {f: SHA256[f] for f in _RAW_FILES[name]},
        "params": _prep_params(name, mnist_seed),
        "prep_version": PREP_VERSION,
    }
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _build(name: str, files: dict[str, Path], mnist_seed: int) -> tuple[torch.Tensor, ...]:
    if name == "usps":
        x_tr, y_tr = _parse_usps(_verified(files["zip.train.gz"]), "zip.train.gz", N_TRAIN)
        x_te, y_te = _parse_usps(_verified(files["zip.test.gz"]), "zip.test.gz", N_TEST)
        return x_tr, y_tr, x_te, y_te
    # Verify all four files before parsing any, so a bad file fails fast and cheaply.
    raw = {f: _verified(p) for f, p in files.items()}
    arr = {f: _parse_idx(raw[f], f, *_IDX_LAYOUT[f]) for f in files}
    for f in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        if int(arr[f].max()) >= NUM_CLASSES:
            raise DataError(f"{f}: expected labels 0-9, found {int(arr[f].max())}.")
    tr_img, tr_lab = arr["train-images-idx3-ubyte.gz"], arr["train-labels-idx1-ubyte.gz"]
    te_img, te_lab = arr["t10k-images-idx3-ubyte.gz"], arr["t10k-labels-idx1-ubyte.gz"]
    x_tr, y_tr = _sample_and_resize(tr_img, tr_lab, N_TRAIN, mnist_seed)
    x_te, y_te = _sample_and_resize(te_img, te_lab, N_TEST, mnist_seed + 1)
    return x_tr, y_tr, x_te, y_te


# --------------------------------------------------------------------------- cache


def _content_sha256(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def _valid(x: torch.Tensor, y: torch.Tensor, n: int) -> bool:
    return (
        isinstance(x, torch.Tensor)
        and isinstance(y, torch.Tensor)
        and x.dtype == torch.float32
        and y.dtype == torch.int64
        and tuple(x.shape) == (n, IMAGE_SIZE, IMAGE_SIZE)
        and tuple(y.shape) == (n,)
    )


def _load_cache(path: Path, fingerprint: str) -> tuple[torch.Tensor, ...] | None:
    """Cached tensors, or None if absent or in any way unusable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        tensors = (d["x_train"], d["y_train"], d["x_test"], d["y_test"])
        ok = (
            d.get("fingerprint") == fingerprint
            and _valid(tensors[0], tensors[1], N_TRAIN)
            and _valid(tensors[2], tensors[3], N_TEST)
            and d.get("content_sha256") == _content_sha256(tensors)  # catches silent corruption
        )
    except Exception:  # any unreadable cache just means "rebuild"
        return None
    return tensors if ok else None


def _save_cache(path: Path, name: str, fingerprint: str, tensors: tuple[torch.Tensor, ...]) -> None:
    """Write atomically; a data dir we cannot write to simply gets no cache."""
    from repro.study.store import atomic_torch_save

    if not _writable(path.parent):
        return
    blob = {
        "name": name,
        "fingerprint": fingerprint,
        "prep_version": PREP_VERSION,
        "x_train": tensors[0],
        "y_train": tensors[1],
        "x_test": tensors[2],
        "y_test": tensors[3],
        "content_sha256": _content_sha256(tensors),
    }
    try:
        atomic_torch_save(path, blob)  # readers see either no file or the complete one
    except (OSError, RuntimeError):
        pass  # no cache is not an error: the data is prepared again next time


# --------------------------------------------------------------------------- public API


def load_dataset(
    name: str = "usps",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    *,
    mnist_seed: int = MNIST_SEED,
    cache: bool = True,
) -> Dataset:
    """Load a prepared dataset (see module docstring).

    `mnist_seed` only affects mnist16. `cache=False` neither reads nor writes prepared/.
    """
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    is_int = isinstance(mnist_seed, (int, np.integer)) and not isinstance(mnist_seed, bool)
    if not is_int or mnist_seed < 0:
        raise DataError(f"mnist_seed must be a non-negative integer, got {mnist_seed!r}.")
    mnist_seed = int(mnist_seed)
    root = resolve_data_dir(data_dir)
    fp = _fingerprint(name, mnist_seed)
    cache_path = root / "prepared" / f"{name}-{fp}.pt"

    tensors = _load_cache(cache_path, fp) if cache else None
    if tensors is None:
        files = _raw_files(name, root, download)
        tensors = _build(name, files, mnist_seed)
        if cache:
            _save_cache(cache_path, name, fp, tensors)
    return Dataset(name, *tensors, fingerprint=fp)


def targets(labels: torch.Tensor) -> torch.Tensor:
    """(N, 10) float32 targets: +1 for the labelled class, -1 elsewhere (tanh output range)."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"labels must be a 1-d integer tensor, got {labels.dtype} {tuple(labels.shape)}"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError("labels must be in 0-9")
    t = torch.full((labels.shape[0], NUM_CLASSES), -1.0, dtype=torch.float32, device=labels.device)
    t[torch.arange(labels.shape[0], device=labels.device), labels.long()] = 1.0
    return t


def summary(ds: Dataset) -> str:
    """One screen of text: class counts per split, value range and fingerprint."""
    head = "split      n " + "".join(f"{c:>6}" for c in range(NUM_CLASSES))
    lines = [f"dataset {ds.name}  fingerprint {ds.fingerprint}", head]
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        counts = torch.bincount(y, minlength=NUM_CLASSES).tolist()
        lines.append(f"{split:<5} {len(y):>6} " + "".join(f"{c:>6}" for c in counts))
    for split, x in (("train", ds.x_train), ("test", ds.x_test)):
        lines.append(
            f"{split:<5} images {tuple(x.shape[1:])} {str(x.dtype).replace('torch.', '')}, "
            f"values in [{x.min().item():.4f}, {x.max().item():.4f}], mean {x.mean().item():.4f}"
        )
    return "\n".join(lines)
