"""The real download code against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import inspect
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from cifar10s.constants import CIFAR10_MD5, CIFAR10_URL
from cifar10s.sources.cifar10 import load_cifar10
from cifar10s.sources.download import (
    ChecksumError,
    DownloadError,
    download_cifar10,
    download_file,
)


class Server:
    """Serves ``payload`` at /file with scripted misbehaviour; records every request."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.requests: list[dict] = []
        self.script: list[str] = []  # one entry consumed per request: "ok", "truncate", "500", "404"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                action = server.script.pop(0) if server.script else "ok"
                server.requests.append({"path": self.path, "range": self.headers.get("Range"), "action": action})
                if action in ("500", "404"):
                    self.send_response(int(action))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and action != "ignore-range":
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(server.payload):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                self.end_headers()
                if action == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def payload(tiny_archive):
    return tiny_archive.read_bytes()


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def test_defaults_are_the_official_url_and_md5():
    params = inspect.signature(download_cifar10).parameters
    assert params["url"].default == CIFAR10_URL == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert params["md5"].default == CIFAR10_MD5 == "c58f30108f718f92721af3b95e74349a"


def test_download_cifar10_end_to_end_then_loads(tmp_path, payload):
    with Server(payload) as srv:
        path = download_cifar10(tmp_path, url=srv.url, md5=md5(payload), progress=False)
    assert path == tmp_path / "cifar-10-python.tar.gz"
    assert path.read_bytes() == payload
    assert not list(tmp_path.glob("*.part"))
    assert len(load_cifar10(path).train_labels) == 100


def test_existing_valid_file_is_not_downloaded_again(tmp_path, payload):
    dest = tmp_path / "f.tar.gz"
    dest.write_bytes(payload)
    with Server(payload) as srv:
        download_file(srv.url, dest, md5(payload), progress=False)
        assert srv.requests == []


def test_wrong_md5_deletes_download_and_says_so(tmp_path, payload):
    dest = tmp_path / "f.tar.gz"
    with Server(payload) as srv, pytest.raises(ChecksumError, match="does not match"):
        download_file(srv.url, dest, "0" * 32, progress=False, backoff=0)
    assert not dest.exists() and not (tmp_path / "f.tar.gz.part").exists()


def test_truncated_transfer_is_resumed_with_a_range_request(tmp_path, payload):
    dest = tmp_path / "f.tar.gz"
    with Server(payload) as srv:
        srv.script = ["truncate", "ok"]
        download_file(srv.url, dest, md5(payload), progress=False, backoff=0, chunk_size=4096)
    assert dest.read_bytes() == payload
    first, second = srv.requests
    assert first["range"] is None
    # Continued from what was written (whole chunks received before the cut), not restarted.
    resumed_at = int(second["range"].removeprefix("bytes=").rstrip("-"))
    assert len(payload) // 2 - 4096 < resumed_at <= len(payload) // 2


def test_partial_file_from_an_earlier_run_is_resumed(tmp_path, payload):
    dest = tmp_path / "f.tar.gz"
    (tmp_path / "f.tar.gz.part").write_bytes(payload[:1000])
    with Server(payload) as srv:
        download_file(srv.url, dest, md5(payload), progress=False)
    assert dest.read_bytes() == payload
    assert srv.requests[0]["range"] == "bytes=1000-"


def test_server_that_ignores_range_restarts_cleanly(tmp_path, payload):
    dest = tmp_path / "f.tar.gz"
    (tmp_path / "f.tar.gz.part").write_bytes(b"garbage" * 10)
    with Server(payload) as srv:
        srv.script = ["ignore-range"]
        download_file(srv.url, dest, md5(payload), progress=False)
    assert dest.read_bytes() == payload


def test_server_error_is_retried(tmp_path, payload):
    dest = tmp_path / "f.tar.gz"
    with Server(payload) as srv:
        srv.script = ["500", "500", "ok"]
        download_file(srv.url, dest, md5(payload), progress=False, backoff=0)
        assert [r["action"] for r in srv.requests] == ["500", "500", "ok"]
    assert dest.read_bytes() == payload


def test_persistent_server_error_gives_up_with_hint(tmp_path, payload):
    with Server(payload) as srv, pytest.raises(DownloadError, match="gave up after 3 attempts.*cifar10=PATH"):
        srv.script = ["500"] * 10
        download_file(srv.url, tmp_path / "f", md5(payload), progress=False, retries=2, backoff=0)


def test_404_is_not_retried(tmp_path, payload):
    with Server(payload) as srv, pytest.raises(DownloadError, match="HTTP 404"):
        srv.script = ["404"] * 10
        download_file(srv.url, tmp_path / "f", md5(payload), progress=False, backoff=0)
    assert len(srv.requests) == 1


def test_offline_error_says_how_to_supply_a_local_copy(tmp_path):
    # A port nothing listens on: connection refused, as when offline.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(DownloadError) as info:
        download_cifar10(tmp_path, url=f"http://127.0.0.1:{port}/cifar-10-python.tar.gz", progress=False,
                         retries=1, backoff=0)
    msg = str(info.value)
    assert "offline" in msg and "cifar10=PATH" in msg and str(tmp_path) in msg
    assert ".part" not in msg  # nothing was received, so no partial file is claimed
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()


def test_unresolvable_name_fails_at_once_without_retries(tmp_path):
    """Offline, the name does not resolve: retrying with back-off only makes the user wait."""
    import socket
    import time

    calls = []

    class Offline(requests.Session):
        def get(self, *a, **kw):
            calls.append(a[0])
            try:
                raise socket.gaierror(-3, "Temporary failure in name resolution")
            except socket.gaierror as exc:
                raise requests.ConnectionError("Max retries exceeded (NameResolutionError)") from exc

    t0 = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        download_cifar10(tmp_path, progress=False, session=Offline(), retries=5, backoff=10)
    assert time.perf_counter() - t0 < 5 and len(calls) == 1
    msg = str(info.value)
    assert "could not be resolved" in msg and "cifar10=PATH" in msg and ".part" not in msg


def test_failed_build_leaves_no_empty_data_folder(tmp_path, monkeypatch):
    """A build whose download fails removes the folders it created (root and cifar10s-v1/)."""
    from cifar10s.cli.main import main
    import cifar10s.sources.cifar10 as cifar10_module

    def offline(root, **kw):
        raise DownloadError("the download server's name could not be resolved (no network?); pass cifar10=PATH")

    monkeypatch.setattr(cifar10_module, "download_cifar10", offline)
    root = tmp_path / "data"
    assert main(["build", "--variant", "ops", "--root", str(root), "--download", "--quiet"]) == 1
    assert not root.exists()


def test_requests_session_is_used_when_given(tmp_path, payload):
    calls = []

    class Recording(requests.Session):
        def get(self, *a, **kw):
            calls.append(a[0])
            return super().get(*a, **kw)

    with Server(payload) as srv:
        download_file(srv.url, tmp_path / "f", md5(payload), progress=False, session=Recording())
    assert calls == [srv.url]
