"""The Markdown report: one table per dataset, with the machine it was measured on."""

from __future__ import annotations

from typing import Any, Sequence

from bench.report.at_recall import at_recall_lines
from bench.report.groups import Measurement, group_by_dataset

_COLUMNS = (
    "system", "batch", "threads", "param", "recall@k", "QPS", "QPS range (rounds)", "p50 ms",
    "build s", "memory MB", "index MB", "other load",
)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table's lines: the header, the separator, one line per row (cells as ``str``)."""
    return (["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def format_qps(qps: float) -> str:
    """Whole numbers with thousands separators above 100, one decimal below."""
    return f"{qps:,.0f}" if qps >= 100 else f"{qps:.1f}"


def format_qps_range(measurement: Measurement) -> str:
    """``min–max (rounds)`` of QPS across rounds; a dash for rows from before rounds were recorded."""
    if "rounds" not in measurement:
        return "—"
    return (
        f"{format_qps(measurement['qps_min'])}–{format_qps(measurement['qps_max'])} "
        f"({len(measurement['rounds'])})"
    )


def _row(measurement: Measurement) -> list[str]:
    param = "exact" if measurement["param"] is None else f"{measurement['param_name']}={measurement['param']}"
    return [
        measurement["system"],
        str(measurement["batch"]),
        str(measurement["threads"]),
        param,
        f"{measurement['recall']:.4f}",
        format_qps(measurement["qps"]),
        format_qps_range(measurement),
        f"{measurement['latency_ms_p50']:.3f}",
        f"{measurement['build_seconds']:.2f}",
        f"{measurement['memory_peak_mb']:.1f}",
        f"{measurement['index_mb']:.1f}",
        f"{measurement['other_load_cores']:.2f}",
    ]


def _machine_lines(machine: dict[str, Any]) -> list[str]:
    if not machine:
        return []
    libraries = ", ".join(f"{name} {version}" for name, version in machine["libraries"].items() if version)
    features = machine.get("vecdb_cpu_features") or {}
    return [
        f"Machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores, "
        f"{machine['memory_gib']} GiB, {machine['platform']}, Python {machine['python']}; "
        f"last run {machine['date']}.",
        "",
        f"Libraries: {libraries}. vecdb SIMD level: {features.get('simd_level', 'unknown')}.",
        "",
    ]


def _dataset_lines(dataset_info: dict[str, Any]) -> list[str]:
    check = (dataset_info.get("ground_truth") or {}).get("shipped_ground_truth_check")
    if not check:
        return []
    line = f"Shipped ground truth vs vecdb.knn: id agreement {check['id_agreement']:.4f}"
    if "max_distance_difference" in check:
        line += f", max distance difference {check['max_distance_difference']:.2e}"
    return [line + ".", ""]


def markdown_report(document: dict[str, Any], plot_files: dict[tuple[str, str, int], str]) -> str:
    """The whole report; ``plot_files`` maps (dataset, metric, k) to a plot file to link."""
    lines = ["# vecdb benchmark results", ""]
    lines += _machine_lines(document["machine"])
    lines += [
        "Every (system, threads) job ran in interleaved rounds, each in a fresh process. QPS is",
        "the best round's (each round reports its best timed run); QPS range is the slowest and",
        "fastest round, with the number of rounds (— for rows from before rounds were recorded).",
        "Recall, p50 and other load are the best round's; build time is the fastest round's;",
        "memory and index size are medians across rounds. Batch 1 issues queries one at a time.",
        "Memory is the peak resident increase of the system's own process over its loaded data;",
        "index size is what the library reports (serialized size for FAISS, hnswlib and",
        "USearch). Other load is the cores other processes kept busy meanwhile; above 0.1 the",
        "timings are disturbed.",
        "",
    ]
    for (dataset, metric, k), group in group_by_dataset(document["measurements"]).items():
        first = group[0]
        lines += [
            f"## {dataset} ({first['n_base']} x {first['dim']}, {metric}, "
            f"{first['n_queries']} queries, recall@{k})",
            "",
        ]
        lines += _dataset_lines(document["datasets"].get(dataset, {}))
        if (dataset, metric, k) in plot_files:
            lines += [f"![recall vs QPS]({plot_files[dataset, metric, k]})", ""]
        lines += at_recall_lines(group, k)
        lines += markdown_table([column.replace("recall@k", f"recall@{k}") for column in _COLUMNS],
                                [_row(m) for m in group])
        lines.append("")
    return "\n".join(lines)
