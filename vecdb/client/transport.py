"""HTTP to a vecdb server: one urllib3 connection pool, MessagePack both
ways, and error bodies turned back into the :mod:`vecdb.errors` class the
server raised.

urllib3 rather than httpx: httpx's URL handling and pure-Python h11 parser
cost about as much client CPU per call as the server's whole answer; one
search's p50 went from 0.85-0.92 to 0.49-0.57 ms against the same server."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Dict, Iterator, Optional
from urllib.parse import quote, urlsplit
from urllib.request import getproxies, proxy_bypass

from vecdb.errors import InvalidArgumentError, ServerError, error_class
from vecdb.wire import MSGPACK, decode_msgpack, encode_msgpack

# Connections kept open for reuse, as many as threads sharing a client use
# at once (beyond it, extra ones are opened and closed after their request).
POOL_SIZE = 100


class Transport:
    def __init__(self, url: str, api_key: Optional[str], timeout: float) -> None:
        try:
            import urllib3  # imported here: `import vecdb` stays light for embedded use
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError('vecdb.connect needs urllib3: pip install "vecdb-engine[client]"') from None
        # urllib3's NewConnectionError (refused, unresolvable) is also a
        # ConnectTimeoutError: tried first, so it is not reported as slowness.
        self._unreachable = urllib3.exceptions.NewConnectionError
        self._timeout_errors = urllib3.exceptions.TimeoutError
        self._errors = urllib3.exceptions.HTTPError
        self._reads = urllib3.Timeout(connect=timeout, read=timeout)
        # Writes and upkeep (upsert, tune, backups...) may take minutes, and
        # giving up on one would leave its outcome unknown: they wait.
        self._patient = urllib3.Timeout(connect=timeout, read=None)
        headers = {"accept": MSGPACK, "content-type": MSGPACK, "user-agent": "vecdb-client"}
        if api_key is not None:
            headers["authorization"] = f"Bearer {api_key}"
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgumentError(f"expected a server URL such as http://127.0.0.1:8000, got {url!r}")
        # No retries (a write sent twice is not the write asked for) and no
        # redirects followed (a 3xx is not an answer): both come back as errors.
        proxy = _proxy_for(parts.scheme, parts.hostname)
        self._http: Any
        if proxy is None:  # the server's own pool, which takes paths
            self._http = urllib3.connection_from_url(self.url, maxsize=POOL_SIZE, headers=headers, retries=False,
                                                     timeout=self._reads)
            self._target, self._close = parts.path, self._http.close
        else:  # a proxy is sent whole URLs
            self._http = urllib3.ProxyManager(proxy, num_pools=1, maxsize=POOL_SIZE, headers=headers, retries=False,
                                              timeout=self._reads)
            self._target, self._close = self.url, self._http.clear

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """``method path`` with ``body`` (MessagePack); the decoded answer,
        or the server's error raised as its vecdb.errors class."""
        try:
            content = None if body is None else encode_msgpack(body)
        except OverflowError:  # what an embedded call would say
            raise InvalidArgumentError("an integer in the request does not fit in 64 bits") from None
        except UnicodeEncodeError:
            raise InvalidArgumentError("a string in the request is not valid Unicode text (it holds a lone "
                                       "surrogate, which UTF-8, JSON and MessagePack cannot carry)") from None
        response = self._request(method, path, content, preload_content=True)
        if not 200 <= response.status < 300:  # a 3xx is not an answer either
            self._raise(response, method, path)
        return _decode(response)

    def _request(self, method: str, path: str, content: Optional[bytes], preload_content: bool) -> Any:
        with self._server_errors(method, path):
            return self._http.urlopen(method, self._target + path, body=content, redirect=False,
                                      timeout=self._reads if _is_read(method, path) else self._patient,
                                      preload_content=preload_content)

    @contextlib.contextmanager
    def _server_errors(self, method: str, path: str) -> Iterator[None]:
        """urllib3's errors in its scope raised as ServerErrors naming the server."""
        try:
            yield
        except self._unreachable as exc:
            raise ServerError(f"cannot reach the vecdb server at {self.url}: {exc}") from None
        except self._timeout_errors as exc:
            raise ServerError(f"vecdb server at {self.url} did not answer {method} {path} in time: {exc}") from None
        except self._errors as exc:
            raise ServerError(f"cannot reach the vecdb server at {self.url}: {exc}") from None

    @staticmethod
    def _raise(response: Any, method: str, path: str) -> None:
        answer = _decode(response)
        error = answer.get("error") if isinstance(answer, dict) else None
        if not isinstance(error, dict):
            text = response.data.decode("utf-8", "replace")[:200]
            raise error_class("", response.status)(f"{method} {path} failed with HTTP {response.status}: {text}")
        raise error_class(str(error.get("type")), response.status)(str(error.get("message")))

    def download(self, path: str, target: Path) -> None:
        """Stream ``GET path`` into the new file ``target`` (removed again if
        the transfer fails)."""
        response = self._request("GET", path, None, preload_content=False)
        try:
            if not 200 <= response.status < 300:
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
        self._close()  # every pooled connection


def _proxy_for(scheme: str, host: str) -> Optional[str]:
    """The proxy the environment names for ``scheme`` (HTTP_PROXY,
    HTTPS_PROXY, ALL_PROXY) unless NO_PROXY exempts ``host``, as curl and
    httpx (this client before) read them."""
    proxy = getproxies().get(scheme) or getproxies().get("all")
    return None if not proxy or proxy_bypass(host) else proxy


def _decode(response: Any) -> Any:
    media = response.headers.get("content-type", "").split(";")[0]
    if media == MSGPACK:
        return decode_msgpack(response.data)
    try:
        return response.json()
    except ValueError:
        return None


_READ_ROUTES = ("/search", "/search/batch", "/explain", "/points/get", "/points/count", "/points/scroll")


def _is_read(method: str, path: str) -> bool:
    return method == "GET" or path.endswith(_READ_ROUTES)


def segment(value: str) -> str:
    """A path segment (a collection name or payload field) sent verbatim:
    the server validates it, so a slash or dot reaches it as data. Dots are
    encoded too: an HTTP client resolves a bare ``..`` segment, turning
    ``.../payload-indexes/..`` into the collection's own URL."""
    return quote(str(value), safe="").replace(".", "%2E")
