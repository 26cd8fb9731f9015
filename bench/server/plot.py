"""The server benchmark's plot: QPS and p99 latency against concurrent clients, one line per
system, encoding and HTTP client (matplotlib's object-oriented Figure, no pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from bench.optional import MATPLOTLIB, require
from bench.report.axes import log_x_axis
from bench.server.analysis import client_counts

_STYLES = {("vecdb", "json"): ("C0", "o"), ("vecdb", "msgpack"): ("C2", "s"), ("vecdb x2", "json"): ("C1", "o"),
           ("vecdb x2", "msgpack"): ("C4", "s"), ("chroma", "json"): ("C3", "^")}
_LINE_STYLES = {"raw": "-", "httpx": "--"}


def plot_load(best: List[Dict[str, Any]], title: str, path: Path) -> None:
    """QPS (left) and p99 latency (right) by client count; colour by
    system and encoding, solid lines through the raw HTTP client, dashed through httpx."""
    require(MATPLOTLIB, "plotting results")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 5.5), layout="constrained")
    speed, tail = figure.subplots(1, 2)
    lines = sorted({(row["system"], row["encoding"], row["http_client"]) for row in best})
    for system, encoding, http_client in lines:
        rows = sorted((row for row in best if (row["system"], row["encoding"], row["http_client"])
                       == (system, encoding, http_client)), key=lambda row: row["clients"])
        color, marker = _STYLES.get((system, encoding), (None, "o"))
        style = {"marker": marker, "color": color, "linestyle": _LINE_STYLES.get(http_client, ":"),
                 "label": f"{system} {encoding} via {http_client}"}
        clients = [row["clients"] for row in rows]
        speed.plot(clients, [row["qps"] for row in rows], **style)
        tail.plot(clients, [row["latency_ms_p99"] for row in rows], **style)
    counts = client_counts(best)
    for axis, label in ((speed, "queries per second (k=10, one query per request)"), (tail, "p99 latency (ms)")):
        log_x_axis(axis, counts, [str(count) for count in counts], "concurrent clients", label)
    tail.set_yscale("log")
    speed.set_title("throughput")
    tail.set_title("tail latency")
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
