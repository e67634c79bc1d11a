"""Downloads against a real HTTP server on 127.0.0.1 serving archives built from real recordings."""

from __future__ import annotations

import hashlib
import socket
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from eggroll_snn.cli import main
from eggroll_snn.data.download import (
    ENV_MD5,
    ENV_URL_BASE,
    download_file,
    download_nmnist,
    nmnist_archives,
)
from eggroll_snn.errors import ArchiveError, ConfigError, DownloadError

TIMEOUT_S = 10.0


@dataclass
class ServedFiles:
    """What the test server serves and how it behaves; ``requests`` logs (path, Range header, status)."""

    files: dict[str, bytes] = field(default_factory=dict)
    honour_range: bool = True
    send_length: bool = True  # without Content-Length the body ends when the connection closes
    cut_after_bytes: int | None = None  # drop the connection after this many body bytes, once
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)
    url: str = ""


def _handler_for(served: ServedFiles):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            data = served.files.get(self.path)
            range_header = self.headers.get("Range")
            if data is None:
                return self._reply(404, b"not found", range_header)
            if served.honour_range and range_header:
                start = int(range_header.removeprefix("bytes=").removesuffix("-"))
                if start >= len(data):
                    return self._reply(416, b"", range_header, {"Content-Range": f"bytes */{len(data)}"})
                content_range = f"bytes {start}-{len(data) - 1}/{len(data)}"
                return self._reply(206, data[start:], range_header, {"Content-Range": content_range})
            return self._reply(200, data, range_header)

        def _reply(self, status, body, range_header, headers=None):
            served.requests.append((self.path, range_header, status))
            self.send_response(status)
            if served.send_length:
                self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if served.cut_after_bytes is not None:
                body, served.cut_after_bytes = body[: served.cut_after_bytes], None
            self.wfile.write(body)  # HTTP/1.0: the connection closes after the reply

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def server(monkeypatch):
    """A real HTTP server on 127.0.0.1 (port chosen by the OS), shut down at the end of the test."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = ServedFiles()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(served))
    served.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def nmnist_zips(nmnist_small_root, tmp_path_factory):
    """Train.zip / Test.zip laid out like the official ones (top-level ``Train/``), from real files.

    Returns ``{"Train.zip": (zip bytes, {member name: source path})}``, same for Test.zip.
    """
    folder = tmp_path_factory.mktemp("zips")
    zips = {}
    for split, per_digit in (("Train", 3), ("Test", 1)):
        sources = {}
        for digit in range(10):
            for path in sorted((nmnist_small_root / "NMNIST" / split / str(digit)).glob("*.bin"))[:per_digit]:
                sources[f"{split}/{digit}/{path.name}"] = path
        zip_path = folder / f"{split}.zip"
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, path in sources.items():
                archive.write(path, name)
        zips[f"{split}.zip"] = (zip_path.read_bytes(), sources)
    return zips


def serve_nmnist(server: ServedFiles, nmnist_zips) -> dict[str, str]:
    """Serve the two archives under /mirror/ and return their MD5s."""
    for name, (data, _) in nmnist_zips.items():
        server.files[f"/mirror/{name}"] = data
    return {name: md5_of(data) for name, (data, _) in nmnist_zips.items()}


def files_below(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_download_verify_extract_gives_byte_identical_recordings(tmp_path, server, nmnist_zips, capsys):
    md5s = serve_nmnist(server, nmnist_zips)
    root = tmp_path / "data"
    result = download_nmnist(root, url_base=server.url + "/mirror/", md5s=md5s, progress=True, timeout=TIMEOUT_S)

    assert result.downloaded == ("Train.zip", "Test.zip") == result.extracted
    assert result.split_dirs == {"Train": root / "NMNIST" / "Train", "Test": root / "NMNIST" / "Test"}
    expected = {}
    for name, (data, sources) in nmnist_zips.items():
        assert (root / name).read_bytes() == data
        expected.update({f"NMNIST/{member}": source for member, source in sources.items()})
    assert files_below(root) == sorted(["Train.zip", "Test.zip", *expected])  # no .part, no staging
    assert len(expected) == 40
    for relative, source in expected.items():
        assert (root / relative).read_bytes() == source.read_bytes()
    assert "Train.zip" in capsys.readouterr().err  # the progress bar went to stderr

    # a rerun finds everything done and asks the server for nothing
    requests = len(server.requests)
    again = download_nmnist(root, url_base=server.url + "/mirror", md5s=md5s, progress=False, timeout=TIMEOUT_S)
    assert again.downloaded == () == again.extracted
    assert len(server.requests) == requests


def test_verified_archives_are_not_fetched_again_and_flat_layouts_extract(tmp_path, server, nmnist_zips):
    md5s = serve_nmnist(server, nmnist_zips)
    root = tmp_path / "data"
    kept = download_nmnist(root, url_base=server.url + "/mirror", md5s=md5s, extract=False, progress=False)
    assert kept.downloaded == ("Train.zip", "Test.zip") and kept.extracted == () and kept.split_dirs == {}
    assert files_below(root) == ["Test.zip", "Train.zip"]

    # digit folders at the top of an archive (no Train/ folder) land in NMNIST/Train as well
    data, sources = nmnist_zips["Train.zip"]
    with zipfile.ZipFile(root / "Train.zip", "w") as archive:
        for member, source in sources.items():
            archive.write(source, member.removeprefix("Train/"))
    md5s["Train.zip"] = md5_of((root / "Train.zip").read_bytes())
    requests = len(server.requests)
    result = download_nmnist(root, url_base=server.url + "/mirror", md5s=md5s, progress=False)
    assert result.downloaded == () and result.extracted == ("Train.zip", "Test.zip")
    assert len(server.requests) == requests
    for member, source in sources.items():
        assert (root / "NMNIST" / member).read_bytes() == source.read_bytes()


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server, nmnist_zips):
    data = nmnist_zips["Train.zip"][0]
    server.files["/Train.zip"] = data
    server.cut_after_bytes = 100_000
    dest = tmp_path / "Train.zip"
    with pytest.raises(DownloadError, match=r"after 100000 of \d+ bytes.*rerun to resume"):
        download_file(server.url + "/Train.zip", dest, md5=md5_of(data), progress=False, timeout=TIMEOUT_S)
    assert not dest.exists()
    assert (tmp_path / "Train.zip.part").stat().st_size == 100_000

    download_file(server.url + "/Train.zip", dest, md5=md5_of(data), progress=True, timeout=TIMEOUT_S)
    assert dest.read_bytes() == data
    assert not (tmp_path / "Train.zip.part").exists()
    assert server.requests == [("/Train.zip", None, 200), ("/Train.zip", "bytes=100000-", 206)]


@pytest.mark.parametrize("honour_range", [True, False])
def test_existing_part_is_resumed_or_restarted(tmp_path, server, nmnist_zips, honour_range):
    data = nmnist_zips["Test.zip"][0]
    server.files["/Test.zip"] = data
    server.honour_range = honour_range
    dest = tmp_path / "Test.zip"
    third = len(data) // 3
    # a true prefix when the server resumes; junk when it ignores Range (proves it was overwritten)
    (tmp_path / "Test.zip.part").write_bytes(data[:third] if honour_range else b"\xff" * third)
    download_file(server.url + "/Test.zip", dest, md5=md5_of(data), progress=False, timeout=TIMEOUT_S)
    assert dest.read_bytes() == data
    assert server.requests == [("/Test.zip", f"bytes={third}-", 206 if honour_range else 200)]


@pytest.mark.parametrize("extra_bytes", [0, 7])
def test_part_as_long_as_or_longer_than_the_file(tmp_path, server, nmnist_zips, extra_bytes):
    data = nmnist_zips["Test.zip"][0]
    server.files["/Test.zip"] = data
    part = tmp_path / "Test.zip.part"
    part.write_bytes(data + b"\0" * extra_bytes)
    download_file(server.url + "/Test.zip", tmp_path / "Test.zip", md5=md5_of(data), progress=False)
    assert (tmp_path / "Test.zip").read_bytes() == data
    expected = [("/Test.zip", f"bytes={len(data) + extra_bytes}-", 416)]
    if extra_bytes:  # not a prefix of the file: start again from byte 0
        expected.append(("/Test.zip", None, 200))
    assert server.requests == expected


def test_md5_mismatch_deletes_the_download(tmp_path, server, nmnist_zips):
    data = nmnist_zips["Test.zip"][0]
    server.files["/Test.zip"] = data
    dest = tmp_path / "Test.zip"
    with pytest.raises(DownloadError, match=rf"has MD5 {md5_of(data)}, expected 0{{32}}.*deleted"):
        download_file(server.url + "/Test.zip", dest, md5="0" * 32, progress=False, timeout=TIMEOUT_S)
    assert list(tmp_path.iterdir()) == []

    dest.write_bytes(b"someone else's file")
    with pytest.raises(DownloadError, match="exists but its MD5 is not"):
        download_file(server.url + "/Test.zip", dest, md5=md5_of(data), progress=False, timeout=TIMEOUT_S)
    assert dest.read_bytes() == b"someone else's file"


def test_md5_mismatch_stops_download_nmnist_before_extraction(tmp_path, server, nmnist_zips):
    md5s = serve_nmnist(server, nmnist_zips)
    md5s["Train.zip"] = "f" * 32
    with pytest.raises(DownloadError, match="Train.zip: downloaded file has MD5"):
        download_nmnist(tmp_path, url_base=server.url + "/mirror", md5s=md5s, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_size_cap_and_unreachable_servers(tmp_path, server, nmnist_zips):
    server.files["/Test.zip"] = nmnist_zips["Test.zip"][0]
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(server.url + "/nothing.zip", tmp_path / "x.zip", progress=False, timeout=TIMEOUT_S)
    with pytest.raises(DownloadError, match="announces [0-9]+ bytes, over the cap of 1000"):
        download_file(server.url + "/Test.zip", tmp_path / "x.zip", progress=False, max_bytes=1000)
    server.send_length = False
    with pytest.raises(DownloadError, match="more than 1000 bytes received, over the cap; the download was deleted"):
        download_file(server.url + "/Test.zip", tmp_path / "x.zip", progress=False, max_bytes=1000)
    assert list(tmp_path.iterdir()) == []
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    with pytest.raises(DownloadError, match="could not connect"):
        download_file(f"http://127.0.0.1:{closed_port}/x.zip", tmp_path / "x.zip", progress=False, timeout=TIMEOUT_S)
    with pytest.raises(ConfigError, match="not an http"):
        download_file("file:///etc/passwd", tmp_path / "x.zip", progress=False)
    assert not (tmp_path / "x.zip").exists()


def test_malicious_archive_is_refused_and_writes_nothing_outside(tmp_path, server, nmnist_zips):
    data, sources = nmnist_zips["Train.zip"]
    evil = tmp_path / "served" / "Train.zip"
    evil.parent.mkdir()
    with zipfile.ZipFile(evil, "w") as archive:
        for member, source in list(sources.items())[:3]:
            archive.write(source, member)
        # from the staging folder root/NMNIST/.extract-*/, five '..' reach tmp_path
        archive.writestr("Train/../../../../../evil.bin", b"owned")
        archive.writestr(str(tmp_path / "evil-absolute.bin"), b"owned")
    server.files["/mirror/Train.zip"] = evil.read_bytes()
    server.files["/mirror/Test.zip"] = nmnist_zips["Test.zip"][0]
    md5s = {"Train.zip": md5_of(evil.read_bytes()), "Test.zip": md5_of(nmnist_zips["Test.zip"][0])}
    root = tmp_path / "deep" / "data"
    with pytest.raises(ArchiveError, match=r"Train.zip: member 'Train/\.\./\.\./\.\./\.\./\.\./evil.bin' climbs out"):
        download_nmnist(root, url_base=server.url + "/mirror", md5s=md5s, progress=False)
    assert files_below(tmp_path) == ["deep/data/Train.zip", "served/Train.zip"]


def test_archive_overrides_and_their_validation():
    archives = nmnist_archives(environ={ENV_URL_BASE: "http://mirror.example/nmnist/", ENV_MD5["Test.zip"]: "A" * 32})
    assert [(a.filename, a.url, a.folder) for a in archives] == [
        ("Train.zip", "http://mirror.example/nmnist/Train.zip", "Train"),
        ("Test.zip", "http://mirror.example/nmnist/Test.zip", "Test"),
    ]
    assert archives[1].md5 == "a" * 32
    official = nmnist_archives(environ={})
    assert all(a.url.startswith("https://") and len(a.md5) == 32 for a in official)
    assert archives[0].md5 == official[0].md5  # the Train MD5 was not overridden
    with pytest.raises(ConfigError, match="EGGROLL_SNN_NMNIST_TRAIN_MD5: 'abc' is not an MD5"):
        nmnist_archives(environ={ENV_MD5["Train.zip"]: "abc"})
    with pytest.raises(ConfigError, match="--url-base: 'ftp://x' is not an http"):
        nmnist_archives(url_base="ftp://x", environ={})


def test_cli_download_with_env_overrides(tmp_path, server, nmnist_zips, monkeypatch, capsys):
    md5s = serve_nmnist(server, nmnist_zips)
    for name, md5 in md5s.items():
        monkeypatch.setenv(ENV_MD5[name], md5)
    root = tmp_path / "data"
    args = ["data", "download", "--to", str(root), "--url-base", server.url + "/mirror", "--no-progress"]
    assert main([*args, "--no-extract"]) == 0
    assert files_below(root) == ["Test.zip", "Train.zip"]
    assert "Train.zip: downloaded" in capsys.readouterr().out

    assert main(args) == 0
    assert "Train: extracted" in capsys.readouterr().out
    assert len(files_below(root / "NMNIST")) == 40

    monkeypatch.setenv(ENV_MD5["Test.zip"], "not-an-md5")
    assert main(args) == 1
    assert "EGGROLL_SNN_NMNIST_TEST_MD5: 'not-an-md5' is not an MD5" in capsys.readouterr().err
