"""HTTP to a vecdb server for :func:`vecdb.connect_async`: one
httpx.AsyncClient (one connection pool), MessagePack both ways, and error
bodies turned back into the :mod:`vecdb.errors` class the server raised, as
:mod:`.transport` does for the synchronous client."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from vecdb.client.messages import (POOL_SIZE, Server, TransportErrors, decode_answer, encode_body, is_read,
                                   is_success, raise_error)


class AsyncTransport(TransportErrors):
    def __init__(self, url: str, api_key: Optional[str], timeout: float) -> None:
        try:
            import httpx  # imported here: `import vecdb` stays light for embedded use
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError('vecdb.connect_async needs httpx: pip install "vecdb-engine[client]"') from None
        server = Server.at(url, api_key)
        self.url = server.url
        self._closed = False  # once closed, every call raises ClosedError
        self._unreachable = httpx.ConnectError
        self._timeout_errors = httpx.TimeoutException
        self._errors = httpx.HTTPError
        # Requests beyond POOL_SIZE at once wait for a connection as long as
        # it takes (pool=None): the wait is the client's queue, not the
        # server's slowness, and each request's own timeout starts once it
        # has one.
        self._reads = httpx.Timeout(timeout, pool=None)
        self._patient = httpx.Timeout(timeout, read=None, write=None, pool=None)  # see messages.is_read
        # No retries (httpx makes none: a write sent twice is not the write
        # asked for) and no redirects followed (a 3xx is not an answer).
        # trust_env=False: the proxy is the one Server found, as for the
        # synchronous client, and nothing else is read from the environment.
        self._http = httpx.AsyncClient(headers=server.headers, proxy=server.proxy, trust_env=False,
                                       follow_redirects=False, timeout=self._reads,
                                       limits=httpx.Limits(max_connections=POOL_SIZE,
                                                           max_keepalive_connections=POOL_SIZE))

    async def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """``method path`` with ``body`` (MessagePack); the decoded answer,
        or the server's error raised as its vecdb.errors class."""
        content = encode_body(body)
        with self._server_errors(method, path):
            response = await self._http.request(method, self.url + path, content=content,
                                                timeout=self._timeout(method, path))
        if not is_success(response.status_code):
            raise_error(response.status_code, response.headers.get("content-type", ""), response.content, method, path)
        return decode_answer(response.headers.get("content-type", ""), response.content)

    def _timeout(self, method: str, path: str) -> Any:
        return self._reads if is_read(method, path) else self._patient

    async def download(self, path: str, target: Path) -> None:
        """Stream ``GET path`` into the new file ``target`` (removed again if
        the transfer fails). Chunks are written as they come, on the event
        loop's thread: a MiB into the page cache takes well under a
        millisecond. httpx closes the answer when the block ends, read
        whole or not, so a connection is never reused with a body left
        unread."""
        with self._server_errors("GET", path):
            async with self._http.stream("GET", self.url + path, timeout=self._timeout("GET", path)) as response:
                if not is_success(response.status_code):
                    raise_error(response.status_code, response.headers.get("content-type", ""),
                                await response.aread(), "GET", path)
                with open(target, "xb") as handle:
                    try:
                        async for chunk in response.aiter_bytes(1 << 20):
                            handle.write(chunk)
                    except BaseException:
                        target.unlink(missing_ok=True)
                        raise

    async def close(self) -> None:
        self._closed = True
        await self._http.aclose()  # every pooled connection
