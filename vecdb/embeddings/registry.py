"""Rebuilding a ready-made embedding function from the config a collection
stored: the config's ``"kind"`` names the class, its other settings (all but
``"kind"`` and ``"name"``) are the class's arguments."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping

from vecdb.embeddings.hashing import Hashing
from vecdb.embeddings.openai_compatible import OpenAI
from vecdb.embeddings.protocol import EmbeddingFunction
from vecdb.embeddings.sentence_transformer import SentenceTransformer
from vecdb.embeddings.word_llama import WordLlama
from vecdb.errors import InvalidArgumentError

READY_MADE: Dict[str, Callable[..., EmbeddingFunction]] = {
    cls.kind: cls for cls in (Hashing, WordLlama, SentenceTransformer, OpenAI)}


def from_config(config: Mapping[str, Any]) -> EmbeddingFunction:
    """The ready-made embedding function whose :meth:`config` is ``config``
    (one stored with a collection). A custom function's config cannot be
    rebuilt: :class:`~vecdb.errors.InvalidArgumentError` says to pass the
    function again (``get_collection(name, embedding=...)``). Loading the
    function can fail as making it would (a package missing, a model that
    cannot be loaded)."""
    if not isinstance(config, Mapping) or not isinstance(config.get("name"), str):
        raise InvalidArgumentError(f"an embedding config is a dict with a 'name', got {config!r}")
    name, kind = config["name"], config.get("kind")
    make = READY_MADE.get(kind) if isinstance(kind, str) else None
    if make is None:
        raise InvalidArgumentError(
            f"embedding function {name!r} is not one vecdb ships (ready-made: {', '.join(sorted(READY_MADE))}), "
            f"so it cannot be rebuilt from its stored config: pass it again, as "
            f"get_collection(..., embedding=<your function>)")
    settings = {key: value for key, value in config.items() if key not in ("kind", "name")}
    try:
        function = make(**settings)
    except TypeError as exc:  # a setting this version does not know
        raise InvalidArgumentError(f"cannot rebuild embedding function {name!r} from {dict(config)!r}: {exc}") from None
    if function.name != name:
        raise InvalidArgumentError(f"embedding config {dict(config)!r} rebuilds a function named {function.name!r}, "
                                   f"not {name!r}")
    return function
