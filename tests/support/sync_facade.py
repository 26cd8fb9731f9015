"""The asynchronous client behind the synchronous API, so the API suite
(the ``db`` fixture's ``remote-async`` database) runs on
vecdb.connect_async: each method's coroutine runs on an event loop in a
background thread, the caller waiting for its result (or its exception,
raised as is). Forwarding is built from vecdb.api's Protocols, so a method
or argument added there reaches the async client untouched; what the async
client does differently (``async with``, ``len``, the settings it asks the
server for) is translated back here."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, Callable, Coroutine, Dict, Optional, TypeVar

import vecdb
from vecdb.api import CollectionAPI, DatabaseAPI

T = TypeVar("T")


class EventLoopThread:
    """An asyncio event loop running on a daemon thread until :meth:`close`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="vecdb-async-client", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop; its result, or its exception raised here."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _Facade:
    def __init__(self, target: Any, loop: EventLoopThread, handles: Dict[Any, "SyncCollection"]) -> None:
        self._target = target
        self._loop = loop
        self._handles = handles  # one facade per async collection handle, as one handle per collection

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        result = self._loop.run(coroutine)
        if not isinstance(result, vecdb.AsyncRemoteCollection):
            return result
        if result not in self._handles:
            self._handles[result] = SyncCollection(result, self._loop, self._handles)
        return self._handles[result]

    def __repr__(self) -> str:
        return f"sync({self._target!r})"


def _forward_protocol(facade: type, protocol: type, asynchronous: type) -> None:
    """Give ``facade`` every public member of ``protocol`` it does not
    define itself, forwarded to the ``asynchronous`` class's."""
    for name, declared in vars(protocol).items():
        if name.startswith("_") or name in vars(facade):
            continue
        member = inspect.getattr_static(asynchronous, name)
        if isinstance(member, property):
            setattr(facade, name, property(lambda self, name=name: getattr(self._target, name)))
        elif isinstance(declared, property):  # a setting the async client asks the server for
            setattr(facade, name, property(lambda self, name=name: self._run(getattr(self._target, name)())))
        else:
            assert inspect.iscoroutinefunction(member), f"{asynchronous.__name__}.{name} is not a coroutine"
            setattr(facade, name, _method(name))


def _method(name: str) -> Callable[..., Any]:
    def method(self: _Facade, *args: Any, **kwargs: Any) -> Any:
        return self._run(getattr(self._target, name)(*args, **kwargs))

    method.__name__ = name
    return method


class SyncCollection(_Facade, CollectionAPI):
    """An AsyncRemoteCollection as a CollectionAPI."""

    def __len__(self) -> int:
        return self._loop.run(self._target.count())


class SyncDatabase(_Facade, DatabaseAPI):
    """An AsyncRemoteDatabase as a DatabaseAPI; closing it closes the async
    database, then stops its event loop."""

    def __enter__(self) -> "SyncDatabase":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.loop.is_closed():
            self._loop.run(self._target.close())
            self._loop.close()


def connect(url: str, *, api_key: Optional[str] = None) -> SyncDatabase:
    """vecdb.connect_async(url) behind the synchronous API, on an event loop
    of its own (the client's connections are made on it, at first use)."""
    return SyncDatabase(vecdb.connect_async(url, api_key=api_key), EventLoopThread(), {})


_forward_protocol(SyncCollection, CollectionAPI, vecdb.AsyncRemoteCollection)
_forward_protocol(SyncDatabase, DatabaseAPI, vecdb.AsyncRemoteDatabase)
