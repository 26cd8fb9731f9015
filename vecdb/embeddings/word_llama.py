"""WordLlama (github.com/dleemiller/WordLlama): token embeddings taken from
a large language model and trained to be averaged into sentence vectors. No
neural network runs: a text's vector is the mean of its tokens' rows, so it
embeds thousands of texts a second on a CPU. Its ``wordllama`` package
ships the 256-dimension l2_supercat weights in its wheel, which makes it the
embedding that works offline with nothing to download."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from vecdb.embeddings.protocol import check_texts, unit_rows
from vecdb.errors import InvalidArgumentError

_CONFIG = "l2_supercat"
_WEIGHTS_DIM = 256  # the dimension of the weights in the wheel
# Matryoshka-trained: the first 64 or 128 columns are an embedding too.
DIMS = (64, 128, 256)
_INSTALL_HINT = 'WordLlama embeddings need the wordllama package: pip install "vecdb-engine[embeddings]"'

_models: Dict[int, Any] = {}  # dim -> the loaded model, shared by every WordLlama of this process
_models_lock = threading.Lock()


def cache_dir() -> Path:
    """vecdb's folder in the user's cache ($XDG_CACHE_HOME/vecdb, else ~/.cache/vecdb)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vecdb"


def _tokenizer_cache(package: Path, version: str) -> Optional[Path]:
    """A folder where wordllama finds its tokenizer (in ``tokenizers/``).

    wordllama 0.4 looks for the tokenizer its wheel ships (in the package's
    ``tokenizers/``) under ``tokenizer/`` instead, then in a cache folder's
    ``tokenizers/``, then downloads it from Hugging Face. That cache is this
    folder, holding a copy of the wheel's file (a copy, not a link: the
    environment it came from may be deleted; one folder per wordllama
    version, so an upgrade brings its own). Where the user's cache cannot be
    written, a temporary folder serves this process. None when the wheel
    has no such file (a later wordllama may keep it elsewhere and find it).
    """
    source = package / "tokenizers" / f"{_CONFIG}_tokenizer_config.json"
    if not source.is_file():
        return None
    try:
        return _with_tokenizer(cache_dir() / f"wordllama-{version}", source)
    except OSError:  # a read-only home, a full disk
        return _with_tokenizer(Path(tempfile.mkdtemp(prefix="vecdb-wordllama-")), source)


def _with_tokenizer(folder: Path, source: Path) -> Path:
    target = folder / "tokenizers" / source.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copied beside the target, then renamed: a process reading the
        # cache meanwhile never sees half a file.
        descriptor, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{source.name}.")
        os.close(descriptor)
        try:
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        finally:
            Path(partial).unlink(missing_ok=True)
    return folder


def _load(dim: int) -> Any:
    with _models_lock:
        model = _models.get(dim)
        if model is None:
            try:
                import wordllama
            except ImportError:
                raise ImportError(_INSTALL_HINT) from None
            package = Path(wordllama.__file__).parent
            cache = _tokenizer_cache(package, getattr(wordllama, "__version__", "unknown"))
            try:
                model = wordllama.WordLlama.load(config=_CONFIG, dim=_WEIGHTS_DIM, trunc_dim=dim, cache_dir=cache,
                                                 disable_download=True)
            except FileNotFoundError as exc:
                raise ImportError(f"the wordllama package has no {_CONFIG} weights in {package} ({exc}): "
                                  f"reinstall it (pip install --force-reinstall 'wordllama>=0.4')") from None
            _models[dim] = model
        return model


class WordLlama:
    """WordLlama's l2_supercat embedding, from the weights in the
    ``wordllama`` wheel (never downloading): ``dim`` 256, or its first 64 or
    128 dimensions (trained to work alone). Vectors are L2-normalized; a
    text without known tokens embeds as the zero vector. One model per
    dimension is loaded per process and shared.
    """

    kind = "wordllama"

    def __init__(self, dim: int = _WEIGHTS_DIM) -> None:
        if isinstance(dim, bool) or dim not in DIMS:
            raise InvalidArgumentError(f"WordLlama's dim must be one of {', '.join(map(str, DIMS))}, got {dim!r}")
        self.dim = int(dim)
        self.name = f"wordllama/{_CONFIG}_{self.dim}"
        self._model = _load(self.dim)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # wordllama's own norm=True divides by zero on a text without tokens.
        vectors = np.ascontiguousarray(self._model.embed(texts, norm=False), dtype=np.float32)
        return unit_rows(vectors)

    def config(self) -> Dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "dim": self.dim}

    def __repr__(self) -> str:
        return f"WordLlama(dim={self.dim})"

