"""HTTP to a vecdb server: one pooled httpx client, MessagePack both ways,
and error bodies turned back into the :mod:`vecdb.errors` class the server
raised."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional
from urllib.parse import quote

from vecdb.errors import InvalidArgumentError, ServerError, error_class
from vecdb.wire import MSGPACK, decode_msgpack, encode_msgpack


class Transport:
    def __init__(self, url: str, api_key: Optional[str], timeout: float) -> None:
        try:
            import httpx  # imported here: `import vecdb` stays light for embedded use
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError('vecdb.connect needs httpx: pip install "vecdb-engine[client]"') from None
        self._errors = (httpx.TimeoutException, httpx.TransportError)
        # Writes and upkeep (upsert, tune, backups...) may take minutes, and
        # giving up on one would leave its outcome unknown: they wait.
        self._patient = httpx.Timeout(timeout, read=None, write=None)
        headers = {"accept": MSGPACK, "content-type": MSGPACK, "user-agent": "vecdb-client"}
        if api_key is not None:
            headers["authorization"] = f"Bearer {api_key}"
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

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
        timeout, transport = self._errors
        try:
            response = self._http.request(method, path, content=content,
                                          timeout=self._http.timeout if _is_read(method, path) else self._patient)
        except timeout as exc:
            raise ServerError(f"vecdb server at {self.url} did not answer {method} {path} in time: {exc}") from None
        except transport as exc:
            raise ServerError(f"cannot reach the vecdb server at {self.url}: {exc}") from None
        if not 200 <= response.status_code < 300:  # a 3xx is not an answer either
            self._raise(response, method, path)
        return _decode(response)

    @staticmethod
    def _raise(response: Any, method: str, path: str) -> None:
        answer = _decode(response)
        error = answer.get("error") if isinstance(answer, dict) else None
        if not isinstance(error, dict):
            raise error_class("", response.status_code)(
                f"{method} {path} failed with HTTP {response.status_code}: {response.text[:200]}")
        raise error_class(str(error.get("type")), response.status_code)(str(error.get("message")))

    def download(self, path: str, target: Path) -> None:
        """Stream ``GET path`` into the new file ``target`` (removed again if
        the transfer fails)."""
        timeout, transport = self._errors
        try:
            with self._http.stream("GET", path) as response:
                if not 200 <= response.status_code < 300:
                    response.read()
                    self._raise(response, "GET", path)
                with open(target, "xb") as handle:
                    try:
                        for chunk in response.iter_bytes(1 << 20):
                            handle.write(chunk)
                    except BaseException:
                        target.unlink(missing_ok=True)
                        raise
        except timeout as exc:
            raise ServerError(f"vecdb server at {self.url} did not answer GET {path} in time: {exc}") from None
        except transport as exc:
            raise ServerError(f"cannot reach the vecdb server at {self.url}: {exc}") from None

    def close(self) -> None:
        self._http.close()


def _decode(response: Any) -> Any:
    media = response.headers.get("content-type", "").split(";")[0]
    if media == MSGPACK:
        return decode_msgpack(response.content)
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
