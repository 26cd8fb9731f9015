"""Named vectors over raw HTTP, in JSON and in MessagePack (float32 bytes):
creating a collection with ``vectors``, upserting ``{name: vectors}`` with
nulls, searching (one query, a batch, recommend, explain, tune) with
``using``, and records and hits carrying ``{name: vector}``; bad bodies get
a 4xx with the JSON error body naming the embedded error class. The API
suite (tests/api/test_named_vectors.py) covers the Python client."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import httpx
import msgpack
import numpy as np
import pytest

import vecdb
from tests.support.servers import serve_in_thread

JSON_BODY = {"content-type": "application/json"}
PACKED = {"content-type": "application/msgpack", "accept": "application/msgpack"}
SPECS = {"text": {"dim": 3, "index": {"kind": "flat"}}, "image": {"dim": 2, "metric": "l2", "index": {"kind": "flat"}}}
TEXT = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32)
IMAGE = np.array([[0, 0], [5, 5], [9, 9], [1, 1]], dtype=np.float32)


def _f32(array) -> bytes:
    return np.asarray(array, dtype="<f4").tobytes()


def _post(url: str, path: str, body, packed: bool = False) -> httpx.Response:
    if packed:
        return httpx.post(url + path, content=msgpack.packb(body, use_bin_type=True), headers=PACKED, timeout=60)
    return httpx.post(url + path, json=body, headers=JSON_BODY, timeout=60)


def _answer(response: httpx.Response):
    assert response.status_code in (200, 201), response.text
    if response.headers["content-type"] == "application/msgpack":
        return msgpack.unpackb(response.content, raw=False, strict_map_key=False)
    return response.json()


@contextlib.contextmanager
def _serving(path: Path) -> Iterator[str]:
    """A server holding 'named' (text: 3-d cosine, image: 2-d l2; no
    points yet) and 'plain' (one 3-d vector, two points)."""
    with serve_in_thread(path) as served:
        created = _answer(_post(served, "/v1/collections", {"name": "named", "vectors": SPECS}))
        assert created["dim"] == 3 and list(created["vectors"]) == ["text", "image"]
        _answer(_post(served, "/v1/collections", {"name": "plain", "dim": 3}))
        _answer(_post(served, "/v1/collections/plain/points", {"ids": [1, 2], "vectors": [[1, 0, 0], [0, 1, 0]]}))
        yield served


@pytest.fixture
def url(tmp_path):
    with _serving(tmp_path / "db") as served:
        yield served


@pytest.fixture(scope="module")
def refusing(tmp_path_factory):
    """The server of :func:`_serving`, shared by the tests of refusals
    (each checks that nothing was written)."""
    with _serving(tmp_path_factory.mktemp("refusing") / "db") as served:
        yield served


def test_json_create_upsert_search_and_get(url):
    info = httpx.get(f"{url}/v1/collections/named").json()
    assert {name: (entry["dim"], entry["metric"], entry["index"]["kind"]) for name, entry in info["vectors"].items()} \
        == {"text": (3, "cosine", "flat"), "image": (2, "l2", "flat")}
    assert [entry["name"] for entry in httpx.get(f"{url}/v1/collections").json()["collections"]] == ["named", "plain"]
    upserted = _post(url, "/v1/collections/named/points", {
        "ids": [0, 1, 2, 3], "vectors": {"text": TEXT.tolist(), "image": [IMAGE[0].tolist(), None, IMAGE[2].tolist(),
                                                                          IMAGE[3].tolist()]},
        "payloads": [{"n": i} for i in range(4)]})
    assert _answer(upserted) == {"upserted": 4}
    hits = _answer(_post(url, "/v1/collections/named/search", {"vector": [8, 8], "k": 2, "using": "image",
                                                                "with_vector": True}))["hits"]
    assert [hit["id"] for hit in hits] == [2, 3]  # point 1 has no image vector
    assert hits[0]["vector"] == {"text": [0, 0, 1], "image": [9, 9]}
    default = _answer(_post(url, "/v1/collections/named/search", {"vector": [0, 1, 0], "k": 1}))["hits"]
    assert default[0]["id"] == 1  # the first declared vector is the default
    records = _answer(_post(url, "/v1/collections/named/points/get", {"ids": [1, 0], "with_vector": True}))["records"]
    assert [record["vector"] for record in records] == [{"text": [0, 1, 0]}, {"text": [1, 0, 0], "image": [0, 0]}]
    page = _answer(_post(url, "/v1/collections/named/points/scroll", {"limit": 2, "with_vector": True}))
    assert [set(record["vector"]) for record in page["records"]] == [{"text", "image"}, {"text"}]


def test_msgpack_float32_bytes_per_name_and_per_vector(url):
    upserted = _post(url, "/v1/collections/named/points", {
        "ids": [0, 1, 2, 3], "vectors": {"text": _f32(TEXT), "image": [_f32(IMAGE[0]), None, _f32(IMAGE[2]),
                                                                       IMAGE[3].tolist()]}}, packed=True)
    assert _answer(upserted) == {"upserted": 4}
    hits = _answer(_post(url, "/v1/collections/named/search", {"vector": _f32([8, 8]), "k": 2, "using": "image",
                                                                "with_vector": True}, packed=True))["hits"]
    assert [hit["id"] for hit in hits] == [2, 3]
    assert np.frombuffer(hits[0]["vector"]["image"], dtype="<f4").tolist() == [9, 9]
    batch = _answer(_post(url, "/v1/collections/named/search/batch", {
        "vectors": _f32([[0, 0], [1, 1]]), "k": 1, "using": "image"}, packed=True))["results"]
    assert [[hit["id"] for hit in row] for row in batch] == [[0], [3]]
    recommended = _answer(_post(url, "/v1/collections/named/recommend", {
        "positive": [2], "negative": [_f32([0, 0])], "k": 1, "using": "image"}, packed=True))["hits"]
    assert [hit["id"] for hit in recommended] == [3]
    explained = _answer(_post(url, "/v1/collections/named/explain", {"query": _f32([[1, 1]]), "k": 1,
                                                                     "using": "image"}, packed=True))
    assert explained["plan"]["kind"] == "scan"
    tuned = _answer(_post(url, "/v1/collections/named/tune", {"queries": _f32([[1, 1], [8, 8]]), "k": 1,
                                                              "target_recall": 0.5, "using": "image"}, packed=True))
    assert tuned["k"] == 1 and tuned["recall"] >= 0.5


def test_the_client_reads_what_the_server_describes(url):
    with vecdb.connect(url) as db:
        named = db.get_collection("named")
        assert named.vectors == {"text": vecdb.VectorSpec(3, "cosine", index=vecdb.Flat()),
                                 "image": vecdb.VectorSpec(2, "l2", index=vecdb.Flat())}
        assert db.get_collection("plain").vectors == {}
        specs = {"a": vecdb.VectorSpec(4, "ip", index=vecdb.HNSW(M=8), quantization=vecdb.PQ(m=2), mrl_dims=(2,))}
        made = db.create_collection("made", vectors=specs)
        assert made.vectors == specs and made.dim == 4 and made.metric == "ip"
        assert db.get_or_create_collection("made", vectors=specs) is made
        with pytest.raises(vecdb.errors.InvalidArgumentError, match="other settings"):
            db.get_or_create_collection("made", vectors={"a": vecdb.VectorSpec(4)})
        with pytest.raises(vecdb.errors.InvalidArgumentError, match="VectorSpec"):
            db.create_collection("odd", vectors={"a": {"dim": 4}})


# (path, body, words in the message): each refused with 400 and the JSON
# error body, in JSON and in MessagePack, nothing written.
BAD_BODIES = [
    ("/v1/collections", {"name": "both", "dim": 3, "vectors": SPECS}, "VectorSpec"),
    ("/v1/collections", {"name": "empty", "vectors": {}}, "non-empty"),
    ("/v1/collections", {"name": "odd", "vectors": {"a.b": {"dim": 3}}}, "invalid vector name"),
    ("/v1/collections", {"name": "odd", "vectors": {"a": 3}}, "must be an object"),
    ("/v1/collections", {"name": "odd", "vectors": {"a": {"dim": 3, "size": 1}}}, "size"),
    ("/v1/collections", {"name": "odd", "vectors": {"a": {"metric": "l2"}}}, "dim"),
    ("/v1/collections", {"name": "odd", "vectors": {"a": {"dim": 0}}}, "dim"),
    ("/v1/collections", {"name": "odd", "vectors": {"a": {"dim": 3, "index": {"kind": "ivf"}}}}, "index kind"),
    ("/v1/collections", {"name": "odd", "vectors": [3]}, "dict"),
    ("/v1/collections", {"name": "odd"}, "needs dim"),
    ("/v1/collections/named/points", {"ids": [9], "vectors": {"audio": [[1, 2]]}}, "no vector 'audio'"),
    ("/v1/collections/named/points", {"ids": [9], "vectors": {"image": [[1, 2, 3]]}}, "dimension"),
    ("/v1/collections/named/points", {"ids": [9], "vectors": {"image": [None, [1, 2]]}}, "2 entries for 1 ids"),
    ("/v1/collections/named/points", {"ids": [9], "vectors": [[1, 2, 3]]}, "named vectors"),
    ("/v1/collections/plain/points", {"ids": [9], "vectors": {"text": [[1, 2, 3]]}}, "one unnamed vector"),
    ("/v1/collections/named/search", {"vector": [1, 2], "using": "audio"}, "no vector 'audio'"),
    ("/v1/collections/named/search", {"vector": [1, 2, 3], "using": "image"}, "dimension"),
    ("/v1/collections/named/search/batch", {"vectors": [[1, 2]], "using": "audio"}, "no vector 'audio'"),
    ("/v1/collections/named/recommend", {"positive": [[1, 2]], "using": "audio"}, "no vector 'audio'"),
    ("/v1/collections/named/tune", {"queries": [[1, 2]], "using": "audio"}, "no vector 'audio'"),
    ("/v1/collections/named/train-quantizer", {"using": "image"}, "no quantization"),
    ("/v1/collections/named/learn-rotation", {"using": "audio"}, "no vector 'audio'"),
    ("/v1/collections/plain/search", {"vector": [1, 2, 3], "using": "text"}, "one unnamed vector"),
    ("/v1/collections/plain/search/batch", {"vectors": [[1, 2, 3]], "using": "text"}, "one unnamed vector"),
    ("/v1/collections/plain/recommend", {"positive": [1], "using": "text"}, "one unnamed vector"),
    ("/v1/collections/plain/explain", {"query": [1, 2, 3], "using": "text"}, "one unnamed vector"),
    ("/v1/collections/plain/tune", {"queries": 1, "using": "text"}, "one unnamed vector"),
    ("/v1/collections/plain/train-quantizer", {"using": "text"}, "one unnamed vector"),
    ("/v1/collections/plain/learn-rotation", {"using": "text"}, "one unnamed vector"),
]


@pytest.mark.parametrize("packed", [False, True], ids=["json", "msgpack"])
@pytest.mark.parametrize("path, body, words", BAD_BODIES)
def test_bad_bodies_are_refused_with_the_embedded_error(refusing, path, body, words, packed):
    response = _post(refusing, path, body, packed)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == ("application/msgpack" if packed else "application/json")
    error = (msgpack.unpackb(response.content) if packed else response.json())["error"]
    assert error["type"].endswith("Error") and error["status"] == 400
    assert words in error["message"], error
    _assert_nothing_written(refusing)


# MessagePack float32 bytes that do not fit the vector they are for.
BAD_BYTES = [
    ("/v1/collections/named/points", {"ids": [9], "vectors": {"image": _f32([1, 2, 3])}}, "whole number"),
    ("/v1/collections/named/points", {"ids": [9, 8], "vectors": {"image": [None, _f32([1, 2, 3])]}}, "dimension"),
    ("/v1/collections/named/points", {"ids": [9], "vectors": {"image": [_f32([1, 2]), _f32([1, 2])]}}, "ids"),
    ("/v1/collections/named/search", {"vector": _f32([1, 2, 3]), "using": "image"}, "dimension"),
    ("/v1/collections/named/search", {"vector": _f32([1, 2]), "using": "audio"}, "no vector 'audio'"),
    ("/v1/collections/named/search/batch", {"vectors": _f32([1, 2, 3]), "using": "image"}, "whole number"),
    ("/v1/collections/named/recommend", {"positive": [_f32([1, 2])], "using": "audio"}, "no vector 'audio'"),
    ("/v1/collections/plain/search", {"vector": _f32([1, 2, 3]), "using": "text"}, "one unnamed vector"),
]


@pytest.mark.parametrize("path, body, words", BAD_BYTES)
def test_bytes_that_do_not_fit_are_refused(refusing, path, body, words):
    response = _post(refusing, path, body, packed=True)
    assert response.status_code == 400, response.text
    error = msgpack.unpackb(response.content)["error"]
    assert words in error["message"], error
    _assert_nothing_written(refusing)


def _assert_nothing_written(url: str) -> None:
    assert [entry["name"] for entry in httpx.get(f"{url}/v1/collections").json()["collections"]] == ["named", "plain"]
    for name, count in (("named", 0), ("plain", 2)):
        assert _answer(_post(url, f"/v1/collections/{name}/points/count", {}))["count"] == count
