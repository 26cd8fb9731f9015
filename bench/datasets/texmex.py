"""TEXMEX vector files (.fvecs, .ivecs, .bvecs), as used by SIFT1M, GIST1M and BIGANN.

Each vector is stored as a little-endian int32 dimension followed by the components
(float32 for fvecs, int32 for ivecs, uint8 for bvecs). Files are read through a memory
map, so taking the first ``count`` vectors of a billion-vector file is cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.datasets.dataset import Dataset

_COMPONENT_TYPES = {
    ".fvecs": np.dtype("<f4"),
    ".ivecs": np.dtype("<i4"),
    ".bvecs": np.dtype("u1"),
}


def _component_type(path: Path) -> np.dtype:
    try:
        return _COMPONENT_TYPES[path.suffix]
    except KeyError:
        raise ValueError(f"{path}: expected a .fvecs, .ivecs or .bvecs file") from None


def read_vecs(path: str | Path, count: int | None = None) -> np.ndarray:
    """Read a TEXMEX file into a C-contiguous (n, dim) array of its component type.

    ``count`` limits the read to the first ``count`` vectors.
    """
    path = Path(path)
    component = _component_type(path)
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    if raw.size < 4:
        raise ValueError(f"{path}: file too short to hold a vector header")
    dim = int(raw[:4].view("<i4")[0])
    record_bytes = 4 + dim * component.itemsize
    if dim <= 0 or raw.size % record_bytes != 0:
        raise ValueError(
            f"{path}: size {raw.size} bytes is not a whole number of records of dim {dim}"
        )
    records = raw.reshape(-1, record_bytes)
    if count is not None:
        records = records[:count]
    headers = np.ascontiguousarray(records[:, :4]).view("<i4").ravel()
    if np.any(headers != dim):
        bad = int(np.flatnonzero(headers != dim)[0])
        raise ValueError(f"{path}: vector {bad} has dimension {headers[bad]}, expected {dim}")
    components = np.ascontiguousarray(records[:, 4:]).view(component)
    return components.astype(component.newbyteorder("="), copy=False)


def write_vecs(path: str | Path, vectors: np.ndarray) -> None:
    """Write a 2-D array as a TEXMEX file whose type follows the suffix of ``path``."""
    path = Path(path)
    component = _component_type(path)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {vectors.shape}")
    if component.kind in "iu" and not np.can_cast(vectors.dtype, component, casting="same_kind"):
        raise ValueError(f"{path.suffix} stores {component}; got {vectors.dtype}")
    n, dim = vectors.shape
    records = np.empty((n, 4 + dim * component.itemsize), dtype=np.uint8)
    records[:, :4] = np.array([dim], dtype="<i4").view(np.uint8)
    records[:, 4:] = vectors.astype(component).view(np.uint8).reshape(n, -1)
    records.tofile(path)


def load_texmex_dataset(base_path: str | Path, metric: str = "l2") -> Dataset:
    """Load a TEXMEX dataset from its ``<prefix>_base.{f,b}vecs`` file.

    The queries are ``<prefix>_query`` with the same suffix; ``<prefix>_groundtruth.ivecs``,
    when present and the metric is l2 (the metric TEXMEX ground truth is computed with),
    becomes the shipped ground truth.
    """
    base_path = Path(base_path)
    if not base_path.stem.endswith("_base"):
        raise ValueError(f"{base_path}: TEXMEX base files are named <prefix>_base.fvecs or .bvecs")
    prefix = base_path.stem.removesuffix("_base")
    query_path = base_path.with_name(f"{prefix}_query{base_path.suffix}")
    truth_path = base_path.with_name(f"{prefix}_groundtruth.ivecs")
    if not query_path.is_file():
        raise FileNotFoundError(f"{base_path}: expected queries at {query_path}")
    keep_truth = truth_path.is_file() and metric == "l2"
    return Dataset(
        name=prefix,
        base=np.ascontiguousarray(read_vecs(base_path), dtype=np.float32),
        queries=np.ascontiguousarray(read_vecs(query_path), dtype=np.float32),
        metric=metric,
        neighbors=read_vecs(truth_path) if keep_truth else None,
    )
