"""vecdb.connect's HTTP transport against a stand-in server (stdlib
http.server on loopback): the failures no vecdb server gives on purpose."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from typing import Iterator, Tuple

import msgpack
import pytest

from vecdb import errors
from vecdb.client.transport import Transport


class _StandIn(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(1.0)
            self._answer(200, msgpack.packb({"late": True}), "application/msgpack")
        elif self.path == "/moved":
            self.send_response(307)
            self.send_header("location", "/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()
        elif self.path == "/big":  # an archive, its first bytes sent at once and the rest later
            self.send_response(200)
            self.send_header("content-type", "application/x-tar")
            self.send_header("content-length", str(100 + (1 << 20)))
            self.end_headers()
            self.wfile.write(b"t" * 100)
            self.wfile.flush()
            time.sleep(0.5)
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n" + b"t" * (1 << 20))
            except OSError:  # the client closed the connection: what it should do
                pass
        elif self.path == "/proxy/v1/thing":
            self._answer(200, msgpack.packb({"path": self.path}), "application/msgpack")
        elif self.path.startswith("http://"):  # asked as a proxy: the absolute URL
            self._answer(200, msgpack.packb({"proxied": self.path}), "application/msgpack")
        elif self.path == "/plain-error":
            self._answer(502, b"bad gateway from a proxy", "text/plain")
        else:
            self._answer(404, msgpack.packb({"error": {"type": "CollectionNotFoundError", "message": "no such",
                                                       "status": 404}}), "application/msgpack")

    def _answer(self, status: int, body: bytes, media: str) -> None:
        self.send_response(status)
        self.send_header("content-type", media)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> Tuple[str, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return "127.0.0.1", probe.getsockname()[1]


def test_an_unreachable_server_is_a_server_error_naming_it():
    host, port = _free_port()  # nothing listens there once the probe closed
    transport = Transport(f"http://{host}:{port}", None, timeout=2.0)
    with pytest.raises(errors.ServerError, match=f"cannot reach the vecdb server at http://{host}:{port}"):
        transport.call("GET", "/v1/collections")


def test_a_read_that_outlasts_the_timeout_is_a_server_error(stand_in):
    transport = Transport(stand_in, None, timeout=0.2)
    with pytest.raises(errors.ServerError, match="did not answer GET /slow in time"):
        transport.call("GET", "/slow")
    # The pool goes on: the next call gets a connection of its own.
    with pytest.raises(errors.CollectionNotFoundError, match="no such"):
        transport.call("GET", "/v1/collections/x")


def test_a_redirect_is_not_followed_but_refused(stand_in):
    with pytest.raises(errors.VecdbError, match="failed with HTTP 307"):
        Transport(stand_in, None, timeout=2.0).call("GET", "/moved")


def test_an_error_without_a_vecdb_body_reports_status_and_text(stand_in):
    with pytest.raises(errors.ServerError, match="HTTP 502: bad gateway from a proxy"):
        Transport(stand_in, None, timeout=2.0).call("GET", "/plain-error")


def test_a_server_behind_a_path_prefix_gets_its_prefix(stand_in):
    assert Transport(stand_in + "/proxy/", None, timeout=2.0).call("GET", "/v1/thing") == {"path": "/proxy/v1/thing"}


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://127.0.0.1:8000", "http://"])
def test_a_url_that_is_no_server_url_is_refused(url):
    with pytest.raises(errors.InvalidArgumentError, match="expected a server URL"):
        Transport(url, None, timeout=1.0)


def test_the_environments_proxy_is_used_unless_no_proxy_exempts_the_host(stand_in, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", stand_in)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    far = Transport("http://vecdb.invalid:8000", None, timeout=2.0)
    assert far.call("GET", "/v1/collections") == {"proxied": "http://vecdb.invalid:8000/v1/collections"}
    host, port = _free_port()  # a proxy nobody answers at: only a direct call gets through
    monkeypatch.setenv("HTTP_PROXY", f"http://{host}:{port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert Transport(stand_in, None, timeout=2.0).call("GET", "/proxy/v1/thing") == {"path": "/proxy/v1/thing"}


def test_a_download_that_fails_midway_leaves_the_client_usable(stand_in, tmp_path):
    """The rest of a body left unread must not be read as the next answer."""
    transport = Transport(stand_in, None, timeout=2.0)
    target = tmp_path / "exists"
    target.write_bytes(b"")
    with pytest.raises(FileExistsError):
        transport.download("/big", target)
    assert transport.call("GET", "/proxy/v1/thing") == {"path": "/proxy/v1/thing"}


def test_a_failed_download_raises_the_servers_error(stand_in, tmp_path):
    with pytest.raises(errors.CollectionNotFoundError, match="no such"):
        Transport(stand_in, None, timeout=2.0).download("/v1/backups/nope.tar", tmp_path / "nope.tar")
    assert not (tmp_path / "nope.tar").exists()
