"""vecdb.connect_async beyond what the API suite checks through its
synchronous facade (db[remote-async]): many coroutines sharing one
connection pool at once, errors raised in the caller's task as the classes
the synchronous client raises, backups, and closing."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, Callable, Iterator, List

import numpy as np
import pytest

import vecdb
from vecdb import errors
from vecdb.client.messages import POOL_SIZE
from vecdb.transfer.backup import restore_backup
from tests.support.servers import serve_in_thread


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    with serve_in_thread(tmp_path / "db") as url:
        yield url


def test_gathered_searches_share_one_pool_and_match_brute_force(server, rng):
    vectors = rng.standard_normal((400, 12)).astype(np.float32)
    queries = rng.standard_normal((3 * POOL_SIZE, 12)).astype(np.float32)  # more at once than it has connections

    async def main() -> List[List[vecdb.Hit]]:
        async with vecdb.connect_async(server) as db:
            docs = await db.create_collection("docs", dim=12, metric="l2", index=vecdb.Flat())
            # Writes at once too: four batches, each all or nothing.
            await asyncio.gather(*(docs.upsert(list(range(start, start + 100)), vectors[start:start + 100])
                                   for start in range(0, 400, 100)))
            assert await docs.count() == 400
            return await asyncio.gather(*(docs.search(query, k=5) for query in queries))

    results = asyncio.run(main())
    distances = ((queries[:, None, :].astype(np.float64) - vectors[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argsort(distances, axis=1)[:, :5]
    assert [[hit.id for hit in hits] for hits in results] == nearest.tolist()
    np.testing.assert_allclose([[hit.score for hit in hits] for hits in results],  # l2: the distance
                               np.sqrt(np.take_along_axis(distances, nearest, axis=1)), rtol=1e-4, atol=1e-4)


# Calls the server refuses, each as (database, collection) -> the call
# (a coroutine from the async client, the result from the sync one).
REFUSED: List[Callable[[Any, Any], Any]] = [
    lambda db, docs: db.create_collection("docs", dim=3),  # CollectionExistsError
    lambda db, docs: db.get_collection("nope"),  # CollectionNotFoundError
    lambda db, docs: db.get_collection("no/such"),  # refused before sending
    lambda db, docs: docs.search([1.0, 2.0], k=1),  # DimensionMismatchError
    lambda db, docs: docs.count(filter={"$bogus": 1}),  # InvalidFilterError
    lambda db, docs: docs.upsert(["a", "a"], np.ones((2, 3))),  # DuplicateIdError
    lambda db, docs: docs.upsert(["big"], np.ones((1, 3)), [{"n": 2**70}]),  # too big for MessagePack
    lambda db, docs: docs.create_payload_index("lang", "colour"),
]


def _raised(outcome: Callable[[], Any]) -> BaseException:
    with pytest.raises(errors.VecdbError) as raised:
        outcome()
    return raised.value


def test_errors_are_raised_as_the_sync_client_raises_them(server):
    with vecdb.connect(server) as db:
        docs = db.create_collection("docs", dim=3)
        expected = [_raised(lambda: call(db, docs)) for call in REFUSED]

    async def main() -> List[Any]:
        async with vecdb.connect_async(server) as db:
            docs = await db.get_collection("docs")
            # At once, each in its own task: one call's error reaches its own caller.
            return await asyncio.gather(docs.search([1.0, 0.0, 0.0], k=1), *(call(db, docs) for call in REFUSED),
                                        return_exceptions=True)

    fine, *refused = asyncio.run(main())
    assert fine == []  # an empty collection: no hits, no error
    assert [(type(error), str(error)) for error in refused] == [(type(error), str(error)) for error in expected]
    assert {type(error) for error in expected} >= {errors.CollectionExistsError, errors.CollectionNotFoundError,
                                                   errors.DimensionMismatchError, errors.InvalidFilterError,
                                                   errors.DuplicateIdError}


def test_an_unreachable_server_is_a_server_error_naming_it():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there once the probe closed

    async def main() -> None:
        async with vecdb.connect_async(url, timeout=2.0) as db:
            await db.list_collections()

    with pytest.raises(errors.ServerError, match=f"cannot reach the vecdb server at {url}"):
        asyncio.run(main())


def test_async_with_closes_the_pool_and_calls_after_it_raise_closed_error(server):
    async def main() -> None:
        async with vecdb.connect_async(server) as db:
            docs = await db.create_collection("docs", dim=2)
            await docs.upsert(["a"], [1.0, 0.0])
        with pytest.raises(errors.ClosedError, match="was closed"):
            await db.list_collections()
        with pytest.raises(errors.ClosedError, match="was closed"):
            await docs.count()
        await db.close()  # closing twice is harmless

    asyncio.run(main())
    with vecdb.connect(server) as db:  # the server's database stays open, the point kept
        assert db.get_collection("docs").count() == 1
    with pytest.raises(errors.ClosedError, match="was closed"):  # the sync client says the same
        db.list_collections()


def test_a_backup_downloads_a_restorable_archive(server, tmp_path, rng):
    vectors = rng.standard_normal((50, 4)).astype(np.float32)

    async def main() -> Any:
        async with vecdb.connect_async(server) as db:
            docs = await db.create_collection("docs", dim=4)
            await docs.upsert([f"d{i}" for i in range(50)], vectors, [{"i": i} for i in range(50)])
            archive = await db.backup(f"{tmp_path / 'downloads'}{os.sep}")  # a folder, made
            with pytest.raises(errors.BackupExistsError):
                await db.backup(archive)
            return archive

    archive = asyncio.run(main())
    assert archive.parent == tmp_path / "downloads"
    restore_backup(archive, tmp_path / "restored")
    with vecdb.open(tmp_path / "restored") as restored:
        records = restored.get_collection("docs").get(["d7"], with_vector=True)
        assert records[0].payload == {"i": 7}
        np.testing.assert_array_equal(records[0].vector, vectors[7])


def test_settings_read_from_the_server_are_coroutines_the_rest_properties(server):
    async def main() -> None:
        async with vecdb.connect_async(server) as db:
            docs = await db.create_collection("docs", dim=3, metric="ip", index=vecdb.Flat())
            await docs.create_payload_index("lang", "keyword")
            await docs.create_text_index("title", language=None)
            assert (docs.name, docs.dim, docs.metric, docs.index) == ("docs", 3, "ip", vecdb.Flat())
            assert await docs.payload_indexes() == {"lang": "keyword"}
            assert list(await docs.text_indexes()) == ["title"]
            assert repr(docs).startswith("AsyncRemoteCollection('docs', dim=3")
            assert await db.get_collection("docs") is docs  # one handle per collection, as in process

    asyncio.run(main())
