"""What one server holds: the open database, its settings, and the threads
requests run on."""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, TypeVar

from starlette.requests import Request

from vecdb.api import CollectionAPI, DatabaseAPI
from vecdb.errors import InvalidArgumentError, PermissionDeniedError, RequestTooLargeError
from vecdb.progress import ProgressLog
from vecdb.server.guards import WRITE, ASGIApp, Receive, Scope, Send
from vecdb.server.settings import ServerSettings

T = TypeVar("T")
log = logging.getLogger("vecdb.server")
# Long work the server starts (an index built on open, a restore) is logged, never drawn.
progress_log = ProgressLog(log)


class ServedDatabase(DatabaseAPI, Protocol):
    """What a server serves: an embedded database (vecdb.open) or a
    cluster's (vecdb.cluster.open), each with the folder it lives in."""

    path: Path


@dataclass(frozen=True)
class Follower:
    """How a read-only database follows the writes of another process:
    ``catch_up`` (:meth:`vecdb.Database.refresh`) and ``behind``, whether
    it has anything to catch up with (a few microseconds)."""

    catch_up: Callable[[], None]
    behind: Callable[[], bool]


class ServerState:
    """Reads (searches, gets, counts) run on a pool of ``search_threads``
    threads: the native core releases the GIL, so they use every core.
    Writes run one at a time, in arrival order, on a thread of their own
    (LMDB has one writer anyway; a queue keeps requests from piling onto
    its lock).

    In a reader process of ``vecdb serve --workers N`` (``follower`` given:
    the database, open read-only), every read first catches up with what
    the writer process committed, so a read sees every write acknowledged
    before it began, whichever process answered either."""

    def __init__(self, database: ServedDatabase, settings: ServerSettings,
                 follower: Optional[Follower] = None) -> None:
        self.database = database
        self.settings = settings
        self.follower = follower
        self.readers = ThreadPoolExecutor(settings.search_threads, thread_name_prefix="vecdb-read")
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="vecdb-write")
        self.ready = False
        self.requests_in_flight = 0  # HTTP requests this process is answering (see counted)

    def counted(self, app: ASGIApp) -> ASGIApp:
        """``app``, keeping :attr:`requests_in_flight`."""

        async def counting(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            self.requests_in_flight += 1
            try:
                await app(scope, receive, send)
            finally:
                self.requests_in_flight -= 1

        return counting

    async def read_short(self, function: Callable[[], T]) -> T:
        """A read that takes a fraction of a millisecond (one query's
        search): run on the event loop's own thread when it is the only
        request this process is answering, else as :meth:`read`. Alone, the
        hop to a pool thread and back (two thread wake-ups) costs about as
        much as the search; with others in flight the pool lets searches
        overlap the loop's Python work. Never before the indexes are loaded
        (a first use may wait seconds for them, and the loop must stay free
        for /healthz), nor in a reader process that has writes to catch up
        with (replaying them may take as long)."""
        if self.requests_in_flight == 1 and self.ready and (self.follower is None or not self.follower.behind()):
            return function()
        return await self.read(function)

    async def read(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(function, *args, **kwargs)
        if self.follower is not None:
            call = functools.partial(_after, self.follower.catch_up, call)
        return await asyncio.get_running_loop().run_in_executor(self.readers, call)

    async def write(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self.writer, functools.partial(function, *args, **kwargs))

    def collection(self, name: str) -> CollectionAPI:
        """Only on the worker threads: a first use loads the index, and the
        database's lock may be held for seconds (warm-up, compaction); the
        event loop must stay free to answer /healthz."""
        return self.database.get_collection(name)

    async def read_on(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``collection(name).method(*args, **kwargs)`` on the read pool."""
        return await self.read(lambda: getattr(self.collection(name), method)(*args, **kwargs))

    async def write_on(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``collection(name).method(*args, **kwargs)`` on the writer thread."""
        return await self.write(lambda: getattr(self.collection(name), method)(*args, **kwargs))

    def warm_up(self) -> None:
        """Load every collection's indexes (from snapshots, or rebuilt), then
        report ready: the first searches should not pay for loading. A
        collection that fails to load is logged and left for its requests
        to report; it does not keep the others from being served."""
        names = self.database.list_collections()
        for name in names:
            try:
                self.database.get_collection(name)
            except Exception:
                log.exception("vecdb: collection %r could not be loaded", name)
        self.ready = True
        log.info("vecdb: %d collection(s) loaded, ready", len(names))

    def shut_down(self) -> None:
        """After the last request: finish queued work, snapshot the indexes,
        close LMDB."""
        self.ready = False
        self.readers.shutdown(wait=True)
        self.writer.shutdown(wait=True)
        self.database.close()

    # ---- limits ----

    def check_k(self, k: Any) -> None:
        if isinstance(k, int) and not isinstance(k, bool) and k > self.settings.max_k:
            raise InvalidArgumentError(f"k={k} exceeds this server's max_k={self.settings.max_k} (vecdb serve --max-k)")

    def check_limit(self, limit: Any) -> None:
        """A scroll page's size: a parameter, refused like a large k (400)."""
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > self.settings.max_batch:
            raise InvalidArgumentError(f"limit={limit} exceeds this server's max_batch={self.settings.max_batch} "
                                       "(vecdb serve --max-batch); scroll in pages")

    def check_queries(self, queries: int, k: Any) -> None:
        """A batch search: at most max_batch queries and max_hits results."""
        self.check_batch(queries, "queries")
        if isinstance(k, int) and queries * k > self.settings.max_hits:
            raise RequestTooLargeError(f"{queries:,} queries x k={k} would return more than this server's max_hits="
                                       f"{self.settings.max_hits:,} results (vecdb serve --max-hits); split the batch")

    def check_batch(self, count: int, what: str) -> None:
        if count > self.settings.max_batch:
            raise RequestTooLargeError(f"{count:,} {what} in one request exceed this server's max_batch="
                                       f"{self.settings.max_batch:,} (vecdb serve --max-batch); split the request")


def _after(first: Callable[[], None], then: Callable[[], T]) -> T:
    first()
    return then()


def state_of(request: Request) -> ServerState:
    return request.app.state.vecdb


def require_write(request: Request) -> None:
    """Route dependency of every route that changes data."""
    if request.scope.get("state", {}).get("access") != WRITE:
        raise PermissionDeniedError("this API key is read-only: it may search and read, not write")
