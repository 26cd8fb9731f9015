"""The API description is true and usable: /docs works offline (Swagger UI
from a package, not a CDN), every route documents its real answers and
errors, its examples work in order, and schemathesis (every check, every
phase) finds nothing against a live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

import vecdb
from vecdb.server import ServerSettings
from tests.support.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
KEY = "schema-writer-key-0123456789"
READER = "schema-reader-key-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
http = httpx.Client(timeout=120)  # patient: CI shares two cores with other work


@pytest.fixture
def url(tmp_path):
    with serve_in_thread(tmp_path / "db", ServerSettings(api_key=KEY, read_only_key=READER, max_k=500)) as served:
        yield served


def test_docs_and_their_assets_load_from_the_server_alone(url):
    page = http.get(f"{url}/docs")  # no key: a browser cannot send one; "Authorize" takes it
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    linked = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert linked and all(link.startswith("/") for link in linked), linked  # nothing from another host
    sizes = {}
    for link in linked:
        response = http.get(url + link)
        assert response.status_code == 200, link
        sizes[link] = len(response.content)
    assert sizes["/docs/assets/swagger-ui-bundle.js"] > 500_000  # the real Swagger UI, not a stub
    assert "SwaggerUIBundle" in http.get(f"{url}/docs/assets/swagger-ui-bundle.js").text
    assert http.get(f"{url}/openapi.json").json()["openapi"].startswith("3.")
    for path in ("/v1/collections", "/docs/../v1/collections", "/metrics"):  # the data still needs the key
        assert http.get(url + path).status_code == 401


def test_the_description_documents_real_answers_errors_and_the_key(url):
    description = http.get(f"{url}/openapi.json").json()
    schemas = description["components"]["schemas"]
    assert schemas["ErrorDetail"]["required"] == ["type", "message", "status"]
    assert "HTTPValidationError" not in schemas
    assert description["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"}
    for path, operations in description["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status, response in responses.items():
                if status[0] in "45" and status != "503":
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            success = [status for status in responses if status[0] == "2"]
            assert len(success) == 1 and responses[success[0]]["content"], (method, path)
            if path in ("/healthz", "/readyz"):
                assert operation["security"] == [] and "401" not in responses
            else:
                assert "401" in responses and "413" in responses
            reads = method == "get" or path.endswith(("/search", "/batch", "/recommend", "/explain", "/get", "/count",
                                                      "/scroll"))
            assert ("403" in responses) == (not reads and path not in ("/healthz", "/readyz")), (method, path)
    search = description["paths"]["/v1/collections/{name}/search"]["post"]
    assert search["parameters"][0]["schema"]["pattern"] == "^[A-Za-z0-9_-]{1,128}$"
    assert search["requestBody"]["content"]["application/json"]["schema"]["properties"]["k"]["maximum"] == 500
    assert set(search["responses"]) == {"200", "400", "401", "404", "413", "415"}
    hits = schemas["Hits"]["properties"]["hits"]["items"]["$ref"]
    assert hits == "#/components/schemas/Hit"
    for kind in ("payload-indexes", "text-indexes"):
        for method in ("put", "delete"):  # creating and dropping refuse the same fields
            field = description["paths"][f"/v1/collections/{{name}}/{kind}/{{field}}"][method]["parameters"][1]
            assert field["name"] == "field" and field["schema"]["pattern"] == r"^[^.\u0000]+(\.[^.\u0000]+)*$"
    assert set(description["paths"]["/v1/collections/{name}/text-indexes/{field}"]["put"]["responses"]) == {
        "200", "400", "401", "403", "404", "413", "415"}
    assert set(schemas["CollectionSettings"]["required"]) >= {"payload_indexes", "text_indexes"}
    upload = description["paths"]["/v1/backups/{name}"]["put"]
    assert set(upload["responses"]) == {"201", "400", "401", "403", "409", "413", "415"}
    assert upload["parameters"][0]["schema"]["pattern"].endswith("\\.tar$")


def test_the_examples_work_in_order(url):
    """What Swagger UI's "Try it out" sends: each documented example, in the
    order the description tells, succeeds (none is refused as ef=0 was)."""
    paths = http.get(f"{url}/openapi.json").json()["paths"]

    def example(path, method="post"):
        return paths[path][method]["requestBody"]["content"]["application/json"]["example"]

    steps = [("POST", "/v1/collections", "/v1/collections"),
             ("POST", "/v1/collections/docs/points", "/v1/collections/{name}/points"),
             ("PUT", "/v1/collections/docs/payload-indexes/lang", "/v1/collections/{name}/payload-indexes/{field}"),
             ("PUT", "/v1/collections/docs/text-indexes/lang", "/v1/collections/{name}/text-indexes/{field}"),
             ("POST", "/v1/collections/docs/search", "/v1/collections/{name}/search"),
             ("POST", "/v1/collections/docs/search/batch", "/v1/collections/{name}/search/batch"),
             ("POST", "/v1/collections/docs/recommend", "/v1/collections/{name}/recommend"),
             ("POST", "/v1/collections/docs/points/payload", "/v1/collections/{name}/points/payload"),
             ("POST", "/v1/collections/docs/points/payload/delete-keys",
              "/v1/collections/{name}/points/payload/delete-keys"),
             ("POST", "/v1/collections/docs/explain", "/v1/collections/{name}/explain"),
             ("POST", "/v1/collections/docs/points/get", "/v1/collections/{name}/points/get"),
             ("POST", "/v1/collections/docs/points/count", "/v1/collections/{name}/points/count"),
             ("POST", "/v1/collections/docs/points/scroll", "/v1/collections/{name}/points/scroll"),
             ("POST", "/v1/collections/docs/tune", "/v1/collections/{name}/tune"),
             ("POST", "/v1/collections/docs/points/delete", "/v1/collections/{name}/points/delete")]
    answers = {}
    for method, path, documented in steps:
        response = http.request(method, url + path, json=example(documented, method.lower()), headers=AUTH)
        assert response.status_code in (200, 201), (path, response.text)
        answers[documented] = response.json()
    assert [hit["id"] for hit in answers["/v1/collections/{name}/search"]["hits"]] == [1]  # the filter: lang=en
    assert answers["/v1/collections/{name}/text-indexes/{field}"]["text_indexes"]["lang"]["language"] == "english"
    assert answers["/v1/collections/{name}/points/count"] == {"count": 1}
    assert answers["/v1/collections/{name}/points/delete"] == {"deleted": 1}


def test_a_wrong_method_gets_405_with_every_method_the_path_has(url):
    for method, path, allowed in (("PUT", "/v1/collections/docs", {"DELETE", "GET"}),
                                  ("GET", "/v1/collections/docs/search", {"POST"}),
                                  ("TRACE", "/v1/collections", {"GET", "POST"}),
                                  ("PATCH", "/v1/backups/x.tar", {"DELETE", "GET", "PUT"})):
        response = http.request(method, url + path, headers=AUTH)
        assert response.status_code == 405 and response.json()["error"]["status"] == 405, (method, path)
        listed = set(response.headers["allow"].split(", "))
        assert listed - {"HEAD"} == allowed, (method, path, listed)  # HEAD where the framework answers it
        if "HEAD" in listed:
            assert http.head(url + path, headers=AUTH).status_code != 405


def test_flags_must_be_booleans_and_a_body_of_defaults_may_be_left_out(url):
    with vecdb.connect(url, api_key=KEY) as db:
        db.create_collection("docs", dim=3).upsert([1], [[1, 2, 3]])
    for flag in ("with_vector", "with_payload"):
        response = http.post(f"{url}/v1/collections/docs/points/get", json={"ids": [1], flag: "yes"}, headers=AUTH)
        assert response.status_code == 400 and "must be true or false" in response.json()["error"]["message"]
    assert http.post(f"{url}/v1/collections/docs/points/count", headers=AUTH).json() == {"count": 1}
    too_many = http.post(f"{url}/v1/collections/docs/points/scroll", json={"limit": 100_001}, headers=AUTH)
    assert too_many.status_code == 400 and "max_batch" in too_many.text  # a parameter, like k: not 413


def test_schemathesis_finds_no_failure(tmp_path, url):
    """`st run` with every check and phase (examples, coverage, fuzzing,
    stateful), a fixed seed and 10 examples an operation (about a minute
    and a half on two cores), against a server holding the collection the
    examples use. tests/server/schemathesis.toml says where a schema-valid body
    may still be refused (what a JSON Schema cannot say, e.g. a vector's
    dimension) and why."""
    with vecdb.connect(url, api_key=KEY) as db:
        docs = db.create_collection("docs", dim=3)
        docs.upsert(list(range(40)), np.random.default_rng(7).random((40, 3)),
                    [{"lang": "en" if i % 2 else "fr"} for i in range(40)])
    config = ROOT / "tests" / "server" / "schemathesis.toml"
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{url}/openapi.json", "--checks", "all", "--seed", "20261205", "--max-examples", "10",
               "--workers", "1", "--generation-database", "none", "--no-color",
               "-H", f"Authorization: Bearer {KEY}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-30_000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts and int(counts[1]) == int(counts[2]) > 1000, output[-3000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output[-3000:]
