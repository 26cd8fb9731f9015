"""The texts every system indexes and the queries they answer, analyzed once by vecdb's
Analyzer so that every engine gets the same terms.

A corpus spec is ``npm-minilm-384`` (``../shared/data/npm-minilm-384``: one package
description per line of ``base_texts.txt``, queries in ``query_texts.txt``, embeddings in
``base.npy``), a folder holding those files, or ``synthetic:DOCS[:QUERIES]``: seeded
English-like texts (Zipf-distributed words, stop words, capitals and punctuation, a few
texts that analyze to no term at all, queries with unknown words and one of stop words
alone) for tests and quick runs. Line i of the texts is point i.

A text with no term after analysis is indexed by none of the systems: it cannot match a
query, and leaving it out keeps the corpus statistics (BM25's N and average length) the
same for all (bm25s and tantivy would count it, vecdb's index holds no point without terms).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from vecdb.text.analyzer import Analyzer
from vecdb.text.settings import TextIndexSettings

from bench.paths import SHARED_DATA_DIR

BASE_TEXTS = "base_texts.txt"
QUERY_TEXTS = "query_texts.txt"
BASE_VECTORS = "base.npy"
SYNTHETIC_PREFIX = "synthetic:"
# Dimension of the vectors a synthetic corpus's collection stores (text search never reads them).
SYNTHETIC_DIM = 8
_SYNTHETIC_DEFAULT_QUERIES = 100
# Settings of the text index every system reproduces: Lucene's defaults.
LANGUAGE = "english"
K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class TextCorpus:
    """Raw texts and queries; ``folder`` holds ``base.npy`` when the corpus came with vectors."""

    name: str
    texts: list[str]
    queries: list[str]
    folder: Path | None
    seed: int

    def vectors(self) -> np.ndarray:
        """One float32 vector per text, for the collection systems (a collection stores
        vectors; text search does not use them): the folder's ``base.npy`` when it has one
        row per text, else seeded Gaussian vectors of SYNTHETIC_DIM dimensions."""
        if self.folder is not None and (self.folder / BASE_VECTORS).is_file():
            base = np.load(self.folder / BASE_VECTORS, mmap_mode="r")
            if len(base) == len(self.texts):
                return np.ascontiguousarray(base, dtype=np.float32)
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal((len(self.texts), SYNTHETIC_DIM), dtype=np.float32)


@dataclass(frozen=True)
class AnalyzedCorpus:
    """The corpus as terms: ``rows`` are the texts with at least one term (what every system
    indexes, in this order), ``documents[i]`` the terms of text ``rows[i]`` (repeats kept),
    ``query_terms[q]`` the distinct terms of query q in order of first appearance."""

    corpus: TextCorpus
    rows: np.ndarray
    documents: list[list[str]]
    query_terms: list[list[str]]

    def postings_input(self) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
        """What ``InvertedIndex.set`` takes: labels (the rows), offsets, each point's
        distinct terms and their frequencies as float32 weights."""
        offsets = np.zeros(len(self.documents) + 1, dtype=np.int64)
        terms: list[str] = []
        frequencies: list[int] = []
        for position, tokens in enumerate(self.documents):
            counted = Counter(tokens)
            terms.extend(counted)
            frequencies.extend(counted.values())
            offsets[position + 1] = len(terms)
        return self.rows.astype(np.int64), offsets, terms, np.asarray(frequencies, dtype=np.float32)

    def summary(self) -> dict[str, float | int]:
        """Sizes the report quotes."""
        lengths = [len(tokens) for tokens in self.documents]
        vocabulary = {term for tokens in self.documents for term in tokens}
        return {"texts": len(self.corpus.texts), "indexed": len(self.rows),
                "without_terms": len(self.corpus.texts) - len(self.rows),
                "mean_terms_per_text": float(np.mean(lengths)) if lengths else 0.0,
                "vocabulary": len(vocabulary), "queries": len(self.query_terms),
                "mean_terms_per_query": float(np.mean([len(q) for q in self.query_terms])) if self.query_terms else 0.0,
                "queries_without_terms": sum(1 for q in self.query_terms if not q)}


def new_analyzer() -> Analyzer:
    """vecdb's analyzer with the settings every system reproduces."""
    return Analyzer(TextIndexSettings.new(language=LANGUAGE, k1=K1, b=B))


def query_terms(analyzer: Analyzer, text: str) -> list[str]:
    """A query's distinct terms, in order of first appearance (a repeated term would be
    scored twice by bm25s and tantivy)."""
    return list(dict.fromkeys(analyzer.terms(text)))


def analyze(corpus: TextCorpus) -> AnalyzedCorpus:
    analyzer = new_analyzer()
    rows, documents = [], []
    for row, text in enumerate(corpus.texts):
        tokens = analyzer.terms(text)
        if tokens:
            rows.append(row)
            documents.append(tokens)
    return AnalyzedCorpus(corpus=corpus, rows=np.asarray(rows, dtype=np.int64), documents=documents,
                          query_terms=[query_terms(analyzer, text) for text in corpus.queries])


def _read_lines(path: Path) -> list[str]:
    """The file's lines as stored (split at newlines only: other Unicode line breaks inside a
    description must not shift line i away from point i)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def load_corpus(spec: str, query_limit: int | None = None, seed: int = 0) -> TextCorpus:
    """The corpus ``spec`` names (see the module's docstring), with its first ``query_limit`` queries."""
    if spec.startswith(SYNTHETIC_PREFIX):
        corpus = synthetic_corpus(spec, seed)
    else:
        folder = Path(spec) if ("/" in spec or Path(spec).is_dir()) else SHARED_DATA_DIR / spec
        if not (folder / BASE_TEXTS).is_file() or not (folder / QUERY_TEXTS).is_file():
            raise FileNotFoundError(f"corpus {spec!r} expects {BASE_TEXTS} and {QUERY_TEXTS} in {folder}")
        corpus = TextCorpus(name=folder.name, texts=_read_lines(folder / BASE_TEXTS),
                            queries=_read_lines(folder / QUERY_TEXTS), folder=folder, seed=seed)
    if query_limit is not None:
        corpus = TextCorpus(name=corpus.name, texts=corpus.texts, queries=corpus.queries[:query_limit],
                            folder=corpus.folder, seed=corpus.seed)
    return corpus


_SYLLABLES = ("ba", "ko", "ri", "lu", "sen", "ta", "mor", "vi", "del", "pa", "qu", "ex", "zo", "nic", "ar", "ing")
_STOPWORDS = ("the", "a", "for", "and", "of", "to", "with", "is")


def synthetic_corpus(spec: str, seed: int) -> TextCorpus:
    """``synthetic:DOCS[:QUERIES]``: DOCS texts of 0-16 words drawn from a Zipf-like
    vocabulary of 1,500 made-up words, with stop words, capitals and punctuation; every
    50th text is empty or stop words alone (no term). QUERIES queries (default 100) of 1-6
    words; the first is stop words alone, the second adds an unknown word."""
    match = re.fullmatch(r"synthetic:(\d+)(?::(\d+))?", spec)
    if match is None:
        raise ValueError(f"expected synthetic:DOCS[:QUERIES], got {spec!r}")
    docs, queries = int(match.group(1)), int(match.group(2) or _SYNTHETIC_DEFAULT_QUERIES)
    if docs < 20 or queries < 2:
        raise ValueError(f"a synthetic corpus needs at least 20 texts and 2 queries, got {spec!r}")
    rng = np.random.default_rng(seed)
    vocabulary = sorted({"".join(rng.choice(_SYLLABLES, size=rng.integers(2, 5))) for _ in range(2000)})[:1500]
    weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** 1.05
    weights /= weights.sum()

    def words(count: int) -> list[str]:
        drawn = [vocabulary[i] for i in rng.choice(len(vocabulary), size=count, p=weights)]
        return [word.capitalize() if rng.random() < 0.2 else word for word in drawn]

    texts = []
    for row in range(docs):
        if row % 50 == 7:
            texts.append("" if row % 100 == 7 else "The and of the.")
            continue
        text = words(int(rng.integers(1, 17)))
        for _ in range(int(rng.integers(0, 4))):
            text.insert(int(rng.integers(0, len(text) + 1)), str(rng.choice(_STOPWORDS)))
        texts.append(" ".join(text) + rng.choice(["", ".", "!", " (beta)"]))
    query_texts = ["the of and", "zzyzx " + " ".join(words(2))]
    query_texts += [", ".join(words(int(rng.integers(1, 7)))) for _ in range(queries - 2)]
    return TextCorpus(name=f"synthetic-{docs}-q{queries}-seed{seed}", texts=texts, queries=query_texts, folder=None,
                      seed=seed)
