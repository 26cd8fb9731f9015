"""What the two clients (:func:`vecdb.connect` on urllib3,
:func:`vecdb.connect_async` on httpx) share about HTTP: a method's request
and the reading of its answer (:class:`Call`), the server's address and
the headers every request carries, request bodies as MessagePack, answers
decoded, and error answers raised as the :mod:`vecdb.errors` class the
server raised."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, Iterator, NoReturn, Optional, Type, TypeVar
from urllib.parse import quote, urlsplit
from urllib.request import getproxies, proxy_bypass

from vecdb.errors import ClosedError, InvalidArgumentError, ServerError, error_class
from vecdb.wire import MSGPACK, decode_msgpack, encode_msgpack

# Connections kept open for reuse, as many as threads (or tasks) sharing a
# client use at once. The synchronous client opens more beyond it, closed
# after their request; the asynchronous one has requests wait for one.
POOL_SIZE = 100

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """The request one client method makes, and how its answer becomes the
    method's result: built once for both clients (.collection_calls,
    .database_calls), sent by each with its own transport."""

    method: str
    path: str
    body: Optional[Dict[str, Any]]
    result: Callable[[Any], T]


def segment(value: str) -> str:
    """A path segment (a collection name or payload field) sent verbatim:
    the server validates it, so a slash or dot reaches it as data. Dots are
    encoded too: an HTTP client resolves a bare ``..`` segment, turning
    ``.../payload-indexes/..`` into the collection's own URL."""
    return quote(str(value), safe="").replace(".", "%2E")


@dataclass(frozen=True)
class Server:
    """Where a client sends its requests and what each one carries."""

    url: str  # without a trailing slash: a request's path is appended to it
    proxy: Optional[str]  # the environment's proxy for it, if any
    headers: Dict[str, str]

    @classmethod
    def at(cls, url: str, api_key: Optional[str]) -> "Server":
        """The server at ``url`` (http or https, with a host, optionally a
        path prefix), reached with ``api_key`` if given."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgumentError(f"expected a server URL such as http://127.0.0.1:8000, got {url!r}")
        headers = {"accept": MSGPACK, "content-type": MSGPACK, "user-agent": "vecdb-client"}
        if api_key is not None:
            headers["authorization"] = f"Bearer {api_key}"
        return cls(url.rstrip("/"), _proxy_for(parts.scheme, parts.hostname), headers)


class TransportErrors:
    """What both transports do with their HTTP library's errors: set
    ``url``, ``_closed`` and the library's error classes, and send inside
    :meth:`_server_errors`."""

    url: str
    _closed: bool
    _unreachable: Type[BaseException]  # refused, unresolvable
    _timeout_errors: Type[BaseException]
    _errors: Type[BaseException]  # the rest of the library's

    @contextlib.contextmanager
    def _server_errors(self, method: str, path: str) -> Iterator[None]:
        """The library's errors in its scope raised as ServerErrors naming
        the server; nothing sent once the client is closed."""
        if self._closed:
            raise ClosedError(f"the client of the vecdb server at {self.url} was closed")
        try:
            yield
        except self._unreachable as exc:
            raise ServerError(f"cannot reach the vecdb server at {self.url}: {exc}") from None
        except self._timeout_errors as exc:
            raise ServerError(f"vecdb server at {self.url} did not answer {method} {path} in time: {exc}") from None
        except self._errors as exc:
            raise ServerError(f"cannot reach the vecdb server at {self.url}: {exc}") from None


def _proxy_for(scheme: str, host: str) -> Optional[str]:
    """The proxy the environment names for ``scheme`` (HTTP_PROXY,
    HTTPS_PROXY, ALL_PROXY) unless NO_PROXY exempts ``host``, as curl and
    httpx read them."""
    proxy = getproxies().get(scheme) or getproxies().get("all")
    return None if not proxy or proxy_bypass(host) else proxy


def encode_body(body: Optional[Dict[str, Any]]) -> Optional[bytes]:
    """A request's body as MessagePack; what it cannot carry refused as an
    embedded call would refuse it."""
    try:
        return None if body is None else encode_msgpack(body)
    except OverflowError:
        raise InvalidArgumentError("an integer in the request does not fit in 64 bits") from None
    except UnicodeEncodeError:
        raise InvalidArgumentError("a string in the request is not valid Unicode text (it holds a lone "
                                   "surrogate, which UTF-8, JSON and MessagePack cannot carry)") from None


def decode_answer(content_type: str, data: bytes) -> Any:
    """An answer's body: MessagePack, JSON, or None if it is neither."""
    if content_type.split(";")[0] == MSGPACK:
        return decode_msgpack(data)
    try:
        return json.loads(data)
    except ValueError:
        return None


def is_success(status: int) -> bool:
    return 200 <= status < 300  # a 3xx is not an answer: redirects are not followed


def raise_error(status: int, content_type: str, data: bytes, method: str, path: str) -> NoReturn:
    """Raise the error answer ``status`` as the vecdb.errors class its body
    names (or the closest class for the status, with its text)."""
    answer = decode_answer(content_type, data)
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        text = data.decode("utf-8", "replace")[:200]
        raise error_class("", status)(f"{method} {path} failed with HTTP {status}: {text}")
    raise error_class(str(error.get("type")), status)(str(error.get("message")))


_READ_ROUTES = ("/search", "/search/batch", "/explain", "/points/get", "/points/count", "/points/scroll")


def is_read(method: str, path: str) -> bool:
    """Whether ``method path`` only reads: bounded by the client's timeout.
    Writes and upkeep (upsert, tune, backups...) may take minutes, and
    giving up on one would leave its outcome unknown: they wait."""
    return method == "GET" or path.endswith(_READ_ROUTES)
