"""vecdb as the vector store of RAG frameworks.

- :mod:`vecdb.integrations.langchain`: ``VecdbVectorStore``, a LangChain
  ``VectorStore`` (extra ``vecdb-engine[langchain]``);
- :mod:`vecdb.integrations.llama_index`: ``VecdbVectorStore``, a LlamaIndex
  ``BasePydanticVectorStore`` (extra ``vecdb-engine[llama-index]``).

Each wraps any :class:`vecdb.CollectionAPI` (embedded or remote): a point's
text is its document (``with_document=True``), its metadata its payload, so
the same collection is readable with vecdb's own API. Import the submodule
you need: this package imports neither framework.
"""
