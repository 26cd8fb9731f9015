"""Backups: a whole database in one archive file, made while writers keep
writing, and restored without trusting anything the archive says.

Archive format (version 1): an uncompressed POSIX tar holding exactly two
regular files, in this order:

- ``manifest.json``: ``{"format": "vecdb-backup", "format_version": 1,
  "vecdb_version", "storage_format", "database_id"`` (of the database backed
  up; absent before storage format 2) ``, "created"`` (ISO 8601, UTC)
  ``, "data_bytes", "data_sha256", "collections": [{"name", "count", "dim",
  "metric"}, ...]}``;
- ``data.mdb``: a compacted copy of the LMDB environment, taken in one read
  transaction (one committed state).

Index snapshots are left out: they are caches, rebuilt from LMDB when the
restored database is first opened.

Uncompressed because stored vectors are float32 noise to a compressor (gzip
saves little on them) while costing one core tens of seconds per GB, and
because an uncompressed tar states each member's size before its data, so a
restore checks sizes before writing anything. Compress the archive yourself
(zstd) to send it over a network.

Restoring reads the members itself rather than calling tarfile's extract,
accepts only the two names above, as regular files in that order, checks
sizes, the format version and the checksum, and opens the restored copy to
compare its collections with the manifest, all in a temporary folder beside
the destination that is renamed into place only at the end. These are the
lessons of CVE-2024-3829 (Qdrant: symlinks in snapshot archives),
CVE-2025-67818 (Weaviate: ZipSlip in backup restore) and CVE-2024-2221 /
CVE-2024-3584 (path traversal). The checksum detects damage, not tampering:
restore only archives from a source you trust.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import os
import secrets
import shutil
import stat
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Callable, Dict, Iterator, Optional, Tuple, Union

from vecdb._version import __version__
from vecdb._files import exchange_paths, fsync_folder
from vecdb.transfer.staging import claimed_new_file, claimed_new_folder, remove_abandoned
from vecdb.errors import BackupExistsError, CorruptBackupError, InvalidArgumentError, NotFoundError, VecdbError
from vecdb.progress import Progress, silent, terminal_bars
from vecdb.storage.collection_store import describe_collections
from vecdb.storage.environment import Environment, folder_closed_everywhere, open_environment, release_environment
from vecdb.storage.format import FORMAT_VERSION

FORMAT = "vecdb-backup"
BACKUP_FORMAT_VERSION = 1
# Work entries beside an archive being made (see vecdb.transfer.staging): the copy
# of the data file, and the archive before it is complete.
BACKUP_STAGING = ".vecdb-backup-"
PARTIAL_FILE = ".vecdb-partial-"
MANIFEST_NAME = "manifest.json"
DATA_NAME = "data.mdb"
MAX_MANIFEST_BYTES = 1 << 20
_CHUNK_BYTES = 1 << 20
Archive = Union[str, os.PathLike, BinaryIO]


@dataclass(frozen=True)
class BackupManifest:
    """What a backup archive holds: its ``manifest.json``."""

    vecdb_version: str
    storage_format: str
    created: str
    data_bytes: int
    data_sha256: str
    collections: Tuple[Dict[str, Any], ...]
    format_version: int = BACKUP_FORMAT_VERSION
    database_id: Optional[str] = None  # the id of the database backed up (its restored copies share it)

    @property
    def points(self) -> int:
        """Points in all collections together."""
        return sum(collection["count"] for collection in self.collections)

    def to_json(self) -> bytes:
        document = {"format": FORMAT, **asdict(self), "collections": list(self.collections)}
        return json.dumps(document, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, archive: str) -> "BackupManifest":
        """Parse and check a manifest; anything unexpected is CorruptBackupError."""
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptBackupError(f"{archive}: {MANIFEST_NAME} is not valid JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise CorruptBackupError(f"{archive}: {MANIFEST_NAME} is not a vecdb backup manifest")
        version = document.get("format_version")
        if version != BACKUP_FORMAT_VERSION:
            raise CorruptBackupError(f"{archive} is a vecdb backup of format version {version!r}; this vecdb "
                                     f"({__version__}) reads version {BACKUP_FORMAT_VERSION}")
        try:
            manifest = cls(vecdb_version=str(document["vecdb_version"]),
                           storage_format=str(document["storage_format"]), created=str(document["created"]),
                           data_bytes=document["data_bytes"], data_sha256=document["data_sha256"],
                           collections=tuple(document["collections"]), database_id=document.get("database_id"))
        except (KeyError, TypeError) as exc:
            raise CorruptBackupError(f"{archive}: {MANIFEST_NAME} lacks or mangles {exc}") from None
        if manifest.database_id is not None and not _is_hex(manifest.database_id, 32):
            raise CorruptBackupError(f"{archive}: {MANIFEST_NAME} has a malformed database id")
        if not _is_size(manifest.data_bytes) or not _is_sha256(manifest.data_sha256) \
                or not all(_is_collection(collection) for collection in manifest.collections):
            raise CorruptBackupError(f"{archive}: {MANIFEST_NAME} has a malformed size, checksum or collection list")
        return manifest


def create_backup(environment: Environment, destination: Union[str, os.PathLike]) -> Path:
    """Write a backup archive of the environment and return its path (what
    :meth:`vecdb.Database.backup` does). ``destination`` is the archive's
    path, or a folder to create ``vecdb-backup-<UTC time>.tar`` in: one
    that exists, or any path ending in a separator (``"./backups/"``),
    created if missing. An existing archive is never overwritten, not even
    by a backup racing this one. The archive appears only when complete
    (written to a temporary file, fsynced, then linked into place), with
    the mode new files get (0666 less the umask)."""
    destination = _archive_destination(destination)
    if destination.exists() or destination.is_symlink():
        raise BackupExistsError(f"{destination} already exists; remove it or choose another name")
    if not destination.parent.is_dir():
        raise NotFoundError(f"folder {destination.parent} does not exist")
    # The copy is staged beside the archive: same file system, and never in
    # the database folder, which a restore may replace whole. What a killed
    # backup left there goes first.
    remove_abandoned(destination.parent, (f"{BACKUP_STAGING}*", f".*{PARTIAL_FILE}*.tmp"))
    with claimed_new_folder(destination.parent, BACKUP_STAGING) as staging:
        try:
            data = environment.copy_to(staging)
            manifest = _describe_copy(staging, data)
            publish_new_file(destination, lambda handle: _write_archive(handle, manifest, data))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return destination


def publish_new_file(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Create ``path`` holding what ``write`` puts into a file, all at once:
    written to a temporary file beside it (created 0666 less the umask, as
    any tool creates files; tempfile's are 0600), fsynced, then hard-linked
    to ``path``, which fails if ``path`` exists by then (BackupExistsError):
    of two writers racing for one name, one wins and the other's file is
    never seen. The folder is fsynced; nothing temporary is left behind."""
    descriptor, temporary = claimed_new_file(path.parent, f".{path.name}{PARTIAL_FILE}", ".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        link_new(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def link_new(complete: Path, path: Path) -> None:
    """Give the complete, fsynced file ``complete`` the name ``path`` (a
    hard link in the same folder), unless ``path`` exists by then
    (BackupExistsError): unlike a rename, this never replaces what another
    writer put there meanwhile. Then fsync the folder; the caller removes
    ``complete``."""
    try:
        os.link(complete, path, follow_symlinks=False)
    except FileExistsError:
        raise BackupExistsError(f"{path} already exists; remove it or choose another name") from None
    fsync_folder(path.parent)


def new_file(folder: Path, prefix: str, suffix: str) -> Tuple[int, Path]:
    """A new file with a random name in ``folder``, open for writing, with
    the mode every tool gives new files (0666 less the umask)."""
    while True:
        path = folder / f"{prefix}{secrets.token_hex(8)}{suffix}"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666), path
        except FileExistsError:
            continue


def _archive_destination(destination: Union[str, os.PathLike]) -> Path:
    """The archive's path: ``destination`` itself, or a timestamped name in
    the folder it names (one that exists, or any path ending in a separator,
    created here with its parents)."""
    text = os.fspath(destination)
    path = Path(text)
    names_folder = text.endswith(os.sep) or (os.altsep is not None and text.endswith(os.altsep))
    if names_folder and not path.is_dir():
        if path.exists() or path.is_symlink():
            raise InvalidArgumentError(f"{text} ends in a separator but is not a folder")
        path.mkdir(parents=True, exist_ok=True)
    if not path.is_dir():
        return path
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")  # two backups a second apart
    return path / f"vecdb-backup-{stamp}.tar"


def read_manifest(archive: Archive) -> BackupManifest:
    """The manifest of a backup archive (a path, or a file open for reading
    from its start), read and checked without extracting the data (the
    checksum is verified only by :func:`restore_backup`)."""
    with _reading(archive) as (handle, name):
        with _OpenArchive(handle, name) as members:
            return _read_manifest_member(members, name)


def open_archive(path: Union[str, os.PathLike], *, follow_links: bool = True) -> BinaryIO:
    """Open a backup archive for reading, once: the checks and reads that
    follow go through this handle and never look the path up again. It
    must be a regular file; with ``follow_links=False`` a symbolic link is
    refused too (O_NOFOLLOW), so a link swapped in after a check cannot
    redirect the read."""
    flags = os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)  # O_NONBLOCK: a FIFO must not block the open
    try:
        handle = open(path, "rb", opener=lambda name, mode: os.open(name, mode | flags))  # noqa: SIM115
    except FileNotFoundError:
        raise NotFoundError(f"no backup archive at {path}") from None
    except OSError as exc:  # ELOOP for a link, EISDIR, EACCES...
        reason = "it is a symbolic link" if not follow_links and os.path.islink(path) else exc.strerror
        raise InvalidArgumentError(f"cannot open the backup archive {path}: {reason}") from None
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise InvalidArgumentError(f"{path} is not a regular file")
    return handle


def restore_backup(
    archive: Archive,
    destination: Union[str, os.PathLike],
    *,
    force: bool = False,
    max_bytes: Optional[int] = None,
    progress: Progress = terminal_bars,
) -> BackupManifest:
    """Restore a backup archive into the folder ``destination`` and return
    its manifest.

    Args:
        archive: a file written by :meth:`vecdb.Database.backup`: its path
            (opened once, see :func:`open_archive`), or a file open for
            reading, read from its start.
        destination: a missing or empty folder, or with ``force=True`` an
            existing vecdb database folder to replace, which no process may
            have open (StorageLockedError otherwise).
        force: replace an existing database.
        max_bytes: refuse archives whose data file is larger than this.
        progress: where the upgrade of an archive made by vecdb 0.1
            (storage format 1) reports its progress; by default a bar on
            stderr when it is a terminal (see :mod:`vecdb.progress`).

    Raises CorruptBackupError (the archive is damaged, of an unknown format
    version, or holds anything but a manifest and a data file as regular
    files) and InvalidArgumentError (the destination is not empty). On any
    error the destination is left as it was and nothing is left behind.
    The restored folder and file get the modes new ones get (0777 and 0666
    less the umask).
    """
    with _reading(archive) as (handle, name):
        destination = Path(destination).absolute()
        _check_destination(destination, force)
        destination.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{destination.name}.restoring-"
        remove_abandoned(destination.parent, (f"{glob.escape(prefix)}*",))
        with claimed_new_folder(destination.parent, prefix) as staging:
            try:
                manifest = _extract(handle, name, staging, max_bytes)
                _check_restored(staging, manifest, name, progress)
                _move_into_place(staging, destination, force)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    return manifest


# ---- writing ----


@contextlib.contextmanager
def _opened(folder: Path, read_only: bool, progress: Progress) -> Iterator[Environment]:
    environment = open_environment(folder, read_only, progress)
    try:
        yield environment
    finally:
        release_environment(environment)


def _describe_copy(folder: Path, data: Path) -> BackupManifest:
    """The manifest of a copied environment, read from the copy itself so
    that counts and data agree whatever writers did meanwhile."""
    with _opened(folder, read_only=True, progress=silent) as copy:  # read-only: nothing to upgrade
        collections = tuple({"name": c["name"], "count": c["count"], "dim": c["dim"], "metric": c["metric"]}
                            for c in describe_collections(copy))
        database_id = copy.database_id
    return BackupManifest(vecdb_version=__version__, storage_format=FORMAT_VERSION.decode(), database_id=database_id,
                          created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          data_bytes=data.stat().st_size, data_sha256=_sha256_of(data), collections=collections)


def _write_archive(handle: BinaryIO, manifest: BackupManifest, data: Path) -> None:
    manifest_bytes = manifest.to_json()
    with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(_regular_member(MANIFEST_NAME, len(manifest_bytes)), io.BytesIO(manifest_bytes))
        with open(data, "rb") as source:
            archive.addfile(_regular_member(DATA_NAME, manifest.data_bytes), source)


def _regular_member(name: str, size: int) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.type = size, 0o644, tarfile.REGTYPE
    member.mtime = int(datetime.now(timezone.utc).timestamp())
    return member


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- restoring ----


@contextlib.contextmanager
def _reading(archive: Archive) -> Iterator[Tuple[BinaryIO, str]]:
    """The archive as a handle read from its start, and its name for
    messages; a path is opened here (once) and closed afterwards."""
    if not isinstance(archive, (str, os.PathLike)):  # a file object
        archive.seek(0)
        yield archive, str(getattr(archive, "name", "the backup archive"))
        return
    with open_archive(archive) as handle:
        yield handle, str(archive)


def _check_destination(destination: Path, force: bool) -> None:
    """Refuse early what :func:`_move_into_place` would refuse at the end."""
    if destination.is_symlink():
        raise InvalidArgumentError(f"{destination} is a symbolic link; give the folder it points to")
    if not destination.exists():
        return
    if not destination.is_dir():
        raise InvalidArgumentError(f"{destination} exists and is not a folder")
    if any(destination.iterdir()):
        if not force:
            raise InvalidArgumentError(f"{destination} is not empty; restore into a new folder, or pass "
                                       "force=True (--force) to replace the vecdb database there")
        if not (destination / DATA_NAME).is_file():
            raise InvalidArgumentError(f"{destination} is not empty and holds no vecdb database; "
                                       "refusing to replace it even with force")


class _OpenArchive:
    """The members of an archive opened for reading, with tarfile's errors
    (a truncated or foreign file) turned into CorruptBackupError."""

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self._handle = handle
        self._name = name
        self._tar: Optional[tarfile.TarFile] = None

    def __enter__(self) -> tarfile.TarFile:
        try:
            self._tar = tarfile.open(fileobj=self._handle, mode="r:")
        except (tarfile.TarError, EOFError) as exc:
            raise CorruptBackupError(f"{self._name} is not a vecdb backup (not an uncompressed tar "
                                     f"archive: {exc})") from None
        return self._tar

    def __exit__(self, kind: Any, exc: Any, traceback: Any) -> None:
        assert self._tar is not None, "__enter__ opened it"
        self._tar.close()  # leaves the handle open: its owner closes it
        if isinstance(exc, (tarfile.TarError, EOFError)):
            raise CorruptBackupError(f"{self._name} is truncated or damaged ({exc})") from None


def _extract(handle: BinaryIO, archive: str, staging: Path, max_bytes: Optional[int]) -> BackupManifest:
    with _OpenArchive(handle, archive) as members:
        manifest = _read_manifest_member(members, archive)
        _check_room(archive, manifest.data_bytes, staging, max_bytes)
        member = _next_member(members, archive, DATA_NAME)
        if member.size != manifest.data_bytes:
            raise CorruptBackupError(f"{archive}: {DATA_NAME} holds {member.size:,} bytes, the manifest says "
                                     f"{manifest.data_bytes:,}")
        if _copy_member(members, member, staging / DATA_NAME) != manifest.data_sha256:
            raise CorruptBackupError(f"{archive}: {DATA_NAME} does not match the manifest's checksum "
                                     "(the archive is damaged)")
        extra = members.next()
        if extra is not None:
            raise CorruptBackupError(f"{archive}: unexpected member {extra.name!r} after {DATA_NAME}; "
                                     "refusing to restore")
    return manifest


def _read_manifest_member(members: tarfile.TarFile, archive: str) -> BackupManifest:
    member = _next_member(members, archive, MANIFEST_NAME)
    if member.size > MAX_MANIFEST_BYTES:
        raise CorruptBackupError(f"{archive}: {MANIFEST_NAME} is {member.size:,} bytes, more than a manifest's "
                                 f"{MAX_MANIFEST_BYTES:,}")
    return BackupManifest.from_json(_contents(members, member).read(), archive)


def _next_member(members: tarfile.TarFile, archive: str, expected: str) -> tarfile.TarInfo:
    """The next member, which must be the regular file ``expected``."""
    member = members.next()
    if member is None:
        raise CorruptBackupError(f"{archive} ends before {expected} (truncated, or not a vecdb backup)")
    problem = _unsafe(member)
    if problem:
        raise CorruptBackupError(f"{archive}: member {member.name!r} {problem}; refusing to restore")
    if member.name != expected:
        raise CorruptBackupError(f"{archive}: unexpected member {member.name!r} where {expected} should be "
                                 f"(a vecdb backup holds {MANIFEST_NAME} then {DATA_NAME}); refusing to restore")
    return member


def _contents(members: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    """A member's bytes (it is a regular file: _next_member refused anything else)."""
    source = members.extractfile(member)
    assert source is not None, f"{member.name} is a regular file"
    return source


def _unsafe(member: tarfile.TarInfo) -> Optional[str]:
    """Why extracting the member could write outside the destination or
    create something other than a plain file; None if it is a regular file
    with a relative path."""
    path = PurePosixPath(member.name)
    if path.is_absolute():
        return "has an absolute path"
    if ".." in path.parts or "\\" in member.name:
        return "climbs out of the destination ('..' or a backslash in its path)"
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.isdir():
        return "is a directory"
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return f"is not a regular file (tar type {member.type!r}: a device, FIFO, sparse or other special file)"
    return None


def _check_room(archive: str, size: int, staging: Path, max_bytes: Optional[int]) -> None:
    if max_bytes is not None and size > max_bytes:
        raise CorruptBackupError(f"{archive}: its data file is {size:,} bytes, over the limit of {max_bytes:,}")
    free = shutil.disk_usage(staging).free
    if size > free:
        raise VecdbError(f"restoring {archive} needs {size:,} bytes; {staging.parent} has {free:,} free")


def _copy_member(members: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    """Write the member's bytes to a new file (never through a link) and
    return their SHA-256."""
    digest = hashlib.sha256()
    source = _contents(members, member)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    with os.fdopen(descriptor, "wb") as out:
        for chunk in iter(lambda: source.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _check_restored(staging: Path, manifest: BackupManifest, archive: str, progress: Progress) -> None:
    """Open the restored copy: it must be a vecdb database holding what the
    manifest lists."""
    try:
        # An archive in an older storage format is upgraded here, before it is put in place.
        with _opened(staging, read_only=manifest.storage_format == FORMAT_VERSION.decode(),
                     progress=progress) as restored:
            found = [(c["name"], c["count"]) for c in describe_collections(restored)]
    except VecdbError as exc:
        raise CorruptBackupError(f"{archive}: {DATA_NAME} is not a usable vecdb database ({exc})") from None
    expected = [(c["name"], c["count"]) for c in manifest.collections]
    if found != expected:
        raise CorruptBackupError(f"{archive}: the data holds collections {found}, the manifest lists {expected}")


def _move_into_place(staging: Path, destination: Path, force: bool) -> None:
    _check_destination(destination, force)
    if destination.exists() and any(destination.iterdir()):
        with folder_closed_everywhere(destination, "restoring a backup over it"):
            # In one step where the system can: in two, the name is missing
            # in between, and a process opening it for writing there created
            # an empty database in its place (the restore then failed, the
            # previous database left in a hidden folder).
            if exchange_paths(staging, destination):
                replaced = staging
            else:
                replaced = Path(tempfile.mkdtemp(prefix=f".{destination.name}.replaced-", dir=destination.parent))
                os.replace(destination, replaced)
                try:
                    os.replace(staging, destination)
                except OSError as exc:
                    raise VecdbError(f"restoring into {destination} failed: another process created it while the "
                                     f"backup was moved in ({exc.strerror}); the database it held is in {replaced}"
                                     ) from None
            fsync_folder(destination.parent)
        shutil.rmtree(replaced, ignore_errors=True)
    else:
        # A missing destination, or an empty folder (which rename replaces).
        os.replace(staging, destination)
        fsync_folder(destination.parent)


def _is_size(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_sha256(value: Any) -> bool:
    return _is_hex(value, 64)


def _is_hex(value: Any, digits: int) -> bool:
    return isinstance(value, str) and len(value) == digits and all(c in "0123456789abcdef" for c in value)


def _is_collection(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("name"), str) and _is_size(value.get("count"))
