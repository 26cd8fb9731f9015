"""The Python clients of ``vecdb serve``: :func:`connect` returns a database
with the embedded API, :func:`connect_async` one whose methods are
coroutines."""

from vecdb.client.async_remote import AsyncRemoteCollection, AsyncRemoteDatabase, connect_async
from vecdb.client.remote import RemoteCollection, RemoteDatabase, connect

__all__ = ["AsyncRemoteCollection", "AsyncRemoteDatabase", "RemoteCollection", "RemoteDatabase", "connect",
           "connect_async"]
