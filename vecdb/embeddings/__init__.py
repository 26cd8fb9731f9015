"""Embedding functions: texts in, vectors out, for collections that take
documents and text queries (``create_collection(..., embedding=ef)``).

Any object with ``name``, ``dim``, ``__call__(texts)`` and ``config()`` is
an :class:`EmbeddingFunction`. Ready-made ones, each stored with its
collection by its config and rebuilt by :func:`from_config`:

- :class:`Hashing`: word feature hashing; nothing to install (tests, demos);
- :class:`WordLlama`: a small, fast model whose weights ship in the
  ``wordllama`` package: works offline (``vecdb-engine[embeddings]``);
- :class:`SentenceTransformer`: sentence-transformers models, run locally
  (``vecdb-engine[sentence-transformers]``);
- :class:`OpenAI`: any OpenAI-compatible ``/embeddings`` endpoint
  (``vecdb-engine[openai]``).

:func:`embed_batches` embeds many texts a batch at a time, checking each
batch's output and reporting progress. This package needs neither the
native core nor LMDB: a remote client embeds on its own side.
"""

from __future__ import annotations

from vecdb.embeddings.batches import DEFAULT_BATCH_SIZE, embed_batches
from vecdb.embeddings.hashing import Hashing
from vecdb.embeddings.openai_compatible import OpenAI
from vecdb.embeddings.protocol import EmbeddingFunction, check_embedding_function, check_embeddings, check_texts
from vecdb.embeddings.registry import from_config
from vecdb.embeddings.sentence_transformer import SentenceTransformer
from vecdb.embeddings.word_llama import WordLlama

__all__ = ["EmbeddingFunction", "Hashing", "WordLlama", "SentenceTransformer", "OpenAI", "from_config",
           "embed_batches", "DEFAULT_BATCH_SIZE", "check_embedding_function", "check_embeddings", "check_texts"]
