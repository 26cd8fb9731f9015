"""The text benchmark's Markdown report, and the part of it printed at the end of a run."""

from __future__ import annotations

from typing import Any

from bench.report.table import format_qps, markdown_table
from bench.text.agreement import SCORE_TOLERANCE

BASELINE = "tantivy"
_COLUMNS = ("system", "build s", "build / tantivy", "QPS", "QPS / tantivy", "p50 ms", "p99 ms",
            "QPS range (rounds)", "index MB", "RSS growth MB", "top-10 vs bm25s", "other load")


def _ratio(value: float, baseline: float | None) -> str:
    return f"{value / baseline:.2f}x" if baseline else "-"


def _agreement_cell(document: dict[str, Any], system: str) -> str:
    if system == document["reference"]:
        return "reference"
    for entry in document["agreement"]:
        if entry["system"] == system and entry["reference"] == document["reference"]:
            if entry["kind"] == "exact":
                return f"{entry['agreeing']}/{entry['queries']} exact"
            return f"overlap {entry['mean_overlap']:.3f}"
    return "-"


def _table(document: dict[str, Any]) -> list[str]:
    rows = document["rows"]
    baseline = rows.get(BASELINE)
    lines = []
    for system in document["systems"]:
        row = rows[system]
        lines.append([
            system, f"{row['build_seconds']:.3f}",
            _ratio(row["build_seconds"], baseline and baseline["build_seconds"]),
            format_qps(row["qps"]), _ratio(row["qps"], baseline and baseline["qps"]),
            f"{row['latency_ms_p50']:.3f}", f"{row['latency_ms_p99']:.3f}",
            f"{format_qps(row['qps_min'])}–{format_qps(row['qps_max'])} ({len(row['rounds'])})",
            "-" if row["index_mb"] is None else f"{row['index_mb']:.1f}", f"{row['rss_growth_mb']:.1f}",
            _agreement_cell(document, system), f"{row['other_load_cores']:.2f}",
        ])
    return markdown_table(_COLUMNS, lines)


def _agreement_lines(document: dict[str, Any]) -> list[str]:
    lines = []
    for entry in document["agreement"]:
        pair = f"{entry['system']} vs {entry['reference']}"
        if entry["kind"] == "exact":
            lines.append(f"- {pair}: {entry['agreeing']:,} of {entry['queries']:,} queries agree exactly; the same "
                         f"ids on {entry['same_ids']:.1%} (agreeing ids may differ among points tied at the 10th "
                         f"score); largest score difference {entry['max_score_difference']:.2g}")
            for example in entry["disagreements"]:
                lines.append(f"  - query {example['query']} {example['text']!r}: {entry['system']} "
                             f"{_hits_text(example['found'])}; {entry['reference']} "
                             f"{_hits_text(example['reference'])}")
        else:
            lines.append(f"- {pair}: mean top-10 overlap {entry['mean_overlap']:.3f}, "
                         f"same ids on {entry['same_ids']:.1%} of {entry['queries']:,} queries")
    return lines


def _hits_text(hits: list[list[float]]) -> str:
    return "[" + ", ".join(f"{int(i)}: {score:.5f}" for i, score in hits) + "]"


def _notes(document: dict[str, Any]) -> list[str]:
    analysis = document["analysis"]
    vecdb_row = document["rows"].get("vecdb-index")
    share = ""
    if vecdb_row:
        share = (f", {analysis['query_microseconds'] * vecdb_row['qps'] / 1e4:.1f}% of vecdb-index's time per "
                 "query")
    return [
        f"- Build: from the analyzed texts (the analysis itself, shared by every system, took "
        f"{analysis['corpus_seconds']:.3f} s for all {document['corpus']['texts']:,} texts and is not in any build "
        "time); the fastest round's.",
        f"- QPS, p50, p99, other load: the best round's (highest QPS; noise only slows a run down); "
        f"\"QPS range\" spans every round. Each round ran every system in a fresh process, in order on odd rounds "
        f"and reversed on even ones; each timing is the best of {document['params']['repeats']} runs of whole "
        f"passes over the {document['corpus']['queries']:,} queries lasting at least "
        f"{document['params']['min_seconds']:g} s, one query per call, one thread.",
        f"- vecdb-index's and the collections' calls take the query's text and analyze it inside the timed call "
        f"({analysis['query_microseconds']:.1f} µs per query measured alone{share}); vecdb-index-terms, bm25s and "
        "tantivy get the query's distinct terms already analyzed.",
        "- index MB: vecdb-index's `memory_bytes()`, bm25s's score arrays (its vocabulary dict not counted). "
        "RSS growth: anonymous resident memory after the build minus before (Python objects included; "
        "LMDB's memory map not counted).",
        f"- Exact agreement: the same number of hits, scores within {SCORE_TOLERANCE:g} place by place and id by "
        "id, ids differing only among points tied (within the tolerance) with the reference's 10th score. "
        "tantivy stores each text's length in one byte (its field norm), so its scores are close to, not equal "
        "to, exact BM25 (and carry its (k1 + 1) factor): compared by overlap. Among points tied at the 10th "
        "score vecdb and tantivy keep the lowest ids, bm25s any (`argpartition`): tantivy's overlap with "
        "vecdb-index shows its score differences alone, its overlap with bm25s those and the ties.",
    ]


def _phase_lines(document: dict[str, Any]) -> list[str]:
    phased = [s for s in document["systems"] if document["rows"][s]["phases"]]
    if not phased:
        return []
    names = list(dict.fromkeys(name for s in phased for name in document["rows"][s]["phases"]))
    rows = [[s] + [f"{document['rows'][s]['phases'].get(name, 0.0):.3f}" for name in names]
            + [f"{document['rows'][s]['build_seconds']:.3f}"] for s in phased]
    return (["", "## Collection build phases (fastest round)", ""]
            + markdown_table(["system"] + [name.replace("_seconds", " s").replace("_", " ") for name in names] + ["build s"], rows))


def console_report(document: dict[str, Any]) -> str:
    """The results table and the agreement lines."""
    return "\n".join(_table(document) + [""] + _agreement_lines(document)) + "\n"


def markdown(document: dict[str, Any]) -> str:
    corpus, machine = document["corpus"], document["machine"]
    libraries = ", ".join(f"{name} {version}" for name, version in document["libraries"].items() if version)
    lines = [
        "# BM25 full-text search: vecdb against bm25s and tantivy", "",
        f"Corpus {document['dataset']}: {corpus['texts']:,} texts, {corpus['indexed']:,} of them with terms "
        f"(indexed by every system; {corpus['without_terms']:,} without), {corpus['mean_terms_per_text']:.1f} terms "
        f"per text, {corpus['vocabulary']:,} distinct terms; {corpus['queries']:,} queries of "
        f"{corpus['mean_terms_per_query']:.1f} distinct terms on average. Every system indexes the terms of vecdb's "
        "Analyzer (Unicode words, lowercased, Lucene's 33 English stop words dropped, Snowball English stemmer) "
        f"with BM25 k1 = 1.2, b = 0.75 and Lucene's idf. Measured {document['measured_at']} on "
        f"{machine.get('cpu_model', 'this machine')} ({machine.get('usable_cores', '?')} usable cores); {libraries}. "
        f"Command: `{document['command']}`", "",
    ]
    skipped = [f"Skipped {system}: {reason}." for system, reason in document["skipped"].items()]
    lines += skipped + ([""] if skipped else [])
    rounds = document["params"]["rounds"]
    lines += [f"## One thread, k = {document['params']['k']}, one query per call "
              f"(best of {rounds} round{'s' if rounds > 1 else ''})", ""]
    lines += _table(document) + [""] + _notes(document)
    lines += ["", "## Agreement of the top 10", ""] + _agreement_lines(document)
    if document["nondeterministic"]:
        lines += ["", "Answers that differed between rounds: " + ", ".join(document["nondeterministic"]) + "."]
    lines += _phase_lines(document)
    lines += ["", "## The systems", ""]
    for system in document["systems"]:
        info = document["rows"][system]["info"]
        settings = f" ({', '.join(f'{key}: {value}' for key, value in info.items())})" if info else ""
        lines.append(f"- {system}: {document['descriptions'][system]}{settings}.")
    return "\n".join(lines) + "\n"
