"""The hybrid benchmark's Markdown report, and the part of it printed at the end of a run."""

from __future__ import annotations

from typing import Any

from bench.report.table import format_qps, markdown_table

AGREEMENT_LABEL = ("agreement with the exact dense top 10 (not a relevance judgement: it favours dense by "
                   "construction)")
_COLUMNS = ("mode", "mean µs", "p50 µs", "p99 µs", "QPS", "QPS range (rounds)", "/ dense (rounds' median)",
            "/ dense range", "goal", "hits/query", "agreement*")
_SPLIT_COLUMNS = ("hybrid", "call µs", "dense branch", "text branch", "of which analysis", "fusion", "rest",
                  "branches as 2 calls", "hybrid − 2 calls")


def _goal_cell(document: dict[str, Any], mode: str) -> str:
    row = document["rows"][mode]
    if row["role"] != "hybrid":
        return ""
    return "met" if row["ratio_median"] <= document["params"]["goal"] else "missed"


def _table(document: dict[str, Any]) -> list[str]:
    lines = []
    for mode in document["modes"]:
        row = document["rows"][mode]
        lines.append([
            mode, f"{row['mean_us']:.1f}", f"{row['p50_us']:.1f}", f"{row['p99_us']:.1f}", format_qps(row["qps"]),
            f"{format_qps(row['qps_min'])}–{format_qps(row['qps_max'])} ({len(row['rounds'])})",
            f"{row['ratio_median']:.2f}x", f"{row['ratio_min']:.2f}–{row['ratio_max']:.2f}x",
            _goal_cell(document, mode), f"{row['hits_mean']:.2f}", f"{row['agreement_with_exact_dense']:.3f}",
        ])
    return markdown_table(_COLUMNS, lines)


def _split_table(document: dict[str, Any]) -> list[str]:
    lines = []
    for mode, measured in document["split"].items():
        parts = document["rows"][mode].get("parts")
        lines.append([
            mode, f"{measured['call']:.1f}", f"{measured['dense_branch']:.1f}", f"{measured['text_branch']:.1f}",
            f"{measured['text_analysis']:.1f}", f"{measured['fusion']:.1f}", f"{measured['rest']:.1f}",
            "-" if parts is None else f"{parts['sum_us_median']:.1f} ({' + '.join(parts['modes'])})",
            "-" if parts is None else f"{parts['excess_us_median']:+.1f}",
        ])
    return markdown_table(_SPLIT_COLUMNS, lines)


def _goal_lines(document: dict[str, Any]) -> list[str]:
    goal = document["params"]["goal"]
    lines = []
    for mode in document["modes"]:
        row = document["rows"][mode]
        if row["role"] == "hybrid":
            lines.append(f"- {mode}: {row['ratio_median']:.2f}x dense's mean latency (rounds: "
                         f"{', '.join(f'{r:.2f}' for r in row['ratios'])}; best round against best round "
                         f"{row['ratio_of_best']:.2f}x): goal <= {goal:g}x {_goal_cell(document, mode)}")
    return lines


def _problem_lines(document: dict[str, Any]) -> list[str]:
    return [f"- FAILED: {problem}" for problem in document["problems"]]


def console_report(document: dict[str, Any]) -> str:
    lines = _table(document) + ["", f"* {AGREEMENT_LABEL}", ""]
    if document["split"]:
        lines += _split_table(document) + [""]
    lines += _goal_lines(document) + [f"- other load: {document['other_load_cores']:.2f} cores (median over rounds)"]
    lines += _problem_lines(document)
    return "\n".join(lines) + "\n"


def _notes(document: dict[str, Any]) -> list[str]:
    params = document["params"]
    return [
        f"- Every mode is one `Collection.search` call per query on one thread (OpenMP/BLAS pools pinned to 1), "
        f"the query vector passed as a 1-D float32 row, k = {params['k']}. Each round is a fresh process that opens "
        f"the same database (the graph from its snapshot), answers every query once per mode (untimed warm-up, "
        f"whose answers are checked), then {params['repeats']} repetitions in which every mode makes one run of "
        f"whole passes over the {document['data']['queries']:,} queries lasting at least {params['min_seconds']:g} "
        "s, the modes' order reversed at each repetition (and alternating between rounds), so a slow phase of the "
        "machine falls on every mode alike. A mode's round is its fastest run (noise only slows a run down).",
        "- mean, p50, p99 and QPS: the best round's (highest QPS); \"QPS range\" spans every round. \"/ dense\": "
        "the mode's mean latency over dense's mean latency *in the same round*, median over rounds (the goal uses "
        "it), with its range: paired within a round, it is steadier than comparing best rounds.",
        f"- agreement*: {AGREEMENT_LABEL}. The mean share of the exact dense top {params['k']} "
        f"({document['data']['truth']}) found by each mode. A sanity number only: a text or hybrid search is meant "
        "to find other points, and nothing here says which answers are more relevant.",
        "- Answers checked in every round: at most k hits, distinct ids that are points of the collection, the "
        "point's own payload when asked for, and every hybrid hit found by one of its branches run alone (dense "
        "and text with k = the hybrid's candidates). hits/query below k: text queries matching fewer than k "
        "points (or none: only stop words).",
    ]


def _split_notes(document: dict[str, Any]) -> list[str]:
    if not document["split"]:
        reason = document.get("split_unavailable") or "no instrumented passes were asked for (--split-passes 0)"
        return ["", f"Hybrid split not measured: {reason}."]
    return [
        "",
        "- call µs and its steps: a separate instrumented pass after the timed runs (best round by call time), "
        "timers around vecdb's dense branch (`Searcher.dense_branch`: the graph search), text branch "
        "(what the caller spends on it: `TextIndex.start_search`, the query's analysis and the hand-off to the "
        "native background thread that searches the inverted index meanwhile, then the wait for its result) and "
        "fusion (`fuse`); \"rest\" "
        "is the call minus those three: argument checks, reading one consistent state, turning labels into `Hit`s, "
        "the Python around it. The timers add a little to each call, and the pass runs apart from the interleaved "
        "timed runs: read each step against its own row's call µs, not against the table above.",
        "- branches as 2 calls: the modes running the hybrid's two branches as searches of their own (dense and "
        "text with k = its candidates), their mean latencies summed; hybrid − 2 calls is the hybrid's mean minus "
        "that sum (medians over rounds, each round paired). Two calls pay the per-call costs twice, so fusion and "
        "the hybrid path cost at least this much.",
    ]


def markdown(document: dict[str, Any]) -> str:
    data, machine, build = document["data"], document["machine"], document["build"]
    phases = ", ".join(f"{name.removesuffix('_seconds').replace('_', ' ')} {seconds:.2f} s"
                       for name, seconds in build["phases"].items())
    lines = [
        "# Hybrid search latency against dense-only search", "",
        f"Dataset {data['name']}: {data['points']:,} points of {data['dim']} dimensions with their texts, "
        f"{data['queries']:,} queries (vector and text). One embedded collection (`vecdb.open`, cosine, the default "
        f"HNSW), every point upserted with payload `{{\"body\": text}}`, `create_text_index(\"body\")`, "
        f"`wait_indexed()`. Build (untimed for the searches, one process): {build['build_seconds']:.1f} s "
        f"({phases}). Measured {document['measured_at']} on {machine.get('cpu_model', 'this machine')} "
        f"({machine.get('usable_cores', '?')} usable cores), vecdb {document['vecdb_version']}; other load "
        f"{document['other_load_cores']:.2f} cores (median over rounds; per round: "
        f"{', '.join(f'{r:.2f}' for r in document['other_load_by_round'])}). Command: `{document['command']}`", "",
        f"Goal: a hybrid search's latency at most {document['params']['goal']:g}x the dense search's "
        "(same collection, same queries, one thread, one query per call).", "",
        f"## One thread, k = {document['params']['k']}, one query per call "
        f"(best of {document['params']['rounds']} rounds; ratios paired within rounds)", "",
    ]
    lines += _table(document) + ["", *_notes(document), "", "## The goal", "", *_goal_lines(document)]
    lines += _problem_lines(document)
    lines += ["", "## Where a hybrid's time goes (µs per call)", ""]
    if document["split"]:
        lines += _split_table(document)
    lines += _split_notes(document)
    lines += ["", "## The modes", ""]
    lines += [f"- {mode}: `{document['rows'][mode]['call']}`" for mode in document["modes"]]
    return "\n".join(lines) + "\n"
