"""The vecdb server: one process owning a database, serving it over HTTP
(``vecdb serve``; the client is :func:`vecdb.connect`). Needs the
``server`` extra: ``pip install "vecdb-engine[server]"``."""

from vecdb.server.app import create_app
from vecdb.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
