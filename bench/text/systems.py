"""The BM25 engines the text benchmark compares, each behind one interface.

Every system indexes the same analyzed corpus (``bench.text.corpus``: vecdb's Analyzer,
texts without terms left out) with BM25 k1 = 1.2, b = 0.75, and answers one query per call
with its top 10. What a call gets differs by what a user of that engine would hold:

- vecdb's systems get the query's text and analyze it inside the call (a user's search
  call pays for it);
- bm25s and tantivy get the query's distinct terms, already analyzed.

``search`` is what is timed; ``decode`` turns its answer into rows and scores afterwards,
untimed. bm25s and tantivy are imported when built (``requirement``), so the harness runs
with the engines that are installed.
"""

from __future__ import annotations

import shutil
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import vecdb
from vecdb import _core
from vecdb.progress import silent

from bench.optional import VECDB, Requirement
from bench.text.corpus import B, K1, LANGUAGE, AnalyzedCorpus, new_analyzer, query_terms

BM25S = Requirement("bm25s", "bm25s")
TANTIVY = Requirement("tantivy", "tantivy")
# Texts per upsert call when a collection is filled.
UPSERT_BATCH = 5000
# tantivy's writer heap: one segment for the whole corpus (hits are read by in-segment doc id).
TANTIVY_HEAP_BYTES = 256 * 2**20
_TEXT_FIELD = "text"


class TextSystem(ABC):
    """One engine: built once over the corpus, then searched one query per call."""

    name: ClassVar[str]
    requirement: ClassVar[Requirement]
    # What the system is and how it is called, for the report.
    description: ClassVar[str]

    def __init__(self, k: int) -> None:
        self.k = k

    def prepare(self, corpus: AnalyzedCorpus, folder: Path) -> None:
        """Read what the build needs besides the analyzed texts (before the clock starts)."""

    @abstractmethod
    def build(self, corpus: AnalyzedCorpus, folder: Path) -> dict[str, float]:
        """Index ``corpus`` (``folder`` is this system's to write in); the caller times the
        call. Returns the seconds of named phases inside it (none for most systems)."""

    @abstractmethod
    def query_inputs(self, corpus: AnalyzedCorpus) -> list[Any]:
        """What each query's search call gets (its text, or its terms)."""

    @abstractmethod
    def search(self, query: Any) -> Any:
        """One query's top k, as the engine answers it (timed)."""

    @abstractmethod
    def decode(self, answer: Any) -> tuple[np.ndarray, np.ndarray]:
        """``search``'s answer as corpus rows (int64) and scores (float64), best first."""

    def index_bytes(self) -> int | None:
        """Bytes the index reports or that are cheap to count; None when neither."""
        return None

    def info(self) -> dict[str, Any]:
        """Settings chosen at run time (a library's backend), for the report."""
        return {}

    def close(self) -> None:
        """Release files and handles."""


class VecdbIndex(TextSystem):
    name = "vecdb-index"
    requirement = VECDB
    description = ("`vecdb._core.InvertedIndex(\"bm25\")`: built with one `set` call from each text's distinct terms "
                   "and their frequencies (the counting is timed); a call analyzes the query text (vecdb's Analyzer, "
                   "repeats dropped), then `search(terms, weights=1, k)`")

    def build(self, corpus: AnalyzedCorpus, folder: Path) -> dict[str, float]:
        self._analyzer = new_analyzer()
        self._index = _core.InvertedIndex("bm25", k1=K1, b=B)
        self._index.set(*corpus.postings_input())
        return {}

    def query_inputs(self, corpus: AnalyzedCorpus) -> list[Any]:
        return list(corpus.corpus.queries)

    def search(self, query: Any) -> Any:
        terms = query_terms(self._analyzer, query)
        return self._index.search(terms, np.ones(len(terms), dtype=np.float32), self.k)

    def decode(self, answer: Any) -> tuple[np.ndarray, np.ndarray]:
        labels, scores = answer
        return labels.astype(np.int64), scores.astype(np.float64)

    def index_bytes(self) -> int | None:
        return int(self._index.memory_bytes())


class VecdbIndexTerms(VecdbIndex):
    name = "vecdb-index-terms"
    description = ("the same index, a call given the query's analyzed distinct terms as bm25s and tantivy are "
                   "(`search(terms, weights=1, k)` alone): the engines side by side without vecdb's query analysis")

    def query_inputs(self, corpus: AnalyzedCorpus) -> list[Any]:
        return corpus.query_terms

    def search(self, query: Any) -> Any:
        return self._index.search(query, np.ones(len(query), dtype=np.float32), self.k)


def collection_text_search_available() -> bool:
    """Whether this build's collections have a text index (``Collection.create_text_index``)."""
    return hasattr(vecdb.Collection, "create_text_index")


class VecdbCollection(TextSystem):
    """An embedded collection with a text index on the ``text`` payload field: the texts are
    upserted with their vectors (flat vector index: no graph is built in the background),
    then the text index is created over the stored points (it indexes them before it
    returns, as each later upsert indexes its own texts before returning)."""

    name = "vecdb-collection"
    requirement = VECDB
    description = ("`vecdb.open(folder)`, a collection (the dataset's vectors, `vecdb.Flat()` so that no graph is "
                   "built in the background), `upsert` of every point with payload `{\"text\": ...}` "
                   f"({UPSERT_BATCH:,} per call), then `create_text_index(\"text\", language=\"english\")`; "
                   "a call is `search(text=..., k=10, with_payload=False)`. Build = upserts (vectors and payloads "
                   "stored durably) + text index")
    index_first: ClassVar[bool] = False

    def prepare(self, corpus: AnalyzedCorpus, folder: Path) -> None:
        self._vectors = corpus.corpus.vectors()
        if folder.exists():
            shutil.rmtree(folder)

    def build(self, corpus: AnalyzedCorpus, folder: Path) -> dict[str, float]:
        vectors, texts = self._vectors, corpus.corpus.texts
        start = time.perf_counter()
        self._database = vecdb.open(folder, progress=silent)
        self._collection = self._database.create_collection("docs", dim=vectors.shape[1], metric="cosine",
                                                            index=vecdb.Flat())
        phases = {"open_seconds": time.perf_counter() - start}
        if self.index_first:
            start = time.perf_counter()
            self._collection.create_text_index(_TEXT_FIELD, language=LANGUAGE)
            phases["text_index_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        for first in range(0, len(texts), UPSERT_BATCH):
            rows = range(first, min(first + UPSERT_BATCH, len(texts)))
            self._collection.upsert(list(rows), vectors[rows.start:rows.stop],
                                    payloads=[{_TEXT_FIELD: texts[row]} for row in rows])
        phases["upsert_seconds"] = time.perf_counter() - start
        if not self.index_first:
            start = time.perf_counter()
            self._collection.create_text_index(_TEXT_FIELD, language=LANGUAGE)
            phases["text_index_seconds"] = time.perf_counter() - start
        return phases

    def query_inputs(self, corpus: AnalyzedCorpus) -> list[Any]:
        return list(corpus.corpus.queries)

    def search(self, query: Any) -> Any:
        return self._collection.search(text=query, k=self.k, with_payload=False)

    def decode(self, answer: Any) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray([hit.id for hit in answer], dtype=np.int64),
                np.asarray([hit.score for hit in answer], dtype=np.float64))

    def index_bytes(self) -> int | None:
        text_index = self._collection.stats().get("text_indexes", {}).get(_TEXT_FIELD, {})
        return text_index.get("memory_bytes")

    def close(self) -> None:
        self._database.close()


class VecdbCollectionIndexFirst(VecdbCollection):
    name = "vecdb-collection-index-first"
    description = ("the same collection with `create_text_index` called while it is empty, before the upserts "
                   "(each upsert then indexes its texts)")
    index_first = True


class Bm25s(TextSystem):
    name = "bm25s"
    requirement = BM25S
    description = ("`bm25s.BM25(method=\"lucene\", k1=1.2, b=0.75)`, `index(token lists)` (it builds its own "
                   "vocabulary); a call is `retrieve([terms], k=10, n_threads=0, show_progress=False)`: its "
                   "single-query path, scoring every text in a dense array (`np.add.at` per term with the numpy "
                   "backend), then `argpartition`")

    def build(self, corpus: AnalyzedCorpus, folder: Path) -> dict[str, float]:
        import bm25s

        # "auto": numba's compiled scorer when numba is installed, numpy otherwise (info() says which).
        self._retriever = bm25s.BM25(method="lucene", k1=K1, b=B, backend="auto")
        self._retriever.index(corpus.documents, show_progress=False)
        self._rows = corpus.rows
        return {}

    def query_inputs(self, corpus: AnalyzedCorpus) -> list[Any]:
        return corpus.query_terms

    def search(self, query: Any) -> Any:
        return self._retriever.retrieve([query], k=self.k, n_threads=0, show_progress=False)

    def decode(self, answer: Any) -> tuple[np.ndarray, np.ndarray]:
        positions, scores = answer.documents[0], answer.scores[0].astype(np.float64)
        # Fewer than k texts match: the rest of its top k are texts scoring 0, matching no term.
        matched = scores > 0
        return self._rows[positions[matched]], scores[matched]

    def index_bytes(self) -> int | None:
        return int(sum(array.nbytes for array in self._retriever.scores.values() if isinstance(array, np.ndarray)))

    def info(self) -> dict[str, Any]:
        return {"backend": self._retriever.backend, "csc_backend": self._retriever.csc_backend}


class Tantivy(TextSystem):
    name = "tantivy"
    requirement = TANTIVY
    description = ("tantivy-py, an in-memory index (`tantivy.Index(schema)`) with one text field, "
                   "`tokenizer_name=\"whitespace\"` (it splits `\" \".join(terms)` back into the same terms), "
                   "`index_option=\"freq\"` (no positions: BM25 needs none), one writer thread, one segment; a call "
                   "builds `Query.boolean_query` of a `Should` `term_query` per distinct term and runs "
                   "`searcher.search(query, 10, count=False)` (count=True would count every match, which stops "
                   "tantivy from skipping blocks)")

    def build(self, corpus: AnalyzedCorpus, folder: Path) -> dict[str, float]:
        import tantivy

        self._tantivy = tantivy
        builder = tantivy.SchemaBuilder()
        builder.add_text_field(_TEXT_FIELD, stored=False, tokenizer_name="whitespace", index_option="freq")
        self._schema = builder.build()
        index = tantivy.Index(self._schema)
        writer = index.writer(TANTIVY_HEAP_BYTES, 1)
        for tokens in corpus.documents:
            writer.add_document(tantivy.Document(**{_TEXT_FIELD: " ".join(tokens)}))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        self._searcher = index.searcher()
        if self._searcher.num_segments != 1:
            raise RuntimeError(f"tantivy wrote {self._searcher.num_segments} segments; hits are read by in-segment "
                               "doc id, which needs one: raise TANTIVY_HEAP_BYTES")
        self._rows = corpus.rows
        return {}

    def query_inputs(self, corpus: AnalyzedCorpus) -> list[Any]:
        return corpus.query_terms

    def search(self, query: Any) -> Any:
        tantivy = self._tantivy
        should = tantivy.Occur.Should
        clauses = [(should, tantivy.Query.term_query(self._schema, _TEXT_FIELD, term)) for term in query]
        return self._searcher.search(tantivy.Query.boolean_query(clauses), self.k, count=False).hits

    def decode(self, answer: Any) -> tuple[np.ndarray, np.ndarray]:
        positions = np.asarray([address.doc for _, address in answer], dtype=np.int64)
        return self._rows[positions], np.asarray([score for score, _ in answer], dtype=np.float64)


class TantivyIds(Tantivy):
    """tantivy as a user of tantivy-py reads hits: with each hit's id (a stored field) fetched by
    ``searcher.doc(address)``, as vecdb's collection returns user ids (the other tantivy system
    is handed its doc addresses' rows outside the timed call)."""

    name = "tantivy-ids"
    description = ("tantivy as above, plus a stored integer field `id` per document; a call also reads each hit's "
                   "id with `searcher.doc(address)` (the user path: a collection's search returns user ids)")

    def build(self, corpus: AnalyzedCorpus, folder: Path) -> dict[str, float]:
        import tantivy

        self._tantivy = tantivy
        builder = tantivy.SchemaBuilder()
        builder.add_text_field(_TEXT_FIELD, stored=False, tokenizer_name="whitespace", index_option="freq")
        builder.add_integer_field("id", stored=True)
        self._schema = builder.build()
        index = tantivy.Index(self._schema)
        writer = index.writer(TANTIVY_HEAP_BYTES, 1)
        for row, tokens in zip(corpus.rows.tolist(), corpus.documents):
            writer.add_document(tantivy.Document(**{_TEXT_FIELD: " ".join(tokens), "id": int(row)}))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        self._searcher = index.searcher()
        return {}

    def search(self, query: Any) -> Any:
        searcher = self._searcher
        return [(score, searcher.doc(address)["id"][0]) for score, address in super().search(query)]

    def decode(self, answer: Any) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray([row for _, row in answer], dtype=np.int64),
                np.asarray([score for score, _ in answer], dtype=np.float64))


SYSTEMS: dict[str, type[TextSystem]] = {
    system.name: system for system in (VecdbIndex, VecdbIndexTerms, VecdbCollection, VecdbCollectionIndexFirst, Bm25s,
                                       Tantivy, TantivyIds)
}
COLLECTION_SYSTEMS = ("vecdb-collection", "vecdb-collection-index-first")
