"""An orthogonal PCA rotation that puts the most variance in the first
dimensions, so that prefixes of embeddings from models not trained with
Matryoshka representation learning can shortlist like MRL prefixes do.

An orthogonal rotation changes no full-dimension distance (cosine, dot
product and L2 are all invariant), so only the prefix indexes use it: the
vectors stored in LMDB, the ones searches re-rank with and the ones
``get(with_vector=True)`` returns are the caller's own.

Stored bytes (a sealed :class:`~vecdb.index.framing.Frame`): magic,
version, dimension, the ``dim x dim`` float32 matrix (column j is the j-th
principal axis), then a checksum of all of it.
"""

from __future__ import annotations

import numpy as np

from vecdb.errors import CorruptIndexError
from vecdb.index.framing import Frame

_FRAME = Frame("the stored rotation", b"VDBROTN1", 1, "I")  # after magic and version: dim
# Vectors sampled to learn a rotation (a dim x dim moment needs far fewer).
MAX_SAMPLES = 65_536


def learn_pca_rotation(sample: np.ndarray, metric: str) -> np.ndarray:
    """The ``(dim, dim)`` float32 orthogonal matrix whose columns are the
    principal axes of ``sample``, largest variance first.

    For L2 the axes are those of the centred sample (L2 distances ignore a
    shift); for cosine and dot product they are those of the uncentred
    second moment of the (for cosine, unit-length) vectors, since a prefix's
    dot products must carry the vectors' energy, mean included.
    """
    data = sample.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(data, axis=1, keepdims=True)
        data /= np.where(norms > 0, norms, 1.0)
    if metric == "l2":
        data -= data.mean(axis=0)
    moment = data.T @ data
    eigenvalues, axes = np.linalg.eigh(moment)  # ascending
    order = np.argsort(eigenvalues)[::-1]
    axes = axes[:, order]
    # Fix each axis's sign (eigh's is arbitrary) so the same sample always
    # gives the same matrix.
    signs = np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(axes.shape[1])])
    return np.ascontiguousarray(axes * np.where(signs == 0, 1.0, signs), dtype=np.float32)


def rotation_to_bytes(rotation: np.ndarray) -> bytes:
    return _FRAME.seal((rotation.shape[0],), np.ascontiguousarray(rotation, "<f4").tobytes())


def rotation_from_bytes(data: bytes, dim: int) -> np.ndarray:
    """The stored rotation; CorruptIndexError if the bytes are damaged or
    are not a ``dim x dim`` rotation."""
    (stored_dim,), matrix = _FRAME.unseal(data, lambda fields: 4 * fields[0] * fields[0])
    if stored_dim != dim:
        raise CorruptIndexError(f"the stored rotation is of dimension {stored_dim}, the collection's is {dim}")
    return np.frombuffer(matrix, dtype="<f4").reshape(dim, dim).astype(np.float32)


def rotation_train_size(dim: int) -> int:
    """Vectors a collection needs before its PCA rotation is learned: enough
    for a stable estimate of the leading axes of a ``dim``-square moment."""
    return max(1024, 2 * dim)
