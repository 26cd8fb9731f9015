"""k-NN searches as raw HTTP requests: one route, one encoding, one body per query.

Bodies are encoded before the clock starts, so the load generator spends its time sending
and receiving, not formatting floats. Each target also reads the ids back from a response,
for recall.

- vecdb, JSON: ``POST /v1/collections/{name}/search`` with ``{"vector": [...], "k", "ef",
  "with_payload": false}``.
- vecdb, MessagePack: the same fields with ``Content-Type`` and ``Accept:
  application/msgpack``, the vector as little-endian float32 bytes (see vecdb/wire.py).
- Chroma, JSON (all it speaks): the body its own HttpClient sends for
  ``collection.query(query_embeddings=[q], n_results=k, include=["distances"])`` (chromadb
  1.5, ``chromadb/api/fastapi.py``: ``_query``), to the v2 route.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

import msgpack
import numpy as np

JSON_TYPE = "application/json"
MSGPACK_TYPE = "application/msgpack"
CHROMA_TENANT = "default_tenant"
CHROMA_DATABASE = "default_database"


@dataclass(frozen=True)
class SearchTarget:
    """How to send query ``i`` to one system in one encoding: POST ``bodies[i]`` to ``path``
    with ``headers``; ``read_ids`` turns a response body into the ids found, best first."""

    system: str
    encoding: str
    path: str
    headers: Dict[str, str]
    bodies: List[bytes]
    read_ids: Callable[[bytes], List[int]]

    @property
    def label(self) -> str:
        return f"{self.system} {self.encoding}"


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _vecdb_ids_json(content: bytes) -> List[int]:
    return [hit["id"] for hit in json.loads(content)["hits"]]


def _vecdb_ids_msgpack(content: bytes) -> List[int]:
    return [hit["id"] for hit in msgpack.unpackb(content, raw=False)["hits"]]


def vecdb_target(collection: str, queries: np.ndarray, k: int, ef: int, encoding: str) -> SearchTarget:
    """Single-query searches of ``vecdb serve`` with beam width ``ef``, ids and scores only."""
    path = f"/v1/collections/{collection}/search"
    options = {"k": k, "ef": ef, "with_payload": False}
    if encoding == "json":
        return SearchTarget("vecdb", encoding, path, {"content-type": JSON_TYPE, "accept": JSON_TYPE},
                            [_json({"vector": query.tolist(), **options}) for query in queries], _vecdb_ids_json)
    if encoding == "msgpack":
        little_endian = np.ascontiguousarray(queries, dtype="<f4")
        return SearchTarget("vecdb", encoding, path, {"content-type": MSGPACK_TYPE, "accept": MSGPACK_TYPE},
                            [msgpack.packb({"vector": query.tobytes(), **options}, use_bin_type=True)
                             for query in little_endian], _vecdb_ids_msgpack)
    raise ValueError(f"vecdb speaks json or msgpack, not {encoding!r}")


def _chroma_ids(content: bytes) -> List[int]:
    return [int(found) for found in json.loads(content)["ids"][0]]


def chroma_target(collection_id: str, queries: np.ndarray, k: int) -> SearchTarget:
    """Single-query ``collection.query`` requests to ``chroma run``, distances only (ids come
    with every answer), exactly as chromadb.HttpClient words them."""
    path = (f"/api/v2/tenants/{CHROMA_TENANT}/databases/{CHROMA_DATABASE}/collections/{collection_id}/query")
    bodies = [_json({"ids": None, "query_embeddings": [query.tolist()], "n_results": k, "where": None,
                     "where_document": None, "include": ["distances"]}) for query in queries]
    return SearchTarget("chroma", "json", path, {"content-type": JSON_TYPE}, bodies, _chroma_ids)
