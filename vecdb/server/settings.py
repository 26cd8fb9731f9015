"""The server's settings: keys and limits (``vecdb serve --help`` lists them)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Optional

from vecdb.errors import InvalidArgumentError


@dataclass(frozen=True)
class ServerSettings:
    """Limits and keys of one server.

    Attributes:
        api_key: required on every route but the health checks when set.
        read_only_key: a second key that may search and read but not write.
        max_body_bytes: larger request bodies get 413 before they are read.
        max_k: largest ``k`` of a search.
        max_batch: most points in one upsert, ids in one get, records in
            one scroll page, or queries in one batch search.
        max_hits: most results in one search request (queries x k), so a
            batch cannot ask the server for gigabytes of hits.
        max_payload_bytes: largest payload of one point (encoded as msgpack).
        max_upload_bytes: largest backup archive uploaded (``PUT
            /v1/backups/{name}``, streamed to disk, so not bound by
            ``max_body_bytes``).
        search_threads: threads running searches (the native core releases
            the GIL, so searches use every core); writes run one at a time
            on a thread of their own.
    """

    api_key: Optional[str] = None
    read_only_key: Optional[str] = None
    max_body_bytes: int = 64 * 2**20
    max_k: int = 10_000
    max_batch: int = 100_000
    max_hits: int = 1_000_000
    max_payload_bytes: int = 2**20
    max_upload_bytes: int = 64 * 2**30
    search_threads: int = max(2, os.cpu_count() or 1)

    def __post_init__(self) -> None:
        for name in ("api_key", "read_only_key"):
            key = getattr(self, name)
            if key is not None and len(key) < 16:
                raise InvalidArgumentError(f"{name} must be at least 16 characters (got {len(key)})")
        if self.read_only_key is not None and self.api_key is None:
            raise InvalidArgumentError("a read-only key needs an API key too (otherwise anyone may write)")
        if self.read_only_key is not None and self.read_only_key == self.api_key:
            raise InvalidArgumentError("the read-only key must differ from the API key")
        for name in ("max_body_bytes", "max_k", "max_batch", "max_hits", "max_payload_bytes", "max_upload_bytes",
                     "search_threads"):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be at least 1, got {getattr(self, name)}")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False
