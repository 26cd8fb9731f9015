"""The results JSON file: machine description, datasets, and measurements.

Runs into the same file merge: a measurement replaces an earlier one with the same key
(dataset, metric, k, system, param, batch, threads), so re-running one system keeps the
others. The machine description is the latest run's.

Version 2 rows combine several interleaved rounds of a job and carry the per-round
figures (see ``bench.rounds``); version 1 rows are single runs without them. Both read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.measurement import KEY_FIELDS

FORMAT = "vecdb-bench-results"
VERSION = 2


def empty_results() -> dict[str, Any]:
    """A results document with nothing measured yet."""
    return {"format": FORMAT, "version": VERSION, "machine": {}, "datasets": {}, "measurements": []}


def load_results(path: Path) -> dict[str, Any]:
    """Read a results file, refusing other formats and newer versions."""
    document = json.loads(path.read_text())
    if document.get("format") != FORMAT or document.get("version", 0) > VERSION:
        raise ValueError(
            f"{path}: not a {FORMAT} file of version <= {VERSION} "
            f"(format {document.get('format')!r}, version {document.get('version')!r})"
        )
    return document


def load_or_empty(path: Path) -> dict[str, Any]:
    """The results in ``path``, or an empty document if it does not exist yet."""
    return load_results(path) if path.is_file() else empty_results()


def measurement_key(measurement: dict[str, Any]) -> tuple:
    """The fields that identify a measurement."""
    return tuple(measurement[field] for field in KEY_FIELDS)


def merge_measurements(document: dict[str, Any], measurements: list[dict[str, Any]]) -> None:
    """Add ``measurements`` to ``document``, replacing any with the same key."""
    replaced = {measurement_key(m) for m in measurements}
    kept = [m for m in document["measurements"] if measurement_key(m) not in replaced]
    document["measurements"] = kept + measurements


def save_results(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` through a temporary file, so a crash leaves the old file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Rows of older versions are a subset of the current fields, so a merged file is current.
    current = document | {"version": VERSION}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(current, indent=1, default=str))
    os.replace(partial, path)
