"""The work one worker process does, passed from the runner as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from bench.datasets import DatasetSpec
from bench.systems import GraphSettings


@dataclass(frozen=True)
class WorkerJob:
    """Build ``system`` on one dataset with ``threads`` and time every sweep value and batch size."""

    dataset: DatasetSpec
    system: str
    threads: int
    batches: tuple[int, ...]
    k: int
    ground_truth_path: str
    graph_settings: GraphSettings
    min_seconds: float
    repeats: int
    output_path: str

    def to_json(self) -> str:
        """Serialize for the worker's command line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "WorkerJob":
        """Inverse of to_json."""
        fields = json.loads(text)
        graph = fields.pop("graph_settings")
        return cls(
            dataset=DatasetSpec(**fields.pop("dataset")),
            graph_settings=GraphSettings(**{
                name: tuple(value) if isinstance(value, list) else value for name, value in graph.items()
            }),
            batches=tuple(fields.pop("batches")),
            **fields,
        )
