"""The calls of a remote database's methods (see
:class:`~vecdb.client.messages.Call`), shared by :class:`vecdb.RemoteDatabase`
and :class:`vecdb.AsyncRemoteDatabase`: each sends them with its own
transport. A collection's description (``create_collection``,
``get_collection``) is the result; each database turns it into its own
kind of handle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

from vecdb.client import arguments
from vecdb.client.messages import Call, segment
from vecdb.config import PQ, IndexSpec, VectorSpec, check_collection_name
from vecdb.errors import BackupExistsError, InvalidArgumentError, ServerError
from vecdb.text_in import embedding_config, embedding_dim

if TYPE_CHECKING:
    from vecdb.embeddings import EmbeddingFunction


def create_collection(name: str, dim: Optional[int], metric: str, *, index: Optional[IndexSpec],
                      quantization: Optional[PQ], mrl_dims: Optional[Sequence[int]], rotate: Optional[str],
                      sparse: Optional[Sequence[str]], vectors: Optional[Dict[str, VectorSpec]],
                      embedding: Optional["EmbeddingFunction"], exist_ok: bool) -> Call[Dict[str, Any]]:
    """The collection's embedding function runs on the client's side: the
    server is sent its config (and dimension) to keep for every client."""
    if embedding is not None and vectors is not None:
        raise InvalidArgumentError("a collection with named vectors takes no embedding function (yet): "
                                   "embed its vectors yourself")
    return Call("POST", "/v1/collections", {
        "name": name, **arguments.vector_settings(embedding_dim(dim, embedding), metric, index, quantization,
                                                  mrl_dims, rotate),
        "vectors": arguments.vector_specs(vectors), "sparse": arguments.sizes(sparse),
        "embedding": None if embedding is None else embedding_config(embedding), "exist_ok": exist_ok},
        _description)


def get_collection(name: str) -> Call[Dict[str, Any]]:
    return Call("GET", _collection_path(name), None, _description)


def describe() -> Call[List[Dict[str, Any]]]:
    return Call("GET", "/v1/collections", None, lambda answer: answer["collections"])


def list_collections() -> Call[List[str]]:
    return Call("GET", "/v1/collections", None,
                lambda answer: sorted(entry["name"] for entry in answer["collections"]))


def drop_collection(name: str) -> Call[None]:
    return Call("DELETE", _collection_path(name), None, lambda answer: None)


def compact() -> Call[int]:
    return Call("POST", "/v1/compact", None, lambda answer: answer["bytes_freed"])


def _collection_path(name: str) -> str:
    return f"/v1/collections/{segment(check_collection_name(name))}"


def _description(answer: Any) -> Dict[str, Any]:
    return answer


# ---- a backup: made on the server, then downloaded ----

def backup_destination(destination: Union[str, os.PathLike]) -> Path:
    """Where ``backup(destination)`` downloads to: a new file, or a folder
    (an existing one, or a path ending in a separator, created if missing)
    to put the archive in under the server's name for it. Checked before
    the server makes the archive."""
    text = os.fspath(destination)
    target = Path(text)
    if text.endswith(os.sep) or (os.altsep is not None and text.endswith(os.altsep)):
        target.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_dir():
        raise BackupExistsError(f"{target} already exists; remove it or choose another name")
    return target


def create_backup() -> Call[str]:
    """The server backs up its database; the result is the archive's name
    (a plain file name, or refused: the client never writes where the
    server says)."""
    return Call("POST", "/v1/backups", None, _archive_name)


def _archive_name(answer: Any) -> str:
    name = answer["name"]
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise ServerError(f"the server named its backup {name!r}, not a plain file name; not downloading it")
    return name


def archive_path(name: str) -> str:
    """The URL path the archive ``name`` downloads from."""
    return f"/v1/backups/{segment(name)}"
