"""``vecdb info PATH``: what a database folder holds, read without loading indexes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import click

from vecdb.database import open as open_database
from vecdb.errors import VecdbError


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(path: Path, as_json: bool) -> None:
    """Collections in the database at PATH: points, dimension, metric, index
    settings, quantization, MRL prefixes, payload and text indexes, and the
    folder's size on disk. Opens the database read-only (safe while a writer runs)
    and loads no index."""
    try:
        with open_database(path, read_only=True) as db:
            collections = db.describe()
            database_id = db._environment.database_id
    except VecdbError as exc:
        raise click.ClickException(str(exc)) from None
    size = sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    if as_json:
        click.echo(json.dumps({"path": str(path), "database_id": database_id, "bytes_on_disk": size,
                               "collections": collections}, indent=2))
        return
    click.echo(f"{path}: {len(collections)} collection(s), {size / 2**20:,.1f} MiB on disk, database id {database_id}")
    for collection in collections:
        click.echo(_describe(collection))


def _describe(collection: Dict[str, Any]) -> str:
    vectors = collection.get("vectors")
    if vectors:
        lines = [f"  {collection['name']}: {collection['count']:,} points, named vectors:"]
        for name, settings in vectors.items():
            lines += _vector_lines(settings, f"    {name}: ", "      ")
    else:
        lines = _vector_lines(collection, f"  {collection['name']}: {collection['count']:,} points, ", "    ")
    if collection["payload_indexes"]:
        fields = ", ".join(f"{field} ({kind})" for field, kind in collection["payload_indexes"].items())
        lines.append(f"    payload indexes: {fields}")
    for field, settings in collection["text_indexes"].items():
        stopwords = len(settings["stopwords"])
        lines.append(f"    text index: {field} (language={settings['language'] or 'none'}, "
                     f"{stopwords} stop word{'' if stopwords == 1 else 's'}, k1={settings['k1']:g}, "
                     f"b={settings['b']:g})")
    if collection.get("sparse"):
        lines.append(f"    sparse vectors: {', '.join(collection['sparse'])}")
    if collection.get("embedding"):
        lines.append(f"    embedding function: {collection['embedding']['name']} (add() and text queries embed with it)")
    return "\n".join(lines)


def _vector_lines(settings: Dict[str, Any], head: str, indent: str) -> List[str]:
    """A vector's settings (a collection's one vector, or one named vector)."""
    index = dict(settings["index"])
    kind = index.pop("kind")
    described = ", ".join(f"{key}={value}" for key, value in index.items())
    lines = [f"{head}dim {settings['dim']}, {settings['metric']}, {kind}" + (f" ({described})" if described else "")]
    if settings["quantization"]:
        pq = settings["quantization"]
        lines.append(f"{indent}PQ: m={pq['m']}, rerank={pq['rerank']}, train_size={pq['train_size']}, opq={pq['opq']}")
    if settings["mrl_dims"]:
        lines.append(f"{indent}MRL prefixes: {settings['mrl_dims']}" + (f", rotate={settings['rotate']}"
                                                                      if settings["rotate"] else ""))
    if settings["default_plan"]:
        lines.append(f"{indent}tuned plan: {settings['default_plan']}")
    return lines
