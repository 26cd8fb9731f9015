"""Backups while serving: of the whole database or one collection, listed,
downloaded, uploaded, deleted, and a collection restored from one.

Archives live in ``<database folder>/backups/`` and nowhere else: a name
is a plain file name (checked against a pattern, never joined as a path),
symbolic links there are refused, downloads open the file without
following links, and restores unpack into a temporary folder inside it
(:mod:`vecdb.transfer.collection_backup` does the work;
:func:`vecdb.transfer.backup.restore_backup` refuses anything in an archive
but its two regular files). The routes parse, check and answer. The lessons of Qdrant's snapshot path traversals
(CVE-2024-2221, CVE-2024-3584) and symlinks (CVE-2024-3829) and Weaviate's
ZipSlip (CVE-2025-67818); tests/server/test_server_backups.py tries each.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from vecdb.transfer.backup import link_new, new_file, open_archive, read_manifest
from vecdb.transfer import collection_backup
from vecdb.config import check_collection_name
from vecdb.database import Database
from vecdb.errors import BackupExistsError, InvalidArgumentError, NotFoundError, RequestTooLargeError
from vecdb.server import models
from vecdb.server.bodies import documented, read_body, respond
from vecdb.server.openapi import answers
from vecdb.server.state import ServerState, progress_log, require_write, state_of

reads = APIRouter(tags=["backups"])
writes = APIRouter(tags=["backups"], dependencies=[Depends(require_write)])

# Matched whole (fullmatch): with match(), "$" would also accept a name
# ending in a newline, a file the listing never shows.
_NAME = re.compile(models.BACKUP_NAME_PATTERN)
_CHUNK = 1 << 20
UPLOAD_PREFIX = "/v1/backups/"  # PUT here streams an archive: its own size limit (guards.BodySizeMiddleware)
FOLDER = "backups"  # in the database folder


def backups_folder(state: ServerState) -> Path:
    folder = state.database.path / FOLDER
    folder.mkdir(exist_ok=True)  # 0777 less the umask, as any tool makes folders
    return folder.resolve()


def archive_path(state: ServerState, name: str, must_exist: bool = True) -> Path:
    """The archive called ``name`` in the backups folder, or an error: the
    name is matched against a pattern, never interpreted as a path."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):  # no '/', no leading '.': a file in the folder
        raise InvalidArgumentError(f"invalid backup name {name!r}: a file name of letters, digits, '_', '-' and "
                                   "'.' ending in .tar, not starting with '.' (no folders)")
    path = backups_folder(state) / name
    if path.is_symlink():
        raise InvalidArgumentError(f"backup {name!r} is a symbolic link; vecdb never follows links there")
    if must_exist and not path.is_file():
        raise NotFoundError(f"no backup called {name!r} (GET /v1/backups lists them)")
    return path


def _check_embedded(state: ServerState, what: str) -> None:
    """Backups here are single archive files of an embedded database; a
    cluster's backup is a folder of archives, one per shard."""
    if not isinstance(state.database, Database):
        raise InvalidArgumentError(f"{what} of a cluster database are not served over HTTP: use "
                                   "ClusterDatabase.backup() on a driver (a folder with one archive per shard; "
                                   "vecdb.cluster.restore() restores it)")


def _describe(path: Path) -> Dict[str, Any]:
    with open_archive(path, follow_links=False) as handle:
        manifest = read_manifest(handle)
        size = os.fstat(handle.fileno()).st_size
    return {"name": path.name, "bytes": size, "created": manifest.created, "collections": list(manifest.collections)}


@writes.post("/v1/backups", summary="Back up the whole database (consistent, while serving)",
             **answers(models.BackupInfo, status=201))
async def create_backup(request: Request) -> Response:
    state = state_of(request)
    _check_embedded(state, "backups")
    path = await state.read(state.database.backup, backups_folder(state))
    return respond(request, await state.read(_describe, path), status=201)


@writes.post("/v1/collections/{name}/backup", summary="Back up one collection",
             **answers(models.BackupInfo, 404, status=201))
async def backup_collection(name: str, request: Request) -> Response:
    state = state_of(request)
    name = check_collection_name(name)
    _check_embedded(state, "collection backups")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    archive = archive_path(state, f"{name}-{stamp}.tar", must_exist=False)
    path = await state.read(collection_backup.backup_collection, state.database, name, archive, progress_log)
    return respond(request, await state.read(_describe, path), status=201)


@reads.get("/v1/backups", summary="Backups on the server, newest last", **answers(models.BackupList))
async def list_backups(request: Request) -> Response:
    state = state_of(request)

    def listing() -> List[Dict[str, Any]]:
        found = []
        with os.scandir(backups_folder(state)) as entries:
            for entry in entries:
                if _NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:  # deleted meanwhile
                        continue
                    found.append((info.st_mtime, entry.name, info.st_size))
        return [{"name": name, "bytes": size} for _, name, size in sorted(found)]

    return respond(request, {"backups": await state.read(listing)})


@reads.get("/v1/backups/{name}", summary="Download a backup archive", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "the archive"}, 404: answers(models.ErrorBody, 404)["responses"][404]})
async def download_backup(name: str, request: Request) -> Response:
    path = archive_path(state_of(request), name)
    handle = open_archive(path, follow_links=False)  # a link swapped in after the check above is still refused
    size = os.fstat(handle.fileno()).st_size

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/x-tar",
                             headers={"content-length": str(size),
                                      "content-disposition": f'attachment; filename="{path.name}"'})


@writes.put("/v1/backups/{name}", summary="Upload a backup archive (checked, never unpacked here)",
            openapi_extra={"requestBody": {"required": True, "content": {"application/x-tar": {
                "schema": {"type": "string", "format": "binary"}}}}},
            **answers(models.BackupInfo, 400, 409, status=201))
async def upload_backup(name: str, request: Request) -> Response:
    state = state_of(request)
    path = archive_path(state, name, must_exist=False)
    if path.exists():  # refused before the body is read; link_new decides races
        raise BackupExistsError(f"a backup called {name!r} exists; delete it first or choose another name")
    limit = state.settings.max_upload_bytes
    fd, temporary = new_file(path.parent, collection_backup.UPLOAD_STAGING, ".tmp")
    try:
        received = 0
        with os.fdopen(fd, "wb") as handle:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise RequestTooLargeError(f"upload exceeds this server's max_upload_bytes={limit:,} "
                                               "(vecdb serve --max-upload-bytes)")
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        await state.read(read_manifest, temporary)  # a vecdb backup, or CorruptBackupError
        try:
            await state.read(link_new, temporary, path)
        except BackupExistsError:
            raise BackupExistsError(f"a backup called {name!r} was uploaded meanwhile; delete it first or choose "
                                    "another name") from None
    finally:
        temporary.unlink(missing_ok=True)
    return respond(request, await state.read(_describe, path), status=201)


@writes.delete("/v1/backups/{name}", summary="Delete a backup archive", **answers(models.BackupDeleted, 404))
async def delete_backup(name: str, request: Request) -> Response:
    try:
        archive_path(state_of(request), name).unlink()
    except FileNotFoundError:  # deleted meanwhile
        raise NotFoundError(f"no backup called {name!r} (GET /v1/backups lists them)") from None
    return respond(request, {"deleted": name})


@writes.post("/v1/collections/{name}/restore", summary="Create a collection from one in a backup archive on the server",
             openapi_extra=documented(models.Restore, {"backup": models.EXAMPLE_ARCHIVE, "source": "docs"}),
             **answers(models.Restored, 404, 409, status=201))
async def restore_collection(name: str, request: Request) -> Response:
    body = await read_body(request, models.Restore)
    state = state_of(request)
    target = check_collection_name(name)
    archive = archive_path(state, body["backup"])
    source = check_collection_name(body["source"] if body["source"] is not None else target)
    await state.write(collection_backup.restore_collection, archive, source, state.database, target, progress_log)
    return respond(request, {"restored": target, "from": archive.name, "source": source,
                             "count": await state.read_on(target, "count")}, status=201)
