"""Chroma's embedded database (``chromadb.PersistentClient(path=...)``).

The same HNSW settings as vecdb's (M as ``max_neighbors``, ef_construction); ``add`` returns
once the points are searchable. Chroma's search ef is a collection setting (``ef_search``),
read when the collection's index is loaded, i.e. at a process's first query: each setting of
the sweep runs in a fresh process, which sets it before searching. Telemetry is off (the
benchmark talks to no remote host).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np

from bench.durable.databases.base import EF_SWEEP, DurableDatabase, Milestones, OpenCollection, Setting
from bench.durable.points import batches, payloads_for
from bench.optional import CHROMADB


def _client(folder: Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))


def ingest(base: np.ndarray, metric: str, params: Dict[str, Any], folder: Path) -> Milestones:
    col = _client(folder).create_collection(
        "bench", embedding_function=None,
        configuration={"hnsw": {"space": metric, "max_neighbors": params["M"],
                                "ef_construction": params["ef_construction"]}},
    )
    for rows, vectors in batches(base, params["batch"]):
        col.add(ids=[str(row) for row in rows], embeddings=vectors, metadatas=payloads_for(rows))
    done = time.perf_counter()
    return {"durable": done, "indexed": done}  # add builds the graph as it goes


@contextlib.contextmanager
def open_collection(folder: Path, metric: str, setting: Setting) -> Iterator[OpenCollection]:
    """The stored collection, its ``ef_search`` set to ``setting["ef"]`` (as stored without
    one) before its first query loads the index."""
    col = _client(folder).get_collection("bench", embedding_function=None)
    if "ef" in setting and col.configuration["hnsw"]["ef_search"] != setting["ef"]:
        col.modify(configuration={"hnsw": {"ef_search": setting["ef"]}})

    def search(query: np.ndarray, k: int) -> List[int]:
        return [int(id_) for id_ in col.query(query_embeddings=[query], n_results=k, include=[])["ids"][0]]

    yield OpenCollection(search=search, index_source=lambda: "chroma")


CHROMA = DurableDatabase("chroma", CHROMADB, ingest, "`add` calls (the HNSW graph built as they go)", open_collection,
                         knob="ef_search", sweep=EF_SWEEP)
