"""Download helpers, tested offline: local files, a loopback HTTP server, tiny archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from multiad.data import DataError
from multiad.data.download import (
    bmad_instructions,
    download_file,
    download_mvtec,
    find_mvtec_root,
    safe_extract,
)
from multiad.data.mvtec import MVTEC_CATEGORIES


def _tar(path, entries, mode="w:xz"):
    """entries: name -> bytes (file), None (dir) or ("link", target)."""
    with tarfile.open(path, mode) as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif isinstance(data, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def test_safe_extract_tar_xz(tmp_path):
    archive = _tar(tmp_path / "a.tar.xz", {"mvtec/": None, "mvtec/bottle/train/good/0.png": b"x",
                                           "mvtec/readme.txt": b"hello"})
    created = safe_extract(archive, tmp_path / "out")
    assert created == [tmp_path / "out" / "mvtec"]
    assert (tmp_path / "out" / "mvtec" / "bottle" / "train" / "good" / "0.png").read_bytes() == b"x"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mvtec"]  # no staging left


@pytest.mark.parametrize("entries", [
    {"ok.txt": b"1", "../evil.txt": b"2"},
    {"/abs/evil.txt": b"2"},
    {"ok.txt": b"1", "link": ("link", "/etc/passwd")},
    {"sub/../../evil.txt": b"2"},
])
def test_safe_extract_refuses_unsafe_tar(tmp_path, entries):
    archive = _tar(tmp_path / "bad.tar.gz", entries, mode="w:gz")
    dest = tmp_path / "dest" / "inner"
    with pytest.raises(DataError, match="bad.tar.gz"):
        safe_extract(archive, dest)
    assert list(dest.iterdir()) == []  # nothing half-extracted
    assert not (tmp_path / "dest" / "evil.txt").exists()


def test_safe_extract_zip_and_refuses_traversal(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("Brain/train/good/a.png", b"png")
    safe_extract(good, tmp_path / "g")
    assert (tmp_path / "g" / "Brain" / "train" / "good" / "a.png").read_bytes() == b"png"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../evil.txt", b"x")
    with pytest.raises(DataError, match="Unsafe path"):
        safe_extract(bad, tmp_path / "b")
    assert not (tmp_path / "evil.txt").exists()


def test_truncated_or_foreign_archive(tmp_path):
    archive = _tar(tmp_path / "t.tar.xz", {"a.txt": b"a" * 5000})
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(archive.read_bytes()[:60])
    with pytest.raises(DataError, match="cut.tar.xz"):
        safe_extract(cut, tmp_path / "o")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"nothing")
    with pytest.raises(DataError, match="neither a tar nor a zip"):
        safe_extract(junk, tmp_path / "o2")


def test_download_file_from_local_url_with_checksum(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc" * 1000)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = download_file(src.as_uri(), tmp_path / "d" / "x.bin", sha256=digest, progress=False)
    assert dest.read_bytes() == src.read_bytes()
    with pytest.raises(DataError, match="Checksum mismatch"):
        download_file(src.as_uri(), tmp_path / "d" / "y.bin", sha256="0" * 64, progress=False)
    assert not (tmp_path / "d" / "y.bin").exists()
    assert not (tmp_path / "d" / "y.bin.part").exists()


class _RangeHandler(BaseHTTPRequestHandler):
    payload = bytes(range(256)) * 400
    ranges: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server API
        rng = self.headers.get("Range")
        type(self).ranges.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_download_resumes_partial_file_over_loopback(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/file.bin"
        dest = tmp_path / "file.bin"
        (tmp_path / "file.bin.part").write_bytes(_RangeHandler.payload[:30000])
        digest = hashlib.sha256(_RangeHandler.payload).hexdigest()
        download_file(url, dest, sha256=digest, progress=False)
        assert dest.read_bytes() == _RangeHandler.payload
        assert _RangeHandler.ranges[-1] == "bytes=30000-"
    finally:
        server.shutdown()
        server.server_close()


def test_offline_guard(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTIAD_OFFLINE", "1")
    with pytest.raises(DataError, match="MULTIAD_OFFLINE"):
        download_file("https://example.invalid/x.tar.xz", tmp_path / "x", progress=False)


def test_download_mvtec_from_a_tiny_local_archive(tmp_path):
    entries = {f"{c}/train/good/000.png": b"p" for c in MVTEC_CATEGORIES}
    entries["license.txt"] = b"CC BY-NC-SA 4.0"
    archive = _tar(tmp_path / "mvtec.tar.xz", entries)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    root = download_mvtec(tmp_path / "data", url=archive.as_uri(), sha256=digest, progress=False)
    assert root == tmp_path / "data" and find_mvtec_root(root) == root
    assert (root / ".multiad_download.json").is_file()
    assert not (root / "mvtec_anomaly_detection.tar.xz").exists()
    assert download_mvtec(root, url="file:///nonexistent", progress=False) == root  # no refetch


def test_bmad_instructions_name_both_sources():
    text = bmad_instructions("data/bmad")
    assert "drive.google.com" in text and "code-dev05/BMAD" in text
    assert "--kind brain" in text
