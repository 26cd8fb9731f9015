"""Embeddings from an OpenAI-compatible HTTP endpoint (``POST
{base_url}/embeddings``): OpenAI's own, or any server speaking its API
(vLLM, Ollama, LiteLLM, text-embeddings-inference...). Needs ``httpx``,
imported only when such a function is made."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from vecdb.checks import check_timeout, positive_int
from vecdb.embeddings.protocol import check_texts
from vecdb.errors import (
    AuthenticationError, DimensionMismatchError, InvalidArgumentError, PermissionDeniedError, ServerError,
)

_INSTALL_HINT = 'OpenAI embeddings need the httpx package: pip install "vecdb-engine[openai]"'
# OpenAI takes up to 2,048 inputs per request; fewer keep each request
# below its per-request token limit for texts of a few hundred tokens.
DEFAULT_BATCH_SIZE = 256
# Embedding is idempotent, so a request refused for its rate (429) or lost
# to an endpoint's hiccup (5xx, a dropped connection) is sent again.
DEFAULT_RETRIES = 3
_RETRIED_STATUSES = (429, 500, 502, 503, 504)
_MAX_BACKOFF = 30.0
_PROBE_TEXT = "dimension probe"


class OpenAI:
    """``model`` served at ``base_url``'s ``/embeddings``, ``batch_size``
    texts per request. The API key is ``api_key``, else the environment
    variable ``api_key_env`` (none sent when neither is set: local servers
    often need none); it is never part of :meth:`config`, so a collection's
    stored settings hold no secret and a rebuilt function reads the variable.

    ``dim``: the model's vector length; None asks the endpoint (one request
    embedding a probe text, made here). Errors from the endpoint come back
    as :mod:`vecdb.errors` classes: a refused key as
    :class:`~vecdb.errors.AuthenticationError`, a refused request (unknown
    model, text too long) as :class:`~vecdb.errors.InvalidArgumentError`,
    an endpoint down or rate-limiting after ``retries`` retries as
    :class:`~vecdb.errors.ServerError`.
    """

    kind = "openai"

    def __init__(self, model: str = "text-embedding-3-small", base_url: str = "https://api.openai.com/v1",
                 api_key: Optional[str] = None, dim: Optional[int] = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0, retries: int = DEFAULT_RETRIES) -> None:
        try:
            import httpx
        except ImportError:
            raise ImportError(_INSTALL_HINT) from None
        if not isinstance(model, str) or not model:
            raise InvalidArgumentError(f"model must be a model name, got {model!r}")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"base_url must be an http(s) URL such as https://api.openai.com/v1, "
                                       f"got {base_url!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.batch_size = positive_int(batch_size, "batch_size")
        self.api_key_env = api_key_env
        self.retries = positive_int(retries, "retries", minimum=0)
        self.name = f"openai/{model}"
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self._httpx = httpx
        self._client = httpx.Client(headers=headers, timeout=check_timeout(timeout))
        self.dim = positive_int(dim, "dim") if dim is not None else self._request([_PROBE_TEXT]).shape[1]

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = self._request(texts[start:start + self.batch_size])
            if batch.shape[1] != self.dim:
                raise DimensionMismatchError(f"{self.base_url} returned {batch.shape[1]}-dimension vectors for "
                                             f"{self.model!r}, expected {self.dim}")
            vectors[start:start + len(batch)] = batch
        return vectors

    def _request(self, texts: List[str]) -> np.ndarray:
        """One request's vectors, in the order of ``texts``."""
        url = f"{self.base_url}/embeddings"
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        for attempt in range(self.retries + 1):
            last_try = attempt == self.retries
            try:
                response = self._client.post(url, json=body)
            except self._httpx.HTTPError as exc:  # unreachable, timed out, connection dropped
                if last_try:
                    raise ServerError(f"the embedding endpoint {url} did not answer: {exc}") from None
                time.sleep(_backoff(attempt, None))
                continue
            if response.status_code in _RETRIED_STATUSES and not last_try:
                time.sleep(_backoff(attempt, response.headers.get("retry-after")))
                continue
            if response.status_code != 200:
                raise _endpoint_error(url, self.model, self.api_key_env, response)
            return _vectors(url, response, len(texts))
        raise AssertionError("unreachable: the last try returns or raises")

    def config(self) -> Dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "model": self.model, "base_url": self.base_url,
                "dim": self.dim, "batch_size": self.batch_size, "api_key_env": self.api_key_env}

    def __repr__(self) -> str:  # never the key
        return f"OpenAI(model={self.model!r}, base_url={self.base_url!r}, dim={self.dim})"


def _backoff(attempt: int, retry_after: Optional[str]) -> float:
    """Seconds before retry ``attempt + 1``: what the endpoint asked for, else doubling from half a second."""
    try:
        asked = float(retry_after) if retry_after is not None else None
    except ValueError:  # an HTTP date: not worth parsing for a bounded wait
        asked = None
    return min(_MAX_BACKOFF, asked if asked is not None and asked >= 0 else 0.5 * 2 ** attempt)


def _message(response: Any) -> str:
    """The endpoint's own explanation: OpenAI's ``{"error": {"message": ...}}``, else the body's start."""
    try:
        error = response.json()["error"]
        return str(error["message"] if isinstance(error, dict) else error)
    except (ValueError, KeyError, TypeError):
        return response.text[:500]


def _endpoint_error(url: str, model: str, api_key_env: str, response: Any) -> Exception:
    status, message = response.status_code, _message(response)
    said = f"the embedding endpoint {url} answered HTTP {status}: {message}"
    if status == 401:
        return AuthenticationError(f"{said} (pass api_key= or set the environment variable {api_key_env})")
    if status == 403:
        return PermissionDeniedError(said)
    if status == 404:
        return InvalidArgumentError(f"{said} (is {model!r} a model it serves, and base_url its API's root?)")
    if status in _RETRIED_STATUSES or status >= 500:
        return ServerError(said)
    return InvalidArgumentError(said)


def _vectors(url: str, response: Any, count: int) -> np.ndarray:
    """The ``(count, dim)`` float32 vectors of an OpenAI-shaped answer
    (``{"data": [{"index": i, "embedding": [...]}, ...]}``), by index."""
    try:
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        vectors = np.array([item["embedding"] for item in data], dtype=np.float32)
    except (ValueError, KeyError, TypeError) as exc:
        raise ServerError(f"the embedding endpoint {url} answered with no embeddings in OpenAI's shape "
                          f"({type(exc).__name__}: {exc}): {response.text[:200]!r}") from None
    if vectors.ndim != 2 or len(vectors) != count or [item["index"] for item in data] != list(range(count)):
        raise ServerError(f"the embedding endpoint {url} answered {len(data)} embeddings for {count} texts")
    return np.ascontiguousarray(vectors)
