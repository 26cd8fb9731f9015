"""vecdb.connect_async's HTTP transport (httpx) against the stand-in server
of test_client_transport.py: the failures no vecdb server gives on purpose,
met as the synchronous transport meets them."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

import pytest

from vecdb import errors
from vecdb.client.async_transport import AsyncTransport
from tests.server import test_client_transport

stand_in = test_client_transport.stand_in  # the same stand-in server, as a fixture here too

T = TypeVar("T")


def _run(url: str, timeout: float, use: Callable[[AsyncTransport], Awaitable[T]]) -> T:
    """``use`` a transport to ``url`` on an event loop of its own, closed after."""
    async def main() -> T:
        transport = AsyncTransport(url, None, timeout)
        try:
            return await use(transport)
        finally:
            await transport.close()

    return asyncio.run(main())


def test_a_read_that_outlasts_the_timeout_is_a_server_error(stand_in):
    async def use(transport: AsyncTransport) -> Any:
        with pytest.raises(errors.ServerError, match="did not answer GET /slow in time"):
            await transport.call("GET", "/slow")
        # The pool goes on: the next call gets a connection of its own.
        with pytest.raises(errors.CollectionNotFoundError, match="no such"):
            await transport.call("GET", "/v1/collections/x")

    _run(stand_in, 0.2, use)


def test_a_redirect_is_not_followed_but_refused(stand_in):
    with pytest.raises(errors.VecdbError, match="failed with HTTP 307"):
        _run(stand_in, 2.0, lambda transport: transport.call("GET", "/moved"))


def test_an_error_without_a_vecdb_body_reports_status_and_text(stand_in):
    with pytest.raises(errors.ServerError, match="HTTP 502: bad gateway from a proxy"):
        _run(stand_in, 2.0, lambda transport: transport.call("GET", "/plain-error"))


def test_a_server_behind_a_path_prefix_gets_its_prefix(stand_in):
    answer = _run(stand_in + "/proxy/", 2.0, lambda transport: transport.call("GET", "/v1/thing"))
    assert answer == {"path": "/proxy/v1/thing"}


def test_the_environments_proxy_is_used_unless_no_proxy_exempts_the_host(stand_in, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", stand_in)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    answer = _run("http://vecdb.invalid:8000", 2.0, lambda transport: transport.call("GET", "/v1/collections"))
    assert answer == {"proxied": "http://vecdb.invalid:8000/v1/collections"}
    host, port = test_client_transport._free_port()  # a proxy nobody answers at: only a direct call gets through
    monkeypatch.setenv("HTTP_PROXY", f"http://{host}:{port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert _run(stand_in, 2.0, lambda transport: transport.call("GET", "/proxy/v1/thing")) == {
        "path": "/proxy/v1/thing"}


def test_a_download_that_fails_midway_leaves_the_client_usable(stand_in, tmp_path):
    """The rest of a body left unread must not be read as the next answer."""
    target = tmp_path / "exists"
    target.write_bytes(b"")

    async def use(transport: AsyncTransport) -> Any:
        with pytest.raises(FileExistsError):
            await transport.download("/big", target)
        return await transport.call("GET", "/proxy/v1/thing")

    assert _run(stand_in, 2.0, use) == {"path": "/proxy/v1/thing"}
    assert target.read_bytes() == b""  # the file that was there, untouched


def test_a_failed_download_raises_the_servers_error(stand_in, tmp_path):
    with pytest.raises(errors.CollectionNotFoundError, match="no such"):
        _run(stand_in, 2.0, lambda transport: transport.download("/v1/backups/nope.tar", tmp_path / "nope.tar"))
    assert not (tmp_path / "nope.tar").exists()
