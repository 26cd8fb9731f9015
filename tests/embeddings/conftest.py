"""Stand-ins for what these tests cannot reach: a sentence-transformers
package (not installed, and its models would come from the Hugging Face Hub)
and an OpenAI-compatible endpoint (a small HTTP server on 127.0.0.1). Both
answer with Hashing vectors, so their results have an oracle."""

from __future__ import annotations

import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pytest

from vecdb.embeddings import Hashing, sentence_transformer

@pytest.fixture(scope="package", autouse=True)
def user_cache(tmp_path_factory) -> Iterator[None]:
    """The user's cache folder (where WordLlama keeps its tokenizer) in a temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


FAKE_ST_DIM = 24
FAKE_ST_MODELS = ("all-MiniLM-L6-v2", "BAAI/bge-small-en-v1.5")  # what the fake "cache" holds


class FakeSentenceTransformer:
    """Like sentence_transformers.SentenceTransformer: loads a model by
    name (OSError for one not available offline, as huggingface_hub says),
    encode() and get_sentence_embedding_dimension()."""

    loads: List[Any] = []
    encodes: List[Dict[str, Any]] = []

    def __init__(self, model_name_or_path: str, device: Optional[str] = None) -> None:
        if model_name_or_path not in FAKE_ST_MODELS:
            raise OSError(f"We couldn't connect to 'https://huggingface.co' to load the files of "
                          f"{model_name_or_path}, and couldn't find them in the cached files.")
        FakeSentenceTransformer.loads.append((model_name_or_path, device))
        self._hashing = Hashing(FAKE_ST_DIM)

    def get_sentence_embedding_dimension(self) -> int:
        return FAKE_ST_DIM

    def encode(self, sentences: Any, batch_size: int = 32, show_progress_bar: Optional[bool] = None,
               convert_to_numpy: bool = True, normalize_embeddings: bool = False) -> np.ndarray:
        FakeSentenceTransformer.encodes.append({"count": len(sentences), "show_progress_bar": show_progress_bar,
                                                "normalize_embeddings": normalize_embeddings})
        vectors = 3.0 * self._hashing([sentences] if isinstance(sentences, str) else list(sentences))
        if normalize_embeddings:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors[0] if isinstance(sentences, str) else vectors


@pytest.fixture
def fake_sentence_transformers(monkeypatch) -> Iterator[type]:
    """A sentence_transformers module whose SentenceTransformer is the fake; no model loaded yet."""
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = FakeSentenceTransformer
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    monkeypatch.setattr(sentence_transformer, "_models", {})
    FakeSentenceTransformer.loads, FakeSentenceTransformer.encodes = [], []
    yield FakeSentenceTransformer


API_KEY = "sk-test-key"
ENDPOINT_DIM = 16


class FakeEndpoint:
    """What the fake endpoint was asked, and how it misbehaves next:
    ``failures`` is a list of HTTP statuses to answer before answering well."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: List[Dict[str, Any]] = []
        self.failures: List[int] = []
        self.malformed = False
        self.oracle = Hashing(ENDPOINT_DIM)


def _handler(endpoint: FakeEndpoint) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def _answer(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> None:
            content = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(content)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)

        def _error(self, status: int, message: str, headers: Optional[Dict[str, str]] = None) -> None:
            self._answer(status, {"error": {"message": message, "type": "invalid_request_error"}}, headers)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            endpoint.requests.append({"path": self.path, "authorization": self.headers.get("authorization"),
                                      **body})
            if self.path != "/v1/embeddings":
                return self._error(404, f"no route {self.path}")
            if self.headers.get("authorization") != f"Bearer {API_KEY}":
                return self._error(401, "Incorrect API key provided")
            if endpoint.failures:
                return self._error(endpoint.failures.pop(0), "try again", {"retry-after": "0"})
            if body["model"] != "text-embedding-3-small":
                return self._error(404, f"The model `{body['model']}` does not exist")
            if any("too long" in text for text in body["input"]):
                return self._error(400, "This model's maximum context length is 8192 tokens")
            if endpoint.malformed:
                return self._answer(200, {"object": "list", "results": []})
            vectors = endpoint.oracle(body["input"])
            # Listed last first: a client must place them by their index.
            data = [{"object": "embedding", "index": i, "embedding": vectors[i].tolist()}
                    for i in reversed(range(len(vectors)))]
            self._answer(200, {"object": "list", "data": data, "model": body["model"],
                               "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    return Handler


@pytest.fixture
def openai_endpoint() -> Iterator[FakeEndpoint]:
    """An OpenAI-shaped /v1/embeddings on 127.0.0.1 returning Hashing(16) vectors, key API_KEY."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    endpoint = FakeEndpoint(f"http://127.0.0.1:{server.server_address[1]}/v1")
    server.RequestHandlerClass = _handler(endpoint)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
