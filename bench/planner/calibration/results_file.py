"""The calibration's JSON file: a run's arguments, measurements and fits, and reading the
measurements back so they can be re-fitted without measuring again."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.planner.calibration.funnel import FunnelResults, FunnelRow
from bench.planner.calibration.measure import GraphRow, ScanRow, Timing, TraversalRow

# What a run measured (the rest of the file is derived from these and can be re-fitted).
MEASUREMENT_KEYS = ("machine", "simd_level", "command", "seconds", "scans", "traversals", "graph_rows", "funnel",
                    "builds", "other_load")
_PATH_ARGUMENTS = ("cache_dir", "report")


def to_json(value: Any) -> Any:
    """Dataclasses (and lists of them) as plain JSON values."""
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return value


def write_results(path: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The run's arguments and every result, as JSON."""
    arguments = {key: str(value) if key in _PATH_ARGUMENTS else value for key, value in vars(args).items()
                 if key != "refit"}
    path.write_text(json.dumps({"arguments": arguments, **{k: to_json(v) for k, v in results.items()}}, indent=1))


def _scan(row: dict[str, Any]) -> ScanRow:
    return ScanRow(**dict(row, timing=Timing(**row["timing"]), same_mask=Timing(**row["same_mask"])))


def _graph(row: dict[str, Any]) -> GraphRow:
    return GraphRow(**dict(row, timing=Timing(**row["timing"])))


def _traversal(row: dict[str, Any]) -> TraversalRow:
    return TraversalRow(**dict(row, timing=Timing(**row["timing"])))


def _funnel(funnel: dict[str, Any]) -> FunnelResults:
    return FunnelResults([_graph(r) for r in funnel["full_graph"]], [FunnelRow(**r) for r in funnel["funnel"]],
                         [_scan(r) for r in funnel["prefix_scans"]], [_traversal(r) for r in funnel["traversals"]],
                         {variant: {int(dims): share for dims, share in shares.items()}
                          for variant, shares in funnel["energy"].items()})


def read_results(path: Path) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The arguments and the measurements of the run written to ``path``."""
    document = json.loads(path.read_text())
    arguments = {key: Path(value) if key in _PATH_ARGUMENTS else value for key, value in document["arguments"].items()}
    measured = {key: document[key] for key in MEASUREMENT_KEYS}
    measured.update(scans=[_scan(r) for r in measured["scans"]],
                    traversals=[_traversal(r) for r in measured["traversals"]],
                    graph_rows=[_graph(r) for r in measured["graph_rows"]],
                    funnel=None if measured["funnel"] is None else _funnel(measured["funnel"]))
    return argparse.Namespace(**arguments), measured
