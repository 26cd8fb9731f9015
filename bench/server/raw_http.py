"""A minimal HTTP/1.1 client on asyncio streams, the load generator's lean alternative to httpx.

On the 2-core benchmark machine httpx.AsyncClient spends 1.4-2.4 ms of client CPU per search
request (it also writes headers and body in two sends, so the server wakes up twice), while
the server under test needs about 1 ms: with httpx, the client takes more of the shared
cores than the server. This client sends each request, prepared in advance, in one write on
a keep-alive connection and reads the answer by its Content-Length (~0.1 ms per request),
so the numbers measured with it are the server's. Only what both servers under test do is
supported: Content-Length bodies, keep-alive; chunked answers are refused.
"""

from __future__ import annotations

import asyncio
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit


class RawHttpError(Exception):
    """An answer this client cannot read (malformed, or chunked)."""


def encode_requests(url: str, path: str, headers: Dict[str, str], bodies: List[bytes]) -> List[bytes]:
    """One complete ``POST path`` request (request line, headers, body) per body."""
    authority = urlsplit(url).netloc
    head = f"POST {path} HTTP/1.1\r\nhost: {authority}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items())
    return [f"{head}content-length: {len(body)}\r\n\r\n".encode("latin-1") + body for body in bodies]


def _parse_head(head: bytes) -> Tuple[int, int, bool]:
    """Status, Content-Length and whether the server will close the connection."""
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise RawHttpError(f"malformed status line {lines[0]!r}") from None
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    if "content-length" not in fields:
        raise RawHttpError(f"answer without Content-Length ({fields.get('transfer-encoding', 'no')} transfer "
                           "encoding): this client reads Content-Length bodies only")
    return status, int(fields["content-length"]), fields.get("connection", "").lower() == "close"


class RawConnection:
    """One keep-alive connection to ``url``'s host, opened on first use and again after the
    server closes it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"expected http://HOST:PORT, got {url!r}")
        self.host, self.port = parts.hostname, parts.port
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None

    async def exchange(self, request: bytes) -> Tuple[int, bytes]:
        """Send one complete request; the answer's status and body."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(request)
            status, length, closing = _parse_head(await self._reader.readuntil(b"\r\n\r\n"))
            body = await self._reader.readexactly(length)
        except BaseException:
            await self.close()
            raise
        if closing:
            await self.close()
        return status, body

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass  # the peer went first
