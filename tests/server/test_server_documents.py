"""Documents and embedding configs over raw HTTP, in JSON and in
MessagePack: upserts with ``documents`` (nulls too), ``with_document`` on
search, batch search, recommend, get and scroll, ``$document`` filters,
a collection created with an ``embedding`` config (kept and described, never
run by the server); bad bodies get a 4xx with the JSON error body. The API
suite (tests/api/test_documents.py) covers the Python client."""

from __future__ import annotations

import httpx
import msgpack
import pytest

from tests.support.servers import serve_in_thread

PACKED = {"content-type": "application/msgpack", "accept": "application/msgpack"}
DOCUMENTS = ["alpha beta", None, "beta gamma", "ünïcode ✓"]


def _post(url: str, path: str, body, packed: bool = False) -> httpx.Response:
    if packed:
        return httpx.post(url + path, content=msgpack.packb(body, use_bin_type=True), headers=PACKED, timeout=60)
    return httpx.post(url + path, json=body, timeout=60)


def _answer(response: httpx.Response):
    assert response.status_code in (200, 201), response.text
    if response.headers["content-type"] == "application/msgpack":
        return msgpack.unpackb(response.content, raw=False, strict_map_key=False)
    return response.json()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with serve_in_thread(tmp_path_factory.mktemp("documents") / "db") as served:
        _answer(_post(served, "/v1/collections", {"name": "docs", "dim": 2, "index": {"kind": "flat"}}))
        _answer(_post(served, "/v1/collections/docs/points", {
            "ids": [1, 2, 3, 4], "vectors": [[1, 0], [0.9, 0.1], [0, 1], [0.5, 0.5]], "documents": DOCUMENTS}))
        yield served


@pytest.mark.parametrize("packed", [False, True])
def test_documents_come_back_where_asked(url, packed):
    hits = _answer(_post(url, "/v1/collections/docs/search", {"vector": [1, 0], "k": 4, "with_document": True},
                         packed))["hits"]
    assert {hit["id"]: hit.get("document") for hit in hits} == dict(zip([1, 2, 3, 4], DOCUMENTS))
    plain = _answer(_post(url, "/v1/collections/docs/search", {"vector": [1, 0], "k": 4}, packed))["hits"]
    assert all("document" not in hit for hit in plain)
    batch = _answer(_post(url, "/v1/collections/docs/search/batch",
                          {"vectors": [[1, 0], [0, 1]], "k": 1, "with_document": True}, packed))["results"]
    assert [row[0]["document"] for row in batch] == ["alpha beta", "beta gamma"]
    records = _answer(_post(url, "/v1/collections/docs/points/get", {"ids": [4, 2], "with_document": True},
                            packed))["records"]
    assert [record.get("document") for record in records] == ["ünïcode ✓", None]
    page = _answer(_post(url, "/v1/collections/docs/points/scroll",
                         {"filter": {"$document": {"$contains": "beta"}}, "with_document": True}, packed))
    assert [record["document"] for record in page["records"]] == ["alpha beta", "beta gamma"]
    liked = _answer(_post(url, "/v1/collections/docs/recommend", {"positive": [1], "k": 1, "with_document": True},
                          packed))["hits"]
    assert liked[0]["id"] == 2 and "document" not in liked[0]


def test_an_embedding_config_is_kept_and_described(url):
    config = {"kind": "hashing", "name": "hashing-8", "dim": 8}
    created = _answer(_post(url, "/v1/collections", {"name": "text", "dim": 8, "embedding": config}))
    assert created["embedding"] == config
    listed = _answer(httpx.get(url + "/v1/collections", timeout=60))["collections"]
    assert next(entry for entry in listed if entry["name"] == "text")["embedding"] == config


@pytest.mark.parametrize("path, body, status, kind", [
    ("/v1/collections/docs/points", {"ids": [9, 10], "vectors": [[1, 0], [0, 1]], "documents": ["one"]}, 400,
     "InvalidArgumentError"),
    ("/v1/collections/docs/points", {"ids": [9], "vectors": [[1, 0]], "documents": "one"}, 422, None),
    ("/v1/collections/docs/points", {"ids": [9], "vectors": [[1, 0]], "documents": [7]}, 422, None),
    ("/v1/collections/docs/search", {"vector": [1, 0], "filter": {"$document": {"$contains": 1}}}, 400,
     "InvalidFilterError"),
    ("/v1/collections/docs/search", {"vector": [1, 0], "with_document": "yes"}, 422, None),
    ("/v1/collections/docs/search", {"vector": "text to embed"}, 400, "InvalidDTypeError"),  # clients embed
    ("/v1/collections/docs/search/batch", {"vectors": "AAA"}, 400, "InvalidDTypeError"),
    ("/v1/collections", {"name": "bad", "dim": 4, "embedding": {"kind": "hashing"}}, 400, "InvalidArgumentError"),
    ("/v1/collections", {"name": "bad", "embedding": {"name": "x"}}, 400, "InvalidArgumentError"),
])
def test_bad_bodies_are_refused(url, path, body, status, kind):
    response = _post(url, path, body)
    assert response.status_code in ((400, 422) if status == 422 else (status,)), response.text
    error = response.json()["error"]
    if kind is not None:
        assert error["type"] == kind
    assert _answer(_post(url, "/v1/collections/docs/points/count", {}))["count"] == 4
    assert "bad" not in [entry["name"] for entry in _answer(httpx.get(url + "/v1/collections", timeout=60))[
        "collections"]]
