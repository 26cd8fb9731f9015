"""OpenAI against a fake OpenAI-compatible endpoint on 127.0.0.1
(tests/embeddings/conftest.py) answering Hashing(16) vectors: batching, the
API key, the dimension probe, retries, and the endpoint's errors as
vecdb.errors classes."""

from __future__ import annotations

import json
import socket
import sys

import numpy as np
import pytest

from vecdb.embeddings import OpenAI
from vecdb.errors import (
    AuthenticationError, DimensionMismatchError, InvalidArgumentError, PermissionDeniedError, ServerError,
)

from tests.embeddings.conftest import API_KEY, ENDPOINT_DIM

TEXTS = [f"document {i} on {topic}" for i, topic in enumerate(["cats", "dogs", "rates", "pie", "rain", "ships", "tea"])]


def test_texts_are_sent_in_batches_and_come_back_in_order(openai_endpoint):
    embed = OpenAI(base_url=openai_endpoint.url, api_key=API_KEY, dim=ENDPOINT_DIM, batch_size=3)
    vectors = embed(TEXTS)
    np.testing.assert_array_equal(vectors, openai_endpoint.oracle(TEXTS))
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    assert [request["input"] for request in openai_endpoint.requests] == [TEXTS[0:3], TEXTS[3:6], TEXTS[6:]]
    assert {(request["model"], request["encoding_format"], request["authorization"])
            for request in openai_endpoint.requests} == {("text-embedding-3-small", "float", f"Bearer {API_KEY}")}
    assert embed([]).shape == (0, ENDPOINT_DIM) and len(openai_endpoint.requests) == 3


def test_an_unknown_dimension_is_asked_of_the_endpoint(openai_endpoint):
    embed = OpenAI(base_url=openai_endpoint.url + "/", api_key=API_KEY)
    assert embed.dim == ENDPOINT_DIM
    assert [request["input"] for request in openai_endpoint.requests] == [["dimension probe"]]


def test_the_key_comes_from_the_environment_and_is_never_in_the_config(openai_endpoint, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    embed = OpenAI(base_url=openai_endpoint.url)
    config = embed.config()
    assert config == {"kind": "openai", "name": "openai/text-embedding-3-small", "model": "text-embedding-3-small",
                      "base_url": openai_endpoint.url, "dim": ENDPOINT_DIM, "batch_size": 256,
                      "api_key_env": "OPENAI_API_KEY"}
    assert API_KEY not in json.dumps(config) and API_KEY not in repr(embed)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OTHER_PROVIDER_KEY", API_KEY)
    assert OpenAI(base_url=openai_endpoint.url, api_key_env="OTHER_PROVIDER_KEY")(["tea"]).shape == (1, ENDPOINT_DIM)


def test_a_refused_key_is_an_authentication_error_naming_the_variable(openai_endpoint, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="HTTP 401: Incorrect API key provided .*OPENAI_API_KEY"):
        OpenAI(base_url=openai_endpoint.url)
    assert openai_endpoint.requests[-1]["authorization"] is None  # no key: no header
    with pytest.raises(AuthenticationError) as raised:
        OpenAI(base_url=openai_endpoint.url, api_key="sk-wrong-secret", dim=ENDPOINT_DIM)(["tea"])
    assert "sk-wrong-secret" not in str(raised.value)


def test_endpoint_refusals_are_vecdb_errors(openai_endpoint):
    with pytest.raises(InvalidArgumentError, match="HTTP 404: The model `no-such-model` does not exist"):
        OpenAI(model="no-such-model", base_url=openai_endpoint.url, api_key=API_KEY)
    with pytest.raises(InvalidArgumentError, match="HTTP 404: no route /v2/embeddings.*base_url"):
        OpenAI(base_url=openai_endpoint.url.replace("/v1", "/v2"), api_key=API_KEY)
    embed = OpenAI(base_url=openai_endpoint.url, api_key=API_KEY, dim=ENDPOINT_DIM)
    with pytest.raises(InvalidArgumentError, match="HTTP 400: This model's maximum context length"):
        embed(["fine", "this one is too long"])
    openai_endpoint.failures = [403]
    with pytest.raises(PermissionDeniedError, match="HTTP 403"):
        embed(["tea"])


def test_rate_limits_and_endpoint_failures_are_retried(openai_endpoint):
    embed = OpenAI(base_url=openai_endpoint.url, api_key=API_KEY, dim=ENDPOINT_DIM, retries=2)
    openai_endpoint.failures = [429, 503]
    np.testing.assert_array_equal(embed(["tea"]), openai_endpoint.oracle(["tea"]))
    assert len(openai_endpoint.requests) == 3
    openai_endpoint.failures = [500, 502, 503, 504]
    with pytest.raises(ServerError, match="HTTP 503: try again"):
        embed(["tea"])
    assert len(openai_endpoint.requests) == 6  # one try and two retries
    assert openai_endpoint.failures == [504]


def test_an_unreachable_endpoint_is_a_server_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ServerError, match=f"http://127.0.0.1:{port}/v1/embeddings did not answer"):
        OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, retries=0)


def test_answers_of_the_wrong_shape_are_errors(openai_endpoint):
    with pytest.raises(DimensionMismatchError, match="returned 16-dimension vectors .* expected 8"):
        OpenAI(base_url=openai_endpoint.url, api_key=API_KEY, dim=8)(["tea"])
    openai_endpoint.malformed = True
    with pytest.raises(ServerError, match="no embeddings in OpenAI's shape"):
        OpenAI(base_url=openai_endpoint.url, api_key=API_KEY)


@pytest.mark.parametrize("arguments, message", [
    ({"model": ""}, "model must be"), ({"base_url": "api.openai.com/v1"}, "base_url must be an http"),
    ({"batch_size": 0}, "batch_size must be >= 1"), ({"dim": 0}, "dim must be >= 1"),
    ({"retries": -1}, "retries must be >= 0"), ({"timeout": -1}, "timeout must be"),
])
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(InvalidArgumentError, match=message):
        OpenAI(**{"api_key": API_KEY, "dim": 4, **arguments})


def test_missing_httpx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError, match=r'pip install "vecdb-engine\[openai\]"'):
        OpenAI(dim=4)
