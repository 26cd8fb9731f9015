"""HTTP to a vecdb server for :func:`vecdb.connect`: one urllib3
connection pool, MessagePack both ways, and error bodies turned back into
the :mod:`vecdb.errors` class the server raised (:mod:`.messages`).

urllib3 rather than httpx: httpx's URL handling and pure-Python h11 parser
cost about as much client CPU per call as the server's whole answer; one
search's p50 went from 0.85-0.92 to 0.49-0.57 ms against the same server.
(:mod:`.async_transport` uses httpx: urllib3 has no asyncio client.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from vecdb.client.messages import (POOL_SIZE, Server, TransportErrors, decode_answer, encode_body, is_read,
                                   is_success, raise_error)


class Transport(TransportErrors):
    def __init__(self, url: str, api_key: Optional[str], timeout: float) -> None:
        try:
            import urllib3  # imported here: `import vecdb` stays light for embedded use
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError('vecdb.connect needs urllib3: pip install "vecdb-engine[client]"') from None
        server = Server.at(url, api_key)
        self.url = server.url
        self._closed = False  # once closed, every call raises ClosedError
        # urllib3's NewConnectionError (refused, unresolvable) is also a
        # ConnectTimeoutError: tried first, so it is not reported as slowness.
        self._unreachable = urllib3.exceptions.NewConnectionError
        self._timeout_errors = urllib3.exceptions.TimeoutError
        self._errors = urllib3.exceptions.HTTPError
        self._reads = urllib3.Timeout(connect=timeout, read=timeout)
        self._patient = urllib3.Timeout(connect=timeout, read=None)  # see messages.is_read
        # No retries (a write sent twice is not the write asked for) and no
        # redirects followed (a 3xx is not an answer): both come back as errors.
        # Beyond POOL_SIZE connections in use, extra ones are opened and
        # closed after their request.
        self._http: Any
        if server.proxy is None:  # the server's own pool, which takes paths
            self._http = urllib3.connection_from_url(self.url, maxsize=POOL_SIZE, headers=server.headers,
                                                     retries=False, timeout=self._reads)
            self._target, self._close = urlsplit(self.url).path, self._http.close
        else:  # a proxy is sent whole URLs
            self._http = urllib3.ProxyManager(server.proxy, num_pools=1, maxsize=POOL_SIZE, headers=server.headers,
                                              retries=False, timeout=self._reads)
            self._target, self._close = self.url, self._http.clear

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """``method path`` with ``body`` (MessagePack); the decoded answer,
        or the server's error raised as its vecdb.errors class."""
        response = self._request(method, path, encode_body(body), preload_content=True)
        if not is_success(response.status):
            self._raise(response, method, path)
        return decode_answer(response.headers.get("content-type", ""), response.data)

    def _request(self, method: str, path: str, content: Optional[bytes], preload_content: bool) -> Any:
        with self._server_errors(method, path):
            return self._http.urlopen(method, self._target + path, body=content, redirect=False,
                                      timeout=self._reads if is_read(method, path) else self._patient,
                                      preload_content=preload_content)

    @staticmethod
    def _raise(response: Any, method: str, path: str) -> None:
        raise_error(response.status, response.headers.get("content-type", ""), response.data, method, path)

    def download(self, path: str, target: Path) -> None:
        """Stream ``GET path`` into the new file ``target`` (removed again if
        the transfer fails)."""
        response = self._request("GET", path, None, preload_content=False)
        try:
            if not is_success(response.status):
                self._raise(response, "GET", path)  # reads the (error) body whole
            with self._server_errors("GET", path), open(target, "xb") as handle:
                try:
                    for chunk in response.stream(1 << 20):
                        handle.write(chunk)
                except BaseException:
                    target.unlink(missing_ok=True)
                    raise
        except BaseException:
            if not response.isclosed():  # the rest of the archive unread: this connection can serve nothing else
                response.close()
            raise
        finally:
            response.release_conn()

    def close(self) -> None:
        self._closed = True
        self._close()  # every pooled connection
