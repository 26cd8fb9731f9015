"""Regenerating the Markdown table and recall-vs-QPS plots from a results JSON file."""

from __future__ import annotations

from pathlib import Path

from bench.report.groups import file_stem, group_by_dataset
from bench.report.plot import plot_recall_qps
from bench.report.table import markdown_report
from bench.results import load_results


def write_report(results_path: Path, output_dir: Path) -> list[Path]:
    """Write ``results.md`` and one PNG per (dataset, metric, k) into ``output_dir``; return their paths."""
    document = load_results(results_path)
    output_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plot_files: dict[tuple[str, str, int], str] = {}
    for (dataset, metric, k), group in group_by_dataset(document["measurements"]).items():
        plot_path = output_dir / f"{file_stem(dataset, metric, k)}.png"
        plot_recall_qps(group, f"{dataset} ({metric}): recall@{k} vs QPS", plot_path)
        plot_files[dataset, metric, k] = plot_path.name
        written.append(plot_path)
    table_path = output_dir / "results.md"
    table_path.write_text(markdown_report(document, plot_files))
    return [table_path, *written]


__all__ = ["write_report"]
