"""Backups of a cluster database, and their restore.

A cluster's backup is a folder: the catalog (``cluster.json``) and one
ordinary vecdb backup archive per shard (``shard-003.tar``, written by the
shard itself, readable by ``vecdb restore`` on its own). Each shard's
archive holds one committed state of that shard; the shards are backed up
at the same time but not at one instant, so a batch written during the
backup may be in some shards' archives and not others' (pause writes for a
backup of one instant). The folder appears under its final name only when
every archive is complete. The shards write into it directly: it must be
on a file system every shard's node sees (the same machine, or a shared
one).
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Union

from vecdb.cluster.catalog import FILE, ClusterCatalog, read_catalog, write_catalog
from vecdb.errors import BackupExistsError, InvalidArgumentError, NotFoundError
from vecdb.progress import Progress, terminal_bars
from vecdb.transfer.backup import restore_backup
from vecdb.transfer.staging import claimed_new_folder, remove_abandoned

if TYPE_CHECKING:
    from vecdb.cluster.database import ClusterDatabase

STAGING = ".vecdb-cluster-backup-"


def backup_cluster(database: "ClusterDatabase", destination: Union[str, os.PathLike]) -> Path:
    """Back up every shard of ``database`` into a new folder and return its
    path: ``destination`` itself, or ``vecdb-cluster-backup-<UTC time>`` in
    the folder it names (an existing one, or a path ending in a separator).
    An existing path is never overwritten."""
    target = _backup_destination(destination)
    if target.exists() or target.is_symlink():
        raise BackupExistsError(f"{target} already exists; remove it or choose another name")
    if not target.parent.is_dir():
        raise NotFoundError(f"folder {target.parent} does not exist")
    remove_abandoned(target.parent, (f"{STAGING}*",))
    with claimed_new_folder(target.parent, STAGING) as staging:
        try:
            # The shards write one level down: each takes a lock on its
            # archive's folder, and this process holds the staging folder's.
            written = staging / "archives"
            written.mkdir()
            database._on_shards("backup", arguments=lambda shard: (str(written / f"shard-{shard:03d}.tar"),))
            for archive in written.iterdir():
                os.rename(archive, staging / archive.name)
            written.rmdir()
            write_catalog(staging, database._catalog)
            if target.exists():
                raise BackupExistsError(f"{target} already exists; remove it or choose another name")
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def restore_cluster(backup: Union[str, os.PathLike], destination: Union[str, os.PathLike], *,
                    progress: Progress = terminal_bars) -> Path:
    """Restore the cluster backup folder ``backup`` into ``destination`` (a
    missing or empty folder) and return it; open it with
    :func:`vecdb.cluster.open`, which places its shards on the Ray
    cluster's nodes. Every shard's archive is checked as it is restored
    (:func:`vecdb.transfer.backup.restore_backup`); on an error the
    destination is left as it was."""
    source = Path(backup)
    catalog = read_catalog(source)
    if catalog is None:
        raise InvalidArgumentError(f"{source} is not a cluster backup (it has no {FILE})")
    target = Path(destination).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidArgumentError(f"{target} is not empty; restore into a new folder")
    target.mkdir(parents=True, exist_ok=True)
    try:
        for shard, folder in enumerate(catalog.folders):
            restore_backup(source / f"shard-{shard:03d}.tar", target / folder, progress=progress)
        # A new name: the restored cluster's actors must not be taken for the original's.
        write_catalog(target, ClusterCatalog.new(catalog.shards, ["(restored)"]))
    except BaseException:
        for entry in list(target.iterdir()):  # it was empty
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        raise
    return target


def _backup_destination(destination: Union[str, os.PathLike]) -> Path:
    text = os.fspath(destination)
    path = Path(text).absolute()
    names_folder = text.endswith(os.sep) or (os.altsep is not None and text.endswith(os.altsep))
    if names_folder:
        path.mkdir(parents=True, exist_ok=True)
    if not path.is_dir():
        return path
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return path / f"vecdb-cluster-backup-{stamp}"
