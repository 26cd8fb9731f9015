"""Shared fixtures: every test that takes `simd_level` runs once per SIMD
level this CPU supports, with the level forced and restored afterwards.

VECDB_TEST_SERVER=<url> runs the API suite against that server alone (the
``db`` fixture's one backend), with what tests/support/external_server.py
does to a run: .ci/wheel-smoke runs tests/api this way in a virtualenv with
only the vecdb-client distribution, where the engine cannot be imported."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

import vecdb

EXTERNAL_SERVER = os.environ.get("VECDB_TEST_SERVER")


@pytest.fixture(params=[] if EXTERNAL_SERVER else vecdb.simd_levels())
def simd_level(request):
    previous = vecdb.simd_level()
    vecdb.set_simd_level(request.param)
    yield request.param
    vecdb.set_simd_level(previous)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local 3-node Ray cluster for the whole session, started on first
    use (only in a network namespace with loopback alone: see
    tests/support/ray_cluster.py)."""
    from tests.support.ray_cluster import local_ray_cluster

    with local_ray_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["external"] if EXTERNAL_SERVER else
                ["embedded", "remote", "remote-reader", "remote-async", "cluster"])
def db(request, tmp_path):
    """An empty database: embedded (vecdb.open) and remote, the same API
    over HTTP (a vecdb server on a free port reached with vecdb.connect),
    both new; remote through a reader worker of ``vecdb serve --workers``
    (reads answered on a read-only handle that catches up, writes passed on
    to the writer); remote through vecdb.connect_async, each coroutine run
    on an event loop in a background thread (tests/support/sync_facade.py);
    and a 2-shard cluster on Ray (vecdb.cluster.open), shared (see
    shared_cluster). Tests taking it are the API suite all must pass. With
    VECDB_TEST_SERVER set, the one backend is that server, shared too (see
    the module docstring)."""
    if request.param == "embedded":
        with vecdb.open(tmp_path / "db") as database:
            yield database
    elif request.param.startswith("remote"):
        from tests.support import sync_facade
        from tests.support.servers import serve_in_thread, serve_reader_in_threads

        serve = serve_reader_in_threads if request.param == "remote-reader" else serve_in_thread
        connect = sync_facade.connect if request.param == "remote-async" else vecdb.connect
        with serve(tmp_path / "db") as url, connect(url) as database:
            yield database
    elif request.param == "external":
        with vecdb.connect(EXTERNAL_SERVER) as database, _emptied_after(database):
            yield database
    else:
        with _emptied_after(request.getfixturevalue("shared_cluster")) as database:
            yield database


@contextlib.contextmanager
def _emptied_after(database):
    """A database shared by the tests (the shared cluster, an external
    server), given to each one empty: every collection it made is dropped."""
    assert database.list_collections() == [], "a test left collections in a shared database"
    try:
        yield database
    finally:
        for name in database.list_collections():
            database.drop_collection(name)


@pytest.fixture(scope="session")
def shared_cluster(ray_cluster, tmp_path_factory):
    """The 2-shard cluster behind every ``db[cluster]`` test. Starting shard
    actors costs ~2 s (each is a worker process that imports Ray and vecdb),
    and ~200 tests take ``db``: they share one cluster instead, each given it
    empty (the ``db`` fixture drops every collection a test made)."""
    from vecdb.cluster import open as open_cluster

    with open_cluster(tmp_path_factory.mktemp("cluster") / "db", shards=2) as database:
        yield database


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


# CI runs the property tests with a fixed seed sequence so a red build is
# reproducible; `make test-slow` runs them again with a fresh seed it prints
# (VECDB_HYPOTHESIS_PROFILE=fresh, --hypothesis-seed), so examples CI's
# sequence never reaches get tried too; locally hypothesis explores new
# examples each run.
from hypothesis import is_hypothesis_test, settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
settings.register_profile("fresh", derandomize=False, print_blob=True)
_profile = os.environ.get("VECDB_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else None)
if _profile:
    settings.load_profile(_profile)


def pytest_configure(config):
    if EXTERNAL_SERVER:
        from tests.support import external_server

        config.pluginmanager.register(external_server, "vecdb-external-server")


@pytest.hookimpl(hookwrapper=True)  # old style: the test extra allows pytest 7
def pytest_collection_modifyitems(items):
    """Mark every hypothesis test `properties` (make test-slow selects them),
    and send every test that uses Ray to one xdist worker (``make test`` runs
    ``-n 2 --dist loadgroup``): the session's Ray cluster and the cluster
    modules' own fixtures then start once, not on every worker. The marks
    are made before the other plugins (xdist's loadgroup among them) look."""
    for item in items:
        if is_hypothesis_test(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.properties)
        if _uses_ray(item):
            item.add_marker(pytest.mark.xdist_group("ray"))
    yield
    for item in items:
        _keep_xdist_group_in_nodeid(item)


def _uses_ray(item) -> bool:
    callspec = getattr(item, "callspec", None)
    return "ray_cluster" in getattr(item, "fixturenames", ()) or (
        callspec is not None and callspec.params.get("db") == "cluster")


def _keep_xdist_group_in_nodeid(item) -> None:
    """xdist's loadgroup tells the scheduler a test's group by appending
    ``@group`` to its ``item._nodeid``, which pytest 9.2 no longer reads (the
    node id is ``item._id``, structured): without this every group would be
    spread over the workers (pytest-dev/pytest-xdist#1386)."""
    renamed = item.__dict__.get("_nodeid")
    if renamed is not None and renamed != item.nodeid:
        item._id = type(item.id).parse(renamed)
