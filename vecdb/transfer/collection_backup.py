"""One collection backed up into an archive of its own, and a collection
restored from one collection of an archive, each staged in a temporary
folder beside the archive (what the server's collection backups and
restores do in its backups folder), and the staging a killed process left
there.

A collection's archive is an ordinary backup (:mod:`vecdb.transfer.backup`)
of a database holding that collection alone, copied by
:func:`vecdb.transfer.collection_copy.copy_collection`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from vecdb.api import DatabaseAPI
from vecdb.database import Database
from vecdb.database import open as open_database
from vecdb.progress import Progress
from vecdb.transfer.backup import BACKUP_STAGING, PARTIAL_FILE, open_archive, restore_backup
from vecdb.transfer.collection_copy import copy_collection
from vecdb.transfer.staging import remove_abandoned

# Prefixes of the temporary entries made in the archives' folder (always
# with a leading dot, which archive names cannot have).
COLLECTION_STAGING = ".collection-"
RESTORE_STAGING = ".restore-"
UPLOAD_STAGING = ".upload-"  # an archive being received, before it is checked and linked into place
_STAGING = (f"{COLLECTION_STAGING}*", f"{RESTORE_STAGING}*", f"{UPLOAD_STAGING}*", f"{BACKUP_STAGING}*",
            f".*{PARTIAL_FILE}*.tmp")


def remove_leftover_staging(folder: Path) -> None:
    """Remove the staging a process killed mid-backup, mid-restore or
    mid-upload left in the archives' ``folder`` (entries a live process
    still claims, such as a `vecdb backup` writing there, are kept)."""
    if folder.is_dir():
        remove_abandoned(folder, _STAGING)


def backup_collection(database: Database, name: str, archive: Path, progress: Progress) -> Path:
    """Write collection ``name`` of ``database`` (settings and points, as of
    one committed state) to the new archive ``archive`` and return its path;
    the copy's index builds report to ``progress``."""
    staging = Path(tempfile.mkdtemp(prefix=COLLECTION_STAGING, dir=archive.parent))
    try:
        with open_database(staging / "db", progress=progress) as single:
            copy_collection(database, name, single, name)
            return single.backup(archive)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def restore_collection(archive: Path, source: str, database: DatabaseAPI, target: str, progress: Progress) -> None:
    """Create collection ``target`` in ``database`` from collection
    ``source`` of the backup ``archive`` (opened once, without following
    links). The upgrade of an archive of vecdb 0.1 and the index build of
    the unpacked copy report to ``progress``."""
    staging = Path(tempfile.mkdtemp(prefix=RESTORE_STAGING, dir=archive.parent))
    try:
        with open_archive(archive, follow_links=False) as handle:
            restore_backup(handle, staging / "db", progress=progress)
        with open_database(staging / "db", read_only=True, progress=progress) as backup:
            copy_collection(backup, source, database, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
