"""Embedding many texts: one call of the function per batch, each result
checked, progress reported between batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from vecdb.checks import positive_int
from vecdb.embeddings.protocol import EmbeddingFunction, check_embeddings, check_texts
from vecdb.progress import Progress, Task, silent

# Texts per call: large enough that a model's per-call cost (a request, a
# forward pass) is shared by many texts, small enough that a progress bar
# moves and a failure late in a big add does not waste much work.
DEFAULT_BATCH_SIZE = 512


def embed_batches(function: EmbeddingFunction, texts: Any, batch_size: int = DEFAULT_BATCH_SIZE,
                  progress: Progress = silent) -> np.ndarray:
    """``texts`` embedded by ``function``, ``batch_size`` texts per call:
    one C-contiguous float32 ``(len(texts), function.dim)`` array.

    The texts and every batch's output are checked (texts must be str; a
    batch must come back as ``(len(batch), dim)`` finite numbers), so a
    faulty function fails here with its name rather than later in an index.
    ``progress`` is told of the texts embedded after each batch.
    """
    texts = check_texts(texts)
    batch_size = positive_int(batch_size, "batch_size")
    vectors = np.empty((len(texts), function.dim), dtype=np.float32)
    task = Task(f"embedding texts with {function.name}", "texts")
    progress(task, 0, len(texts))
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        vectors[start:start + len(batch)] = check_embeddings(function, len(batch), function(batch))
        progress(task, start + len(batch), len(texts))
    return vectors
