"""vecdb: an embedded vector database with a native SIMD core.

The pieces available so far:

- :class:`FlatIndex` and :func:`knn`: exact nearest-neighbour search
  (the reference every approximate index is measured against);
- :class:`HNSWIndex`: approximate search on an HNSW graph;
- :func:`pairwise_distances`: distance matrices from the SIMD kernels;
- :func:`cpu_features`, :func:`set_simd_level`: which kernels run.
"""

from vecdb import errors
from vecdb.flat import FlatIndex, knn, pairwise_distances
from vecdb.hnsw import HNSWIndex
from vecdb.metrics import METRICS
from vecdb.simd import cpu_features, set_simd_level, simd_level, simd_levels

__version__ = "0.1.0"

__all__ = [
    "FlatIndex",
    "HNSWIndex",
    "METRICS",
    "cpu_features",
    "errors",
    "knn",
    "pairwise_distances",
    "set_simd_level",
    "simd_level",
    "simd_levels",
]
