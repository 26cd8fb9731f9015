"""The benchmarked systems by name, and constructing them."""

from __future__ import annotations

from bench.systems.base import GraphSettings, GraphSystem, System
from bench.systems.faiss_flat import FaissFlat
from bench.systems.faiss_hnsw import FaissHnsw
from bench.systems.faiss_pq import FaissHnswPq, FaissIvfPq, FaissOpq, FaissPq
from bench.systems.hnswlib_hnsw import Hnswlib
from bench.systems.numpy_flat import NumpyFlat
from bench.systems.usearch_hnsw import Usearch, UsearchF16
from bench.systems.vecdb_collection import VecdbCollection, VecdbCollectionPayload
from bench.systems.vecdb_flat import VecdbFlat
from bench.systems.vecdb_hnsw import VecdbHnsw, VecdbHnswF16
from bench.systems.vecdb_pq import VecdbHnswOpq, VecdbHnswPq, VecdbOpq, VecdbPq

SYSTEMS: dict[str, type[System]] = {
    system.name: system
    for system in (VecdbFlat, NumpyFlat, FaissFlat, VecdbHnsw, VecdbHnswF16, VecdbCollection, VecdbCollectionPayload,
                   Hnswlib, FaissHnsw, Usearch, UsearchF16,
                   VecdbPq, VecdbOpq, VecdbHnswPq, VecdbHnswOpq, FaissPq, FaissOpq, FaissIvfPq, FaissHnswPq)
}


def create_system(name: str, graph_settings: GraphSettings) -> System:
    """A fresh, unbuilt system; graph systems take ``graph_settings``."""
    try:
        system_class = SYSTEMS[name]
    except KeyError:
        raise ValueError(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}") from None
    if issubclass(system_class, GraphSystem):
        return system_class(graph_settings)
    return system_class()


__all__ = ["SYSTEMS", "GraphSettings", "System", "create_system"]
