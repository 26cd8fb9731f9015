"""The HTTP server: authentication, limits and bad input (always a 4xx with a
JSON body naming the problem), metrics and the API description. The client's
interface is checked against the embedded one in tests/api/test_protocols.py;
process-level behaviour (signals, kill -9, the command line) is in
test_server_process.py."""

from __future__ import annotations

import asyncio

import httpx
import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecdb
from vecdb import errors
from vecdb.server import ServerSettings
from vecdb.server.guards import BodySizeMiddleware
from vecdb.text.settings import TextIndexSettings
from tests.support.servers import serve_in_thread

WRITER_KEY = "writer-key-0123456789"
READER_KEY = "reader-key-0123456789"


def test_every_error_class_round_trips_by_name():
    for name, cls in vars(errors).items():
        if isinstance(cls, type) and issubclass(cls, errors.VecdbError):
            assert errors.error_class(name, cls.http_status) is cls
    assert errors.error_class("SomethingNew", 404) is errors.NotFoundError
    assert errors.error_class("SomethingNew", 503) is errors.ServerError


@pytest.fixture
def tiny_archive(tmp_path):
    """A backup of a database holding the collection 'restored' (5 points)."""
    with vecdb.open(tmp_path / "tiny") as tiny:
        tiny.create_collection("restored", dim=3).upsert(list(range(5)), np.eye(5, 3) + 1)
        return tiny.backup(tmp_path / "tiny.tar")


@pytest.fixture
def server(tmp_path, tiny_archive):
    """A server with a writer and a read-only key, small limits, a
    collection 'docs' of 20 3-d points with a text index on "body", and the
    backup tiny.tar."""
    limits = ServerSettings(api_key=WRITER_KEY, read_only_key=READER_KEY, max_body_bytes=64 * 1024, max_k=50,
                            max_batch=100, max_hits=1000, max_payload_bytes=1024, max_upload_bytes=2**20)
    with serve_in_thread(tmp_path / "db", limits) as url:
        with vecdb.connect(url, api_key=WRITER_KEY) as db:
            docs = db.create_collection("docs", dim=3, metric="l2", index=vecdb.Flat())
            docs.upsert(list(range(20)), np.arange(60, dtype=np.float32).reshape(20, 3),
                        [{"n": i, "body": f"point {i}" + " even" * (i % 2 == 0)} for i in range(20)])
            docs.create_text_index("body")
        uploaded = httpx.put(f"{url}/v1/backups/tiny.tar", content=tiny_archive.read_bytes(), headers=_headers())
        assert uploaded.status_code == 201, uploaded.text
        yield url


def _headers(key=WRITER_KEY, **extra):
    return {"authorization": f"Bearer {key}", **extra} if key else extra


# Every route, with a body it accepts: (method, path, body, writes, status
# for the writer). Bytes are sent as they are (a backup archive).
ROUTES = [
    ("GET", "/v1/collections", None, False, 200),
    ("GET", "/v1/collections/docs", None, False, 200),
    ("POST", "/v1/collections/docs/search", {"vector": [0, 0, 0], "k": 3}, False, 200),
    ("POST", "/v1/collections/docs/search", {"text": "even point", "k": 3}, False, 200),
    ("POST", "/v1/collections/docs/search/batch", {"vectors": [[0, 0, 0]], "k": 3}, False, 200),
    ("POST", "/v1/collections/docs/recommend", {"positive": [1], "k": 3}, False, 200),
    ("POST", "/v1/collections/docs/explain", {"query": [0, 0, 0]}, False, 200),
    ("POST", "/v1/collections/docs/points/get", {"ids": [1]}, False, 200),
    ("POST", "/v1/collections/docs/points/count", {}, False, 200),
    ("POST", "/v1/collections/docs/points/scroll", {"limit": 5}, False, 200),
    ("GET", "/v1/backups", None, False, 200),
    ("GET", "/v1/backups/tiny.tar", None, False, 200),
    ("GET", "/metrics", None, False, 200),
    ("POST", "/v1/collections", {"name": "other", "dim": 2}, True, 201),
    ("POST", "/v1/collections/docs/points", {"ids": ["new"], "vectors": [[1, 2, 3]]}, True, 200),
    ("POST", "/v1/collections/docs/points/delete", {"ids": [19]}, True, 200),
    ("POST", "/v1/collections/docs/points/payload", {"ids": [1], "payload": {"m": 1}}, True, 200),
    ("POST", "/v1/collections/docs/points/payload/delete-keys", {"ids": [1], "keys": ["m"]}, True, 200),
    ("PUT", "/v1/collections/docs/payload-indexes/n", {"kind": "integer"}, True, 200),
    ("DELETE", "/v1/collections/docs/payload-indexes/n", None, True, 200),
    ("PUT", "/v1/collections/docs/text-indexes/body", {"language": None, "stopwords": False, "k1": 1.5}, True, 200),
    ("DELETE", "/v1/collections/docs/text-indexes/body", None, True, 200),
    ("POST", "/v1/collections/docs/compact", None, True, 200),
    ("POST", "/v1/collections/docs/wait-indexed", {"timeout": 5}, True, 200),
    ("POST", "/v1/collections/docs/tune", {"queries": 5}, True, 200),
    ("POST", "/v1/compact", None, True, 200),
    ("POST", "/v1/collections/docs/train-quantizer", None, True, 400),  # no PQ here
    ("POST", "/v1/collections/docs/learn-rotation", None, True, 400),  # no rotation here
    ("POST", "/v1/backups", None, True, 201),
    ("POST", "/v1/collections/docs/backup", None, True, 201),
    ("PUT", "/v1/backups/copy.tar", "archive", True, 201),
    ("POST", "/v1/collections/restored/restore", {"backup": "tiny.tar"}, True, 201),
    ("DELETE", "/v1/backups/tiny.tar", None, True, 200),
    ("DELETE", "/v1/collections/docs", None, True, 200),
]


def test_the_route_table_above_covers_every_route(server):
    paths = httpx.get(f"{server}/openapi.json", headers=_headers()).json()["paths"]
    documented = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    listed = {(method, path.replace("/docs/", "/{name}/").replace("/restored/", "/{name}/").replace(
        "tiny.tar", "{name}").replace("copy.tar", "{name}").replace("/n", "/{field}").replace("/body", "/{field}"))
        for method, path, _, _, _ in ROUTES}
    listed = {(method, path[:-5] + "/{name}" if path.endswith("/docs") and path != "/docs" else path)
              for method, path in listed}
    assert documented - listed == {("GET", "/healthz"), ("GET", "/readyz")}


@pytest.mark.parametrize("method, path, body, writes, status", ROUTES)
def test_keys_decide_who_may_do_what(server, tiny_archive, method, path, body, writes, status):
    def call(**headers):
        if body == "archive":
            return httpx.request(method, server + path, content=tiny_archive.read_bytes(), headers=headers)
        return httpx.request(method, server + path, json=body, headers=headers, timeout=60)

    for refused in (call(), call(**_headers("wrong-key-0123456789")), call(**{"x-api-key": "x"})):
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "AuthenticationError"
    reader = call(**_headers(READER_KEY))
    if writes:
        assert reader.status_code == 403 and "read-only" in reader.json()["error"]["message"]
    else:
        assert reader.status_code == 200, reader.text
    writer = call(**{"x-api-key": WRITER_KEY})
    assert writer.status_code == status, writer.text


def test_probes_need_no_key_and_unknown_paths_are_not_side_doors(server):
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{server}/readyz").json()["status"] == "ready"
    # The API description and /docs are the same for every vecdb server of a
    # version, and a browser opening /docs cannot send a key.
    assert httpx.get(f"{server}/openapi.json").status_code == httpx.get(f"{server}/docs").status_code == 200
    for path in ("/nothing", "/v1/collections/docs/admin", "/debug/vars", "/api/v2/heartbeat"):
        response = httpx.get(server + path)
        assert response.status_code == 401, path
    unknown = httpx.get(f"{server}/nothing", headers=_headers())
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "NotFoundError"


def test_authentication_comes_before_the_body_is_read(server):
    garbage = httpx.post(f"{server}/v1/collections/docs/search", content=b"{not json", headers={})
    assert garbage.status_code == 401
    huge = httpx.post(f"{server}/v1/collections/docs/points", content=b"x" * (1024 * 1024))
    assert huge.status_code == 401  # not 413: the limit is not even revealed


def test_the_client_maps_auth_errors(server):
    with vecdb.connect(server) as anonymous, pytest.raises(errors.AuthenticationError):
        anonymous.list_collections()
    with vecdb.connect(server, api_key=READER_KEY) as reader:
        docs = reader.get_collection("docs")
        assert docs.search([0, 0, 0], k=1)[0].id == 0
        with pytest.raises(errors.PermissionDeniedError):
            docs.upsert(["x"], [[1, 1, 1]])
        assert docs.count() == 20


def test_keys_must_be_long_and_distinct():
    with pytest.raises(errors.InvalidArgumentError, match="at least 16"):
        ServerSettings(api_key="short")
    with pytest.raises(errors.InvalidArgumentError, match="needs an API key"):
        ServerSettings(read_only_key=READER_KEY)
    with pytest.raises(errors.InvalidArgumentError, match="must differ"):
        ServerSettings(api_key=WRITER_KEY, read_only_key=WRITER_KEY)


# (path, raw body, content type, expected status, words in the message)
BAD_REQUESTS = [
    ("/v1/collections/docs/search", b'{"vector": [NaN, 0, 0]}', "application/json", 400, "NaN"),
    ("/v1/collections/docs/search", b'{"vector": [Infinity, 0, 0]}', "application/json", 400, "JSON"),
    ("/v1/collections/docs/search", b'{"vector": [0, 0', "application/json", 400, "not valid JSON"),
    ("/v1/collections/docs/search", b"\xc1\xc1", "application/msgpack", 400, "MessagePack"),
    ("/v1/collections/docs/search", b"[1, 2]", "application/json", 400, "must be an object"),
    ("/v1/collections/docs/search", b'{"vector": [0, 0, 0], "kk": 1}', "application/json", 400, "unknown field"),
    ("/v1/collections/docs/search", b'{"k": 1}', "application/json", 400, "missing field(s): vector"),
    ("/v1/collections/docs/search", b'{"vector": [0, 0]}', "application/json", 400, "dimension"),
    ("/v1/collections/docs/search", b'{"vector": "abc"}', "application/json", 400, "numeric"),
    ("/v1/collections/docs/search", b'{"vector": [0, 0, 0], "k": "ten"}', "application/json", 400, "k"),
    ("/v1/collections/docs/search", b'{"vector": [0, 0, 0], "k": 51}', "application/json", 400, "max_k"),
    ("/v1/collections/docs/search", b'{"vector": [0, 0, 0], "filter": {"n": {"$near": 1}}}', "application/json",
     400, "$near"),
    ("/v1/collections/docs/search", b'{"vector": [0, 0, 0]}', "text/xml", 415, "Content-Type"),
    ("/v1/collections/nope/search", b'{"vector": [0, 0, 0]}', "application/json", 404, "'nope' does not exist"),
    ("/v1/collections/..%2F..%2Fetc/search", b'{"vector": [0, 0, 0]}', "application/json", 404, "no route"),
    ("/v1/collections/..%2e/search", b'{"vector": [0, 0, 0]}', "application/json", 400, "invalid collection name"),
    ("/v1/collections/docs/search/batch", b'{"vectors": [[0, 0, 0]], "k": 50}' .replace(b"[[0, 0, 0]]",
     b"[" + b", ".join([b"[0, 0, 0]"] * 21) + b"]"), "application/json", 413, "max_hits"),
    ("/v1/collections/docs/points", b'{"ids": [1], "vectors": [[0, 0, 0]], "payloads": [{"x": "'
     + b"y" * 2000 + b'"}]}', "application/json", 413, "max_payload_bytes"),
    ("/v1/collections/docs/points", b'{"ids": ' + str(list(range(101))).encode() + b', "vectors": []}',
     "application/json", 413, "max_batch"),
    ("/v1/collections/docs/points", b'{"ids": [1, 1], "vectors": [[0, 0, 0], [1, 1, 1]]}', "application/json",
     400, "appears"),
    ("/v1/collections/docs/points", b'{"ids": [99999999999999999999], "vectors": [[0, 0, 0]]}', "application/json",
     400, "strings or integers"),
    ("/v1/collections", b'{"name": "../../etc", "dim": 3}', "application/json", 400, "invalid collection name"),
    ("/v1/collections", b'{"name": "x", "dim": 3, "index": {"kind": "hnsw", "M": "many"}}', "application/json",
     400, "M"),
    ("/v1/collections", b'{"name": "x", "dim": 3, "index": {"kind": "ivf"}}', "application/json", 400, "kind"),
    ("/v1/collections", b'{"name": "x", "dim": 3, "quantization": {"bits": 4}}', "application/json", 400, "bits"),
    ("/v1/collections", b'{"name": "x", "dim": 3, "index": {"M": 300}}', "application/json", 400, "256"),
    ("/v1/collections", b'{"name": "x", "dim": 3, "index": {"ef_construction": 100001}}', "application/json", 400,
     "100000"),
    ("/v1/collections/docs/search", b'{"vector": [[0, 0, 0]]}', "application/json", 400, "/search/batch"),
    ("/v1/collections/docs/search/batch", b'{"vectors": [0, 0, 0]}', "application/json", 400, "'vector' to /search"),
    ("/v1/collections/docs/search/batch", b'{"vectors": 7}', "application/json", 400, "got 0-D"),
    ("/v1/collections/docs/search", b"\x81\x81\xa1a\x01\x01", "application/msgpack", 400, "MessagePack"),
    ("/v1/collections/docs/points/count", b'{"filter": ' + b'{"$not": ' * 40 + b'{"n": 1}' + b"}" * 41,
     "application/json", 400, "levels deep"),
    ("/v1/collections/docs/explain", b'{"query": [' + b", ".join([b"[0, 0, 0]"] * 21) + b'], "k": 50}',
     "application/json", 413, "max_hits"),
    ("/v1/collections/", b"{}", "application/json", 404, "no route"),
    ("/v1/collections/docs/search", b'{"text": ""}', "application/json", 400, "empty"),
    ("/v1/collections/docs/search", b'{"text": 5}', "application/json", 400, "must be a string"),
    ("/v1/collections/docs/search", b"\x81\xa4text\x05", "application/msgpack", 400, "must be a string"),
    ("/v1/collections/docs/search", b'{"text": "point", "text_field": "n"}', "application/json", 400,
     "no text index"),
    ("/v1/collections/docs/search", b'{"text_field": "body"}', "application/json", 400, "give text="),
    ("/v1/collections/docs/search", b'{"text": "point", "vector": [0, 0, 0]}', "application/json", 400,
     "needs a fusion"),
    ("/v1/collections/docs/search", b'{"text": "point", "ef": 5}', "application/json", 400, "vector searches"),
    ("/v1/collections/docs/search", b'{"text": "point", "k": 51}', "application/json", 400, "max_k"),
    ("/v1/collections/docs/search", b'{"text": "point", "filter": {"n": {"$near": 1}}}', "application/json",
     400, "$near"),
    ("/v1/collections/docs/search", b'{"text": "point", "txet": 1}', "application/json", 400, "unknown field"),
    ("/v1/collections/docs/search/batch", b'{"vectors": [[0, 0, 0]], "text": "point"}', "application/json",
     400, "unknown field"),
    ("/v1/collections/nope/search", b'{"text": "point"}', "application/json", 404, "'nope' does not exist"),
]


@pytest.mark.parametrize("path, body, media, status, words", BAD_REQUESTS)
def test_bad_requests_get_a_4xx_naming_the_problem_and_change_nothing(server, path, body, media, status, words):
    response = httpx.post(server + path, content=body, headers=_headers(**{"content-type": media}))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and words in error["message"], error
    with vecdb.connect(server, api_key=WRITER_KEY) as db:
        assert db.list_collections() == ["docs"] and db.get_collection("docs").count() == 20


# (method, path, body, expected status, error type, words in the message)
BAD_TEXT_INDEXES = [
    ("PUT", "/v1/collections/docs/text-indexes/n", {}, 400, "InvalidPayloadError", "'n' has a text index"),
    ("PUT", "/v1/collections/docs/text-indexes/body", {"language": "klingon"}, 400, "InvalidArgumentError",
     "language"),
    ("PUT", "/v1/collections/docs/text-indexes/body", {"stopwords": "the"}, 400, "InvalidArgumentError",
     "stopwords"),
    ("PUT", "/v1/collections/docs/text-indexes/body", {"k1": "high"}, 400, "InvalidArgumentError", "k1"),
    ("PUT", "/v1/collections/docs/text-indexes/body", {"b": 2}, 400, "InvalidArgumentError", "b must be"),
    ("PUT", "/v1/collections/docs/text-indexes/body", {"kind": "keyword"}, 400, "InvalidArgumentError",
     "unknown field"),
    ("PUT", "/v1/collections/docs/text-indexes/a..b", {}, 400, "InvalidArgumentError", "field"),
    ("DELETE", "/v1/collections/docs/text-indexes/a..b", None, 400, "InvalidArgumentError", "field"),
    ("PUT", "/v1/collections/nope/text-indexes/body", {}, 404, "CollectionNotFoundError", "'nope' does not exist"),
    ("DELETE", "/v1/collections/nope/text-indexes/body", None, 404, "CollectionNotFoundError", "'nope'"),
]


@pytest.mark.parametrize("method, path, body, status, kind, words", BAD_TEXT_INDEXES)
def test_bad_text_indexes_get_a_4xx_naming_the_problem_and_change_nothing(server, method, path, body, status, kind,
                                                                          words):
    response = httpx.request(method, server + path, json=body, headers=_headers())
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == kind and error["status"] == status and words in error["message"], error
    with vecdb.connect(server, api_key=WRITER_KEY) as db:
        assert db.get_collection("docs").text_indexes == {
            "body": {"language": "english", "stopwords": list(TextIndexSettings.new().stopwords), "k1": 1.2,
                     "b": 0.75}}


def test_text_index_routes_answer_every_index_and_searches_use_them(server):
    made = httpx.put(f"{server}/v1/collections/docs/text-indexes/title", json={"language": "french", "k1": 2},
                     headers=_headers())
    assert made.status_code == 200, made.text
    english = {"language": "english", "stopwords": list(TextIndexSettings.new().stopwords), "k1": 1.2, "b": 0.75}
    french = {"language": "french", "stopwords": [], "k1": 2.0, "b": 0.75}
    assert made.json() == {"text_indexes": {"body": english, "title": french}}
    info = httpx.get(f"{server}/v1/collections/docs", headers=_headers()).json()
    assert info["text_indexes"] == {"body": english, "title": french}
    assert info["stats"]["text_indexes"]["body"]["points"] == 20
    listed = httpx.get(f"{server}/v1/collections", headers=_headers()).json()["collections"]
    assert listed[0]["text_indexes"] == {"body": english, "title": french}
    ambiguous = httpx.post(f"{server}/v1/collections/docs/search", json={"text": "even"}, headers=_headers())
    assert ambiguous.status_code == 400 and "say which" in ambiguous.json()["error"]["message"]
    hits = httpx.post(f"{server}/v1/collections/docs/search", json={"text": "even", "text_field": "body", "k": 20},
                      headers=_headers()).json()["hits"]
    assert sorted(hit["id"] for hit in hits) == list(range(0, 20, 2))
    dropped = httpx.delete(f"{server}/v1/collections/docs/text-indexes/title", headers=_headers())
    assert dropped.json() == {"text_indexes": {"body": english}}
    again = httpx.delete(f"{server}/v1/collections/docs/text-indexes/title", headers=_headers())
    assert again.status_code == 200 and again.json() == {"text_indexes": {"body": english}}


def test_odd_names_and_fields_behave_as_in_process(db):
    docs = db.create_collection("docs", dim=2)
    with pytest.raises(errors.InvalidArgumentError, match="payload index field"):
        docs.drop_payload_index("..")  # refused, and never the collection's URL
    docs.create_payload_index("a/b", "keyword")
    assert db.list_collections() == ["docs"] and docs.payload_indexes == {"a/b": "keyword"}
    for bad in ("", ".", ".."):
        with pytest.raises(errors.InvalidArgumentError, match="invalid collection name"):
            db.get_collection(bad)
        with pytest.raises(errors.InvalidArgumentError, match="invalid collection name"):
            db.drop_collection(bad)
    with pytest.raises(errors.InvalidDTypeError):
        docs.search([[1, 2], [1]], k=1)  # ragged
    with pytest.raises(errors.InvalidDTypeError):
        docs.upsert({"a", "b"}, np.ones((2, 2)))  # a set is not an id list in process either
    assert docs.count() == 0


def test_the_client_never_writes_where_the_server_says(tmp_path, server, monkeypatch):
    with vecdb.connect(server, api_key=WRITER_KEY) as db:
        monkeypatch.setattr(db._transport, "call", lambda *args: {"name": "../../planted.tar"})
        (tmp_path / "downloads").mkdir()
        with pytest.raises(errors.ServerError, match="not a plain file name"):
            db.backup(tmp_path / "downloads")
    assert not list(tmp_path.rglob("planted*"))


def test_dropping_a_collection_while_it_is_searched_gives_404s_not_500s(tmp_path):
    import threading

    statuses = set()
    with serve_in_thread(tmp_path / "db") as url, vecdb.connect(url) as db:
        stop = threading.Event()

        def search():
            with httpx.Client(base_url=url) as client:
                while not stop.is_set():
                    for path, body in (("search", {"vector": [1, 0, 0], "k": 5}), ("points/count", {}),
                                       ("points/scroll", {"limit": 50})):
                        statuses.add(client.post(f"/v1/collections/c/{path}", json=body).status_code)

        threads = [threading.Thread(target=search) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(12):
                db.create_collection("c", dim=3).upsert(list(range(300)), np.random.default_rng(0).random((300, 3)))
                db.drop_collection("c")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert statuses <= {200, 404} and 404 in statuses


def test_oversized_bodies_get_413_with_or_without_content_length(server):
    declared = httpx.post(f"{server}/v1/collections/docs/points", content=b"x" * (65 * 1024), headers=_headers())
    assert declared.status_code == 413 and declared.json()["error"]["type"] == "RequestTooLargeError"

    def chunks():  # no Content-Length: chunked transfer encoding
        for _ in range(80):
            yield b"x" * 1024

    streamed = httpx.post(f"{server}/v1/collections/docs/points", content=chunks(), headers=_headers())
    assert streamed.status_code == 413 and "64,000" not in streamed.text and "65,536" in streamed.text
    with vecdb.connect(server, api_key=WRITER_KEY) as db:
        assert db.get_collection("docs").count() == 20


@pytest.mark.parametrize("headers", [
    [(b"content-length", b"10"), (b"transfer-encoding", b"chunked")],
    [(b"transfer-encoding", b"chunked"), (b"content-length", b"10")],
])
def test_a_content_length_beside_chunked_encoding_does_not_lift_the_body_cap(headers):
    """h11 reads a chunked body whatever Content-Length says: the cap counts
    the bytes then, as for any body without a Content-Length."""
    async def read_everything(scope, receive, send):
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    chunks = [{"type": "http.request", "body": b"x" * 600, "more_body": True},
              {"type": "http.request", "body": b"x" * 600, "more_body": False}]
    sent = []

    async def receive():
        return chunks.pop(0)

    async def send(message):
        sent.append(message)

    guard = BodySizeMiddleware(read_everything, 1000, "/v1/backups/")
    scope = {"type": "http", "method": "POST", "path": "/v1/collections/c/search", "headers": headers}
    asyncio.run(guard(scope, receive, send))
    assert sent[0]["status"] == 413 and b"RequestTooLargeError" in sent[1]["body"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from([path for _, path, body, _, _ in ROUTES if isinstance(body, dict)]),
       body=st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=5)
                         | st.binary(max_size=16),
                         lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                             st.sampled_from(["vector", "vectors", "ids", "k", "filter", "payloads", "query", "name",
                                              "dim", "ef", "dims", "plan", "limit", "cursor", "kind", "text",
                                              "text_field", "x"]),
                             inner, max_size=5), max_leaves=12))
def test_no_body_makes_the_server_fail(server, route, body):
    """Whatever the body, the answer is a success or a 4xx with an error
    body: never a 5xx (a 5xx on bad input is a bug)."""
    response = httpx.post(server + route, content=msgpack.packb(body, use_bin_type=True),
                          headers=_headers(**{"content-type": "application/msgpack"}), timeout=60)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"type", "message", "status"}


def test_json_and_msgpack_answer_the_same(server):
    query = {"vector": [1.0, 2.0, 3.0], "k": 3, "with_vector": True}
    as_json = httpx.post(f"{server}/v1/collections/docs/search", json=query, headers=_headers()).json()
    packed = httpx.post(f"{server}/v1/collections/docs/search", content=msgpack.packb(query),
                        headers=_headers(**{"content-type": "application/msgpack", "accept": "application/msgpack"}))
    assert packed.headers["content-type"] == "application/msgpack"
    decoded = msgpack.unpackb(packed.content)
    assert [hit["id"] for hit in decoded["hits"]] == [hit["id"] for hit in as_json["hits"]] == [0, 1, 2]
    for ours, theirs in zip(decoded["hits"], as_json["hits"]):
        assert np.frombuffer(ours["vector"], "<f4").tolist() == theirs["vector"]
        assert ours["score"] == pytest.approx(theirs["score"])


def test_json_and_msgpack_answer_the_same_text_search(server):
    query = {"text": "even point", "k": 5, "with_vector": True, "filter": {"n": {"$lt": 15}}}
    as_json = httpx.post(f"{server}/v1/collections/docs/search", json=query, headers=_headers()).json()
    packed = httpx.post(f"{server}/v1/collections/docs/search", content=msgpack.packb(query),
                        headers=_headers(**{"content-type": "application/msgpack", "accept": "application/msgpack"}))
    assert packed.headers["content-type"] == "application/msgpack"
    decoded = msgpack.unpackb(packed.content)
    assert [hit["id"] for hit in decoded["hits"]] == [hit["id"] for hit in as_json["hits"]]
    assert len(as_json["hits"]) == 5 and all(hit["id"] % 2 == 0 and hit["id"] < 15 for hit in as_json["hits"])
    for ours, theirs in zip(decoded["hits"], as_json["hits"]):
        assert np.frombuffer(ours["vector"], "<f4").tolist() == theirs["vector"]
        assert ours["score"] == pytest.approx(theirs["score"]) and ours["payload"] == theirs["payload"]


def test_metrics_count_requests_per_route_and_report_collection_sizes(server):
    for _ in range(3):
        httpx.post(f"{server}/v1/collections/docs/search", json={"vector": [0, 0, 0]}, headers=_headers())
    text = httpx.get(f"{server}/metrics", headers=_headers()).text
    assert ('vecdb_http_requests_total{method="POST",route="/v1/collections/{name}/search",status="200"} 3.0'
            in text)
    assert 'vecdb_http_request_duration_seconds_count{method="POST",route="/v1/collections/{name}/search"} 3.0' in text
    assert 'vecdb_collection_points{collection="docs"} 20.0' in text


def test_openapi_describes_bodies_and_docs_are_served(server):
    description = httpx.get(f"{server}/openapi.json", headers=_headers()).json()
    search = description["paths"]["/v1/collections/{name}/search"]["post"]
    schema = search["requestBody"]["content"]["application/json"]["schema"]
    assert {"vector", "text", "text_field", "k", "filter", "ef", "dims", "plan"} <= set(schema["properties"])
    assert "required" not in schema  # a vector or text: the route says which is missing
    assert "BM25" in schema["properties"]["text"]["description"] and schema["properties"]["text_field"]["description"]
    text_index = description["paths"]["/v1/collections/{name}/text-indexes/{field}"]
    body = text_index["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"language", "stopwords", "k1", "b"}
    assert body["properties"]["language"]["default"] == "english" and body["properties"]["k1"]["default"] == 1.2
    assert all(body["properties"][name]["description"] for name in body["properties"])
    assert text_index["put"]["requestBody"]["content"]["application/msgpack"]["example"] == {"language": "english"}
    answer = text_index["delete"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/TextIndexes"}
    assert "swagger-ui" in httpx.get(f"{server}/docs", headers=_headers()).text  # more in test_server_schema.py


def test_remote_search_matches_embedded_results(tmp_path, rng):
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    payloads = [{"group": i % 5} for i in range(500)]
    with vecdb.open(tmp_path / "local") as local:
        here = local.create_collection("c", dim=16, index=vecdb.Flat())
        here.upsert(list(range(500)), vectors, payloads)
        expected = here.search(vectors[:10], k=7, filter={"group": {"$in": [1, 2]}}, with_vector=True)
    with serve_in_thread(tmp_path / "remote") as url, vecdb.connect(url) as remote:
        there = remote.create_collection("c", dim=16, index=vecdb.Flat())
        there.upsert(list(range(500)), vectors, payloads)
        got = there.search(vectors[:10], k=7, filter={"group": {"$in": [1, 2]}}, with_vector=True)
    for ours, theirs in zip(expected, got):
        assert [hit.id for hit in ours] == [hit.id for hit in theirs]
        assert [hit.payload for hit in ours] == [hit.payload for hit in theirs]
        np.testing.assert_array_equal(np.stack([hit.vector for hit in ours]), np.stack([hit.vector for hit in theirs]))
        assert [hit.score for hit in ours] == pytest.approx([hit.score for hit in theirs], abs=1e-6)


def test_mrl_dims_must_be_a_list_of_sizes_not_a_mapping(db):
    """Found by schemathesis: a map (msgpack {} or {"64": ...}) was taken
    as the list of its keys, even with exist_ok."""
    db.create_collection("docs", dim=8)
    for mrl_dims in ({}, {2: "x", 4: "y"}):
        for exist_ok in (False, True):
            with pytest.raises(errors.InvalidArgumentError, match="mrl_dims must be a list"):
                db.create_collection("docs" if exist_ok else "other", dim=8, mrl_dims=mrl_dims, exist_ok=exist_ok)
    assert db.list_collections() == ["docs"]


def test_a_lone_search_runs_on_the_event_loop_and_others_on_the_pool(tmp_path):
    """read_short: the event loop's thread when it is the only request in
    flight, the search pool otherwise, and never before the indexes are
    loaded (the loop must stay free for /healthz) nor in a reader process
    with writes to catch up with."""
    import asyncio
    import threading

    from vecdb.server.state import Follower, ServerState

    state = ServerState(vecdb.open(tmp_path / "db"), ServerSettings(search_threads=2))
    where = lambda: threading.current_thread().name  # noqa: E731

    async def answered(in_flight: int, ready: bool) -> str:
        state.requests_in_flight, state.ready = in_flight, ready
        return await state.read_short(where)

    behind = [False]  # a reader process's database: behind the writer, or not

    try:
        loop_thread = threading.current_thread().name
        assert asyncio.run(answered(1, True)) == loop_thread
        assert asyncio.run(answered(2, True)).startswith("vecdb-read")
        assert asyncio.run(answered(1, False)).startswith("vecdb-read")
        state.follower = Follower(catch_up=lambda: behind.__setitem__(0, False), behind=lambda: behind[0])
        assert asyncio.run(answered(1, True)) == loop_thread
        behind[0] = True  # catching up may take long: on the pool, which catches up first
        assert asyncio.run(answered(1, True)).startswith("vecdb-read") and not behind[0]
    finally:
        state.shut_down()
