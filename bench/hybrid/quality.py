"""python -m bench.hybrid.quality: how often dense, text (BM25) and hybrid search find the
point a query was made for, side by side, on the shared dataset's 50,000 npm descriptions.

The relevance set (known-item search; seeded, the same every run): --queries target points
drawn at random among the descriptions of at least MIN_WORDS words. Each target gets two
queries made from its own text, as someone who remembers it would phrase them:

  partial    a random run of half its words (at least 3), in order
  keywords   its KEYWORDS rarest words (highest document frequency rank over the corpus,
             stop words left out), shuffled: the issue's "distinctive terms"

The target is the one relevant point; another point with a near-identical description
counts as a miss (the dataset is deduplicated, but templates such as "TypeScript
definitions for X" remain), so every figure is a lower bound. Both sets favour lexical
matching by construction (the queries are the target's own words). A third set leans the
other way:

  minilm     the dataset's 1,000 held-out query descriptions (not among the points), each
             judged by a stronger model: its relevant points are its 10 nearest by
             all-MiniLM-L6-v2 (the dataset's exact neighbours), and the query text is
             searched as it is

Dense search needs each query embedded by the model that embedded the points. The shared
vectors come from all-MiniLM-L6-v2, which cannot run here (its weights are not on PyPI and
nothing else is reachable), so points and queries are embedded with WordLlama
(l2_supercat, 256 dimensions, a static word-embedding model whose weights ship in its
PyPI wheel): a weaker model than MiniLM. The biases go with the figures.

Searched on one vecdb collection as a user would: HNSW, cosine, payload {"body": text},
create_text_index("body"), one Collection.search per query, k = 10:

  dense                 search(q, k)
  text                  search(text=t, k)
  hybrid-rrf            search(q, text=t, k, fusion=RRF())            (k = 60)
  hybrid-dbsf           search(q, text=t, k, fusion=DBSF())
  hybrid-rrf-alpha=A    RRF(alpha=A): the vector branch weighs A, text 1 - A

Reported per query set and mode, with R a query's relevant points: recall@1 (the first hit
is in R), recall@10 (the share of R, at most 10, in the top 10) and MRR@10 (1 / the rank of
the first hit in R).
Results: OUT/quality.json and OUT/quality.md.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import re
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

import vecdb
from bench.durable.__main__ import write_results
from bench.machine import machine_info
from bench.paths import DEFAULT_RESULTS_DIR, SHARED_DATA_DIR
from bench.hybrid.data import BASE_VECTORS, NEIGHBORS, QUERY_VECTORS, exact_cosine_top_k
from bench.text.corpus import BASE_TEXTS, QUERY_TEXTS
from vecdb.text.stopwords import ENGLISH

MIN_WORDS = 6
KEYWORDS = 3
K = 10
ALPHAS = (0.3, 0.7)
_WORD = re.compile(r"\w+")
FORMAT = "vecdb-hybrid-quality-1"


def words(text: str) -> List[str]:
    return _WORD.findall(text.lower())


def relevance_set(texts: List[str], count: int, seed: int) -> Dict[str, List[Tuple[List[int], str]]]:
    """The known-item sets: (relevant rows, query text) pairs (see the module's docstring)."""
    rng = random.Random(seed)
    frequency = Counter(word for text in texts for word in set(words(text)))
    eligible = [row for row, text in enumerate(texts) if len(words(text)) >= MIN_WORDS]
    targets = rng.sample(eligible, count)
    partial, keywords = [], []
    for row in targets:
        tokens = _WORD.findall(texts[row])
        width = max(3, len(tokens) // 2)
        start = rng.randrange(len(tokens) - width + 1)
        partial.append(([row], " ".join(tokens[start:start + width])))
        distinct = [word for word in dict.fromkeys(words(texts[row])) if word not in ENGLISH]
        rarest = sorted(distinct, key=lambda word: frequency[word])[:KEYWORDS]  # ties: first in the text
        rng.shuffle(rarest)
        keywords.append(([row], " ".join(rarest)))
    return {"partial": partial, "keywords": keywords}


def minilm_judged(folder: Path, points: int) -> List[Tuple[List[int], str]]:
    """The held-out query descriptions with their 10 nearest points by MiniLM (exact; among
    the first ``points`` when the set is cut)."""
    queries = (folder / QUERY_TEXTS).read_text(encoding="utf-8").split("\n")
    if points >= len(np.load(folder / BASE_VECTORS, mmap_mode="r")):
        truth = np.load(folder / NEIGHBORS)[:, :K]
    else:
        base = np.load(folder / BASE_VECTORS)[:points].astype(np.float32)
        truth = exact_cosine_top_k(base, np.load(folder / QUERY_VECTORS), K)
    return [(row.tolist(), text) for row, text in zip(truth, queries) if text]


def load_wordllama() -> Any:
    """WordLlama's l2_supercat model from the files in its wheel, never downloading
    (wordllama 0.4 looks for the tokenizer its wheel ships in tokenizers/ under tokenizer/,
    then in a cache folder's tokenizers/: that cache is given)."""
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError:
        raise SystemExit("the quality benchmark needs wordllama: pip install -e '.[bench]'") from None
    package = pathlib.Path(wordllama.__file__).parent
    cache = Path(tempfile.mkdtemp(prefix="vecdb-wordllama-"))
    (cache / "tokenizers").symlink_to(package / "tokenizers")
    return WordLlama.load(cache_dir=cache, disable_download=True)


def modes(collection: Any) -> Dict[str, Callable[[np.ndarray, str], List[Any]]]:
    """Each mode: (query vector, query text) -> the ids found, best first."""
    def ids(hits: List[Any]) -> List[Any]:
        return [hit.id for hit in hits]

    found: Dict[str, Callable[[np.ndarray, str], List[Any]]] = {
        "dense": lambda vector, text: ids(collection.search(vector, K, with_payload=False)),
        "text": lambda vector, text: ids(collection.search(text=text, k=K, with_payload=False)),
        "hybrid-rrf": lambda vector, text: ids(collection.search(vector, K, text=text, fusion=vecdb.RRF(),
                                                                 with_payload=False)),
        "hybrid-dbsf": lambda vector, text: ids(collection.search(vector, K, text=text, fusion=vecdb.DBSF(),
                                                                  with_payload=False)),
    }
    for alpha in ALPHAS:
        found[f"hybrid-rrf-alpha={alpha}"] = (
            lambda vector, text, alpha=alpha: ids(collection.search(vector, K, text=text,
                                                                    fusion=vecdb.RRF(alpha=alpha),
                                                                    with_payload=False)))
    return found


def measure(found: List[List[Any]], relevant: List[List[int]]) -> Dict[str, float]:
    """The mean of each measure over the queries (see the module's docstring)."""
    first = [next((rank for rank, hit in enumerate(hits, 1) if hit in wanted), None)
             for hits, wanted in zip(found, relevant)]
    return {"recall@1": sum(rank == 1 for rank in first) / len(found),
            f"recall@{K}": float(np.mean([len(set(hits) & set(wanted)) / min(len(wanted), K)
                                          for hits, wanted in zip(found, relevant)])),
            f"mrr@{K}": sum(1.0 / rank for rank in first if rank is not None) / len(found)}


def markdown(document: Dict[str, Any]) -> str:
    sets = document["results"]
    names = list(next(iter(sets.values())))
    counts = ", ".join(f"{name} {count:,}" for name, count in document["sets"].items())
    lines = [f"{document['points']:,} npm descriptions; queries per set: {counts} (seed {document['seed']}); "
             f"points and queries embedded with {document['model']}; one Collection.search per query, k = {K}.",
             "",
             "| mode | " + " | ".join(f"{name}: recall@1 | recall@{K} | MRR@{K}" for name in sets) + " |",
             "|---|" + "---|---|---|" * len(sets)]
    for mode in names:
        cells = [f"{sets[name][mode]['recall@1']:.3f} | {sets[name][mode][f'recall@{K}']:.3f} | "
                 f"{sets[name][mode][f'mrr@{K}']:.3f}" for name in sets]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    lines += ["", "Example queries (a relevant point, then the query):"]
    for name, examples in document["examples"].items():
        for target, query in examples:
            lines.append(f"- {name}: \"{target}\" <- \"{query}\"")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA_DIR / "npm-minilm-384",
                        help="a folder with base_texts.txt (one description per line)")
    parser.add_argument("--queries", type=int, default=1000, help="targets (each gets one query per set)")
    parser.add_argument("--points", type=int, default=None, help="keep the first POINTS texts only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / "hybrid")
    args = parser.parse_args()
    texts = (args.data / BASE_TEXTS).read_text(encoding="utf-8").split("\n")
    texts = [text for text in texts if text][: args.points]
    sets = {**relevance_set(texts, args.queries, args.seed), "minilm": minilm_judged(args.data, len(texts))}
    model = load_wordllama()
    print(f"embedding {len(texts):,} texts with WordLlama ...", flush=True)
    vectors = np.ascontiguousarray(model.embed(texts), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="vecdb-quality-") as folder, \
            vecdb.open(folder, progress=vecdb.progress.silent) as db:
        collection = db.create_collection("npm", vectors.shape[1], "cosine")
        for start in range(0, len(texts), 5000):
            rows = range(start, min(start + 5000, len(texts)))
            collection.upsert(list(rows), vectors[start:rows.stop], [{"body": texts[row]} for row in rows])
        collection.create_text_index("body")
        collection.wait_indexed()
        results: Dict[str, Dict[str, Dict[str, float]]] = {}
        for name, pairs in sets.items():
            queries = np.ascontiguousarray(model.embed([query for _, query in pairs]), dtype=np.float32)
            results[name] = {}
            for mode, search in modes(collection).items():
                found = [search(queries[i], query) for i, (_, query) in enumerate(pairs)]
                results[name][mode] = measure(found, [rows for rows, _ in pairs])
                print(f"{name:9s} {mode:22s} " + "  ".join(f"{key} {value:.3f}"
                                                             for key, value in results[name][mode].items()))
    document = {"format": FORMAT, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": machine_info(), "points": len(texts), "queries": args.queries, "seed": args.seed,
                "model": "WordLlama l2_supercat (256 dims)", "k": K, "results": results,
                "sets": {name: len(pairs) for name, pairs in sets.items()},
                "examples": {name: [(texts[rows[0]], query) for rows, query in pairs[:3]]
                             for name, pairs in sets.items()}}
    write_results(args.out, "quality", document, markdown(document))


if __name__ == "__main__":
    main()
