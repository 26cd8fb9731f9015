"""vecdb: an embedded vector database with a native SIMD core.

Start with :func:`open` (or :func:`connect` to a ``vecdb serve`` server:
the same API over HTTP)::

    db = vecdb.open("./data")
    docs = db.create_collection("docs", dim=384, metric="cosine")
    docs.upsert(ids=["a", "b"], vectors=X, payloads=[{"lang": "en"}, {"lang": "fr"}])
    hits = docs.search(q, k=10, filter={"lang": "en"})

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
"""

from vecdb import errors, plans
from vecdb.client import RemoteCollection, RemoteDatabase, connect
from vecdb.collection import Collection
from vecdb.config import HNSW, PQ, Flat
from vecdb.database import Database, open
from vecdb.explain import Explanation
from vecdb.flat import FlatIndex, knn, pairwise_distances
from vecdb.hnsw import HNSWIndex
from vecdb.metrics import METRICS
from vecdb.pq import ProductQuantizer, rerank
from vecdb.records import Hit, Record
from vecdb.simd import cpu_features, set_simd_level, simd_level, simd_levels
from vecdb.tuning import TuneReport

__version__ = "0.1.0"

__all__ = [
    "Collection",
    "Database",
    "Explanation",
    "Flat",
    "FlatIndex",
    "HNSW",
    "HNSWIndex",
    "Hit",
    "METRICS",
    "PQ",
    "ProductQuantizer",
    "Record",
    "RemoteCollection",
    "RemoteDatabase",
    "TuneReport",
    "connect",
    "cpu_features",
    "errors",
    "knn",
    "open",
    "pairwise_distances",
    "plans",
    "rerank",
    "set_simd_level",
    "simd_level",
    "simd_levels",
]
