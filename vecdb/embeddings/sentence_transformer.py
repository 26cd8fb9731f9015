"""Sentence-transformers models (sbert.net): transformer encoders run on
this machine, downloaded from the Hugging Face Hub on first use and cached
there. Needs the ``sentence-transformers`` package (and PyTorch), imported
only when such a function is made."""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from vecdb.embeddings.protocol import check_texts
from vecdb.errors import InvalidArgumentError

_INSTALL_HINT = ('SentenceTransformer embeddings need the sentence-transformers package: '
                 'pip install "vecdb-engine[sentence-transformers]"')

# (model, device) -> the loaded model, shared by every SentenceTransformer of this process.
_models: Dict[Tuple[str, Optional[str]], Any] = {}
_models_lock = threading.Lock()


def _load(model: str, device: Optional[str]) -> Any:
    with _models_lock:
        loaded = _models.get((model, device))
        if loaded is None:
            try:
                import sentence_transformers
            except ImportError:
                raise ImportError(_INSTALL_HINT) from None
            try:
                loaded = sentence_transformers.SentenceTransformer(model, device=device)
            # huggingface_hub reports an unreachable Hub, an unknown model id
            # and a model missing from its offline cache as OSError or ValueError.
            except (OSError, ValueError) as exc:
                raise InvalidArgumentError(
                    f"cannot load the sentence-transformers model {model!r}: {exc}. Models are downloaded from "
                    f"the Hugging Face Hub on first use: without network access, download it once where there "
                    f"is one (into the Hugging Face cache, or a folder whose path you pass as model=)") from exc
            _models[(model, device)] = loaded
        return loaded


class SentenceTransformer:
    """A sentence-transformers model by Hugging Face id (``"all-MiniLM-L6-v2"``
    is ``"sentence-transformers/all-MiniLM-L6-v2"``) or local folder, on
    ``device`` (None: the library's choice: a GPU if there is one).
    ``normalize``: L2-normalized vectors (what cosine and dot metrics want).
    The model loads when this is made (its dimension is needed then) and is
    shared with every other SentenceTransformer of the same model and device
    in this process. ``device`` is not part of :meth:`config`: where the
    model runs does not change its vectors.
    """

    kind = "sentence-transformers"

    def __init__(self, model: str = "all-MiniLM-L6-v2", device: Optional[str] = None, normalize: bool = True) -> None:
        if not isinstance(model, str) or not model:
            raise InvalidArgumentError(f"model must be a model id or a folder path, got {model!r}")
        self.model = model
        self.normalize = bool(normalize)
        # Short names resolve to the sentence-transformers organisation on
        # the Hub: both spellings name the same vectors.
        self.name = model if "/" in model else f"sentence-transformers/{model}"
        self._model = _load(model, device)
        dim = self._model.get_sentence_embedding_dimension()
        self.dim = int(dim) if dim else self._encode(["dimension probe"]).shape[1]

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        # show_progress_bar=False: library code never draws (vecdb.progress).
        vectors = self._model.encode(list(texts), convert_to_numpy=True, normalize_embeddings=self.normalize,
                                     show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode(texts)

    def config(self) -> Dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "model": self.model, "normalize": self.normalize}

    def __repr__(self) -> str:
        return f"SentenceTransformer(model={self.model!r}, normalize={self.normalize})"
