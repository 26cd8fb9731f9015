"""vecdb: an embedded vector database with a native SIMD core.

Start with :func:`open` (or :func:`connect` to a ``vecdb serve`` server:
the same API over HTTP)::

    db = vecdb.open("./data")
    docs = db.create_collection("docs", dim=384, metric="cosine")
    docs.upsert(ids=["a", "b"], vectors=X, payloads=[{"lang": "en"}, {"lang": "fr"}])
    hits = docs.search(q, k=10, filter={"lang": "en"})

Either database is a :class:`DatabaseAPI` and its collections are
:class:`CollectionAPI` (:mod:`vecdb.api`): annotate with these to accept
any backend.

Underneath, usable on their own:

- :class:`Database`, :class:`Collection`: durable collections on LMDB,
  searched through a query planner (:mod:`vecdb.plans`, :class:`Explanation`,
  :class:`TuneReport`) with Matryoshka prefix indexes (``mrl_dims``);
- :class:`FlatIndex` and :func:`knn`: exact nearest-neighbour search
  (the reference every approximate index is measured against);
- :class:`HNSWIndex`: approximate search on an HNSW graph;
- :class:`ProductQuantizer` and :func:`rerank`: vectors compressed to a few
  bytes, searched by ADC, shortlists re-ranked exactly;
- :func:`pairwise_distances`: distance matrices from the SIMD kernels;
- :func:`cpu_features`, :func:`set_simd_level`: which kernels run.

Names are loaded when first used: ``import vecdb`` (and ``vecdb.client``)
loads neither the native core nor LMDB until an embedded name is reached.
The README's "Architecture" section maps the subpackages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vecdb import errors, plans
from vecdb._version import __version__

# Public name -> the module that defines it.
_HOMES = {
    "DatabaseAPI": "vecdb.api",
    "CollectionAPI": "vecdb.api",
    "Collection": "vecdb.collection",
    "Database": "vecdb.database",
    "open": "vecdb.database",
    "Explanation": "vecdb.reports",
    "TuneReport": "vecdb.reports",
    "Hit": "vecdb.records",
    "Record": "vecdb.records",
    "Group": "vecdb.records",
    "HNSW": "vecdb.config",
    "PQ": "vecdb.config",
    "Flat": "vecdb.config",
    "VectorSpec": "vecdb.config",
    "NamedVectorsCollection": "vecdb.named_vectors",
    "SparseVector": "vecdb.sparse",
    "RRF": "vecdb.fusion",
    "DBSF": "vecdb.fusion",
    "METRICS": "vecdb.metrics",
    "RemoteCollection": "vecdb.client",
    "RemoteDatabase": "vecdb.client",
    "connect": "vecdb.client",
    "AsyncRemoteCollection": "vecdb.client",
    "AsyncRemoteDatabase": "vecdb.client",
    "connect_async": "vecdb.client",
    "FlatIndex": "vecdb.native.flat",
    "knn": "vecdb.native.flat",
    "pairwise_distances": "vecdb.native.flat",
    "HNSWIndex": "vecdb.native.hnsw",
    "ProductQuantizer": "vecdb.native.pq",
    "rerank": "vecdb.native.rerank",
    "cpu_features": "vecdb.native.simd",
    "set_simd_level": "vecdb.native.simd",
    "simd_level": "vecdb.native.simd",
    "simd_levels": "vecdb.native.simd",
}

if TYPE_CHECKING:
    from vecdb.api import CollectionAPI, DatabaseAPI
    from vecdb.client import (AsyncRemoteCollection, AsyncRemoteDatabase, RemoteCollection, RemoteDatabase, connect,
                              connect_async)
    from vecdb.collection import Collection
    from vecdb.config import HNSW, PQ, Flat, VectorSpec
    from vecdb.named_vectors import NamedVectorsCollection
    from vecdb.database import Database, open
    from vecdb.fusion import DBSF, RRF
    from vecdb.sparse import SparseVector
    from vecdb.metrics import METRICS
    from vecdb.native.flat import FlatIndex, knn, pairwise_distances
    from vecdb.native.hnsw import HNSWIndex
    from vecdb.native.pq import ProductQuantizer
    from vecdb.native.rerank import rerank
    from vecdb.native.simd import cpu_features, set_simd_level, simd_level, simd_levels
    from vecdb.records import Group, Hit, Record
    from vecdb.reports import Explanation, TuneReport


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'vecdb' has no attribute {name!r}")
    try:
        module = importlib.import_module(home)
    except ModuleNotFoundError as missing:
        # The vecdb-client distribution ships the client and the shared
        # vocabulary only; the engine's modules are absent, not broken.
        if not (missing.name or "").startswith("vecdb."):
            raise
        raise ImportError(f"vecdb.{name} is part of the embedded engine, which this install (the vecdb-client "
                          f"distribution) does not have: pip install vecdb-engine (it includes the client)",
                          name=home) from missing
    value = getattr(module, name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_HOMES))


__all__ = sorted(["errors", "plans", "__version__", *_HOMES])
