"""ann-benchmarks HDF5 files: datasets ``train``, ``test``, ``neighbors``, ``distances``.

The metric is the file attribute ``distance``. ann-benchmarks stores plain Euclidean
distances; they are squared here to match vecdb's l2 convention.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.datasets.dataset import Dataset
from bench.optional import H5PY, require

_METRIC_BY_DISTANCE = {"euclidean": "l2", "angular": "cosine", "dot": "ip", "ip": "ip"}


def load_ann_hdf5(path: str | Path, metric: str | None = None, name: str | None = None) -> Dataset:
    """Load an ann-benchmarks HDF5 file.

    ``metric`` overrides the file's ``distance`` attribute; the shipped ground truth is then
    dropped, since it was computed for the file's own metric.
    """
    h5py = require(H5PY, "reading ann-benchmarks HDF5 files")
    path = Path(path)
    with h5py.File(path, "r") as file:
        distance_name = str(file.attrs.get("distance", ""))
        file_metric = _METRIC_BY_DISTANCE.get(distance_name)
        if metric is None and file_metric is None:
            raise ValueError(
                f"{path}: distance {distance_name!r} is not one vecdb supports "
                f"({', '.join(_METRIC_BY_DISTANCE)}); pass a metric explicitly"
            )
        metric = metric or file_metric
        keep_truth = metric == file_metric
        neighbors = np.asarray(file["neighbors"]) if keep_truth and "neighbors" in file else None
        distances = (
            np.asarray(file["distances"], dtype=np.float32)
            if keep_truth and "distances" in file
            else None
        )
        if distances is not None and distance_name == "euclidean":
            distances = distances * distances
        return Dataset(
            name=name or path.stem,
            base=np.ascontiguousarray(file["train"], dtype=np.float32),
            queries=np.ascontiguousarray(file["test"], dtype=np.float32),
            metric=metric,
            neighbors=neighbors,
            distances=distances,
        )
