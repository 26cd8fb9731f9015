"""The Python client of ``vecdb serve``: :func:`connect` returns a database
with the embedded API."""

from vecdb.client.remote import RemoteCollection, RemoteDatabase, connect

__all__ = ["RemoteCollection", "RemoteDatabase", "connect"]
