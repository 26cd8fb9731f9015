"""The databases the framework adapters are tested on: embedded
(vecdb.open, new per test) and remote (vecdb.connect to one real `vecdb
serve` process on 127.0.0.1 for the whole session, emptied after each
test)."""

from __future__ import annotations

import pytest

import vecdb


@pytest.fixture(scope="session")
def vecdb_server(tmp_path_factory):
    """A `vecdb serve` process shared by the remote tests (starting one per
    test would cost a second each)."""
    from tests.support.servers import ServerProcess

    with ServerProcess(tmp_path_factory.mktemp("serve") / "db") as server:
        yield server


@pytest.fixture
def remote_database(vecdb_server):
    """The shared server, connected, empty; every collection a test made
    there is dropped after it."""
    with vecdb.connect(vecdb_server.url) as connected:
        assert connected.list_collections() == [], "a test left collections on the shared server"
        try:
            yield connected
        finally:
            for name in connected.list_collections():
                connected.drop_collection(name)


@pytest.fixture(params=["embedded", "remote"])
def database(request, tmp_path):
    """An empty database: embedded, or remote (the shared server)."""
    if request.param == "remote":
        yield request.getfixturevalue("remote_database")
        return
    with vecdb.open(tmp_path / "db") as opened:
        yield opened
