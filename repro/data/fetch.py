"""Raw files: finding them, downloading missing ones, and verifying every one by checksum.

Raw files are looked up in ``<data_dir>/<subdir>/`` (``usps/``, ``mnist/``), falling back to
``<data_dir>/`` itself, and are always verified by the sha256 of their *decompressed* bytes, so
any gzip wrapping of the same content is accepted. Missing files are downloaded from the public
sources when allowed; otherwise a :class:`DataError` explains exactly what to put where.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import Callable

from repro.data.locations import check_dir, locate, writable
from repro.data.spec import DataError, DatasetSpec, RawFile

DOWNLOAD_TIMEOUT_S = 20  # per socket operation; a hung mirror must not hang the run

# download(url, dest, timeout): writes the body of `url` to the file `dest`.
Downloader = Callable[[str, Path, float], None]


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


def verified(path: Path, rf: RawFile) -> bytes:
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


def download_file(url: str, dest: Path, timeout: float) -> None:
    """Write the body of `url` to `dest` (the one network access; repro.data passes it in as the
    seam that tests replace to stay offline)."""
    req = urllib.request.Request(url, headers={"User-Agent": "lecun1989-repro"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as f:
        while chunk := resp.read(1 << 20):
            f.write(chunk)


def _fetch(rf: RawFile, target_dir: Path, downloader: Downloader) -> list[str]:
    """Try every source for `rf`; on success it is at target_dir/name. Returns failure notes."""
    failures = []
    if not writable(target_dir):
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
            downloader(url, tmp, DOWNLOAD_TIMEOUT_S)
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


def raw_files(spec: DatasetSpec, data_dir: Path, download: bool, downloader: Downloader) -> dict[str, Path]:
    """Paths of all raw files of a dataset, downloading missing ones with `downloader` if allowed."""
    check_dir(data_dir)
    found = {rf.name: locate(data_dir, spec.subdir, rf.name) for rf in spec.raw_files}
    missing = [rf for rf in spec.raw_files if found[rf.name] is None]
    failures: list[str] = []
    if missing and download:
        for rf in missing:
            failures += _fetch(rf, data_dir / spec.subdir, downloader)
            found[rf.name] = locate(data_dir, spec.subdir, rf.name)
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
