"""The download path against a real HTTP server on the loopback address (http.server in a thread).

The usps description is pointed at the server (its sources replaced, nothing else), which serves copies of
the real raw files, or damaged copies of them: files are fetched and verified by checksum, a corrupt or
truncated file is refused and the file fetched again, and an unreachable server is named in the error beside
the manual fallback. The data folder written is a temporary one; the shared data is only read.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest

from repro import data
from repro.data import DataError, load_dataset
from repro.data.registry import SHA256
from tests.conftest import data_dir

USPS_FILES = ("zip.train.gz", "zip.test.gz")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the server's folder and records each path asked for; under /cut/ it promises a file's whole
    length and sends half of it (a connection that drops mid-transfer)."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/cut/"):
            body = (Path(self.directory) / self.path.removeprefix("/cut/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def server(tmp_path):
    """(base URL, served folder, paths requested) of an HTTP server on 127.0.0.1 serving a temporary folder."""
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a, **kw: _Handler(*a, directory=str(served), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served, httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()


def serve_usps_from(monkeypatch, *bases: str) -> None:
    """Point the usps description's sources at `bases` (each tried in order), as the public mirrors are."""
    spec = data.dataset_spec("usps")
    raw_files = tuple(dataclasses.replace(rf, urls=tuple(f"{b}/{rf.name}" for b in bases)) for rf in spec.raw_files)
    monkeypatch.setitem(data.REGISTRY, "usps", dataclasses.replace(spec, raw_files=raw_files))


def copy_real(served: Path, name: str) -> bytes:
    blob = (data_dir() / "usps" / name).read_bytes()
    (served / name).write_bytes(blob)
    return blob


def installed(folder: Path) -> list[str]:
    """Files in a data folder's usps/ (a refused download leaves no file, not even a hidden partial one)."""
    return sorted(p.name for p in (folder / "usps").iterdir()) if (folder / "usps").is_dir() else []


def test_files_are_fetched_verified_and_installed(server, monkeypatch, tmp_path, usps):
    base, served, requests = server
    for name in USPS_FILES:
        copy_real(served, name)
    serve_usps_from(monkeypatch, base)
    ds = load_dataset("usps", tmp_path / "data", download=True, cache=False)
    assert sorted(requests) == sorted(f"/{n}" for n in USPS_FILES)
    assert installed(tmp_path / "data") == sorted(USPS_FILES)
    for name in USPS_FILES:
        assert (tmp_path / "data" / "usps" / name).read_bytes() == (served / name).read_bytes()
    assert ds.fingerprint == usps.fingerprint
    assert ds.x_train.equal(usps.x_train) and ds.y_test.equal(usps.y_test)
    # present now: a second load fetches nothing
    load_dataset("usps", tmp_path / "data", download=True, cache=False)
    assert len(requests) == len(USPS_FILES)


def test_a_corrupt_file_is_refused_and_fetched_again_once_intact(server, monkeypatch, tmp_path):
    base, served, requests = server
    copy_real(served, "zip.train.gz")
    real_test = gzip.decompress((data_dir() / "usps" / "zip.test.gz").read_bytes())
    (served / "zip.test.gz").write_bytes(gzip.compress(real_test.replace(b"1", b"7", 1)))  # one digit changed
    serve_usps_from(monkeypatch, base)
    with pytest.raises(DataError) as e:
        load_dataset("usps", tmp_path / "data", download=True, cache=False)
    msg = str(e.value)
    assert f"{base}/zip.test.gz: wrong sha256" in msg
    assert SHA256["zip.test.gz"] in msg  # the checksum a manual copy must have
    assert installed(tmp_path / "data") == ["zip.train.gz"]  # the intact file is kept, the corrupt one refused

    copy_real(served, "zip.test.gz")  # the server now has an intact copy
    load_dataset("usps", tmp_path / "data", download=True, cache=False)
    assert installed(tmp_path / "data") == sorted(USPS_FILES)
    assert requests == ["/zip.train.gz", "/zip.test.gz", "/zip.test.gz"]  # only the refused file again


@pytest.mark.parametrize("damage", ["truncated file", "dropped connection"])
def test_a_truncated_download_is_refused_and_the_next_source_used(damage, server, monkeypatch, tmp_path):
    base, served, requests = server
    intact = served / "intact"
    intact.mkdir()
    for name in USPS_FILES:
        blob = copy_real(intact, name)
        (served / name).write_bytes(blob[: len(blob) // 2])
    first = base if damage == "truncated file" else f"{base}/cut/intact"
    serve_usps_from(monkeypatch, first, f"{base}/intact")
    load_dataset("usps", tmp_path / "data", download=True, cache=False)
    assert installed(tmp_path / "data") == sorted(USPS_FILES)
    for name in USPS_FILES:
        assert (tmp_path / "data" / "usps" / name).read_bytes() == (intact / name).read_bytes()
    assert len(requests) == 2 * len(USPS_FILES)  # each file: the damaged source, then the intact one


def test_a_truncated_download_alone_is_refused_with_the_reason(server, monkeypatch, tmp_path):
    base, served, _ = server
    for name in USPS_FILES:
        blob = (data_dir() / "usps" / name).read_bytes()
        (served / name).write_bytes(blob[: len(blob) // 2])
    serve_usps_from(monkeypatch, base)
    with pytest.raises(DataError) as e:
        load_dataset("usps", tmp_path / "data", download=True, cache=False)
    assert f"download of {base}/zip.train.gz is not a valid gzip file" in str(e.value)
    assert installed(tmp_path / "data") == []


def test_an_unreachable_server_is_named_with_the_manual_fallback(monkeypatch, tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    serve_usps_from(monkeypatch, base)
    with pytest.raises(DataError) as e:
        load_dataset("usps", tmp_path / "data", download=True, cache=False)
    msg = str(e.value)
    for name in USPS_FILES:
        assert f"{base}/{name}: " in msg  # the server, by URL, with why it failed
        assert SHA256[name] in msg
    assert "refused" in msg.lower()
    assert f"put it in:  {tmp_path / 'data' / 'usps'}" in msg  # the manual fallback
    assert "--data-dir" in msg and "REPRO_DATA_DIR" in msg
    assert installed(tmp_path / "data") == []
