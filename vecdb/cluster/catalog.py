"""The cluster's catalog: ``<path>/cluster.json``, the shard map a driver
reads to find every shard where it was (its folder, its node).

Written once when the cluster is created and again only when shards move to
new nodes (a local cluster restarted: every node is new); always whole, to a
temporary file made durable and renamed over the old one, so a driver killed
at any point leaves the old catalog or the new one. Collections and their
settings are not here: each shard's own database holds them, with its points.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from vecdb.checks import positive_int
from vecdb.errors import CorruptDatabaseError, InvalidArgumentError

FILE = "cluster.json"
FORMAT = 1


@dataclass(frozen=True)
class ClusterCatalog:
    """A cluster's name (unique: its actors are named after it), and each
    shard's folder (relative to the cluster's path) and node id."""

    name: str
    folders: Tuple[str, ...]
    nodes: Tuple[str, ...]

    @property
    def shards(self) -> int:
        return len(self.folders)

    @classmethod
    def new(cls, shards: int, nodes: List[str]) -> "ClusterCatalog":
        """Shards spread over ``nodes`` round-robin."""
        shards = positive_int(shards, "shards")
        if not nodes:
            raise InvalidArgumentError("the Ray cluster has no live node to place shards on")
        return cls(name=f"vecdb-{secrets.token_hex(6)}", folders=tuple(f"shard-{i:03d}" for i in range(shards)),
                   nodes=tuple(nodes[i % len(nodes)] for i in range(shards)))

    def moved_to(self, nodes: List[str]) -> "ClusterCatalog":
        """The same shards, placed on ``nodes`` round-robin."""
        return ClusterCatalog(self.name, self.folders, tuple(nodes[i % len(nodes)] for i in range(self.shards)))

    def to_dict(self) -> Dict[str, Any]:
        return {"format": FORMAT, "name": self.name,
                "shards": [{"folder": folder, "node": node} for folder, node in zip(self.folders, self.nodes)]}


def read_catalog(path: Path) -> Optional[ClusterCatalog]:
    """The catalog of the cluster at ``path``, or None if there is none."""
    try:
        text = (path / FILE).read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise CorruptDatabaseError(f"{path / FILE} has format {data.get('format')!r}; this vecdb reads "
                                       f"format {FORMAT}")
        return ClusterCatalog(name=str(data["name"]), folders=tuple(str(entry["folder"]) for entry in data["shards"]),
                              nodes=tuple(str(entry["node"]) for entry in data["shards"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptDatabaseError(f"{path / FILE} is damaged ({exc}); it maps the cluster's shards: restore "
                                   "it from a backup") from None


def write_catalog(path: Path, catalog: ClusterCatalog) -> None:
    """Replace the catalog at ``path`` atomically and durably."""
    path.mkdir(parents=True, exist_ok=True)
    temporary = path / f".{FILE}.{os.getpid()}.tmp"
    with open(temporary, "w") as out:
        json.dump(catalog.to_dict(), out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path / FILE)
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
