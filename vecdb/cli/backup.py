"""``vecdb backup`` and ``vecdb restore``: a whole database to one archive file and back."""

from __future__ import annotations

from pathlib import Path

import click

from vecdb.transfer.backup import BackupManifest, read_manifest, restore_backup
from vecdb.database import open as open_database
from vecdb.errors import VecdbError


@click.command(short_help="Back up a database (also while it is written) to one archive file.")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path())  # a str: a trailing '/' (a folder) must survive
def backup(path: Path, out: str) -> None:
    """Back up the database at PATH into one archive file OUT.

    OUT is the archive's name (an existing file is never overwritten), or a
    folder to create vecdb-backup-<UTC time>.tar in: an existing one, or
    any path ending in '/' (created if missing). The archive is
    an uncompressed tar holding manifest.json (format version, vecdb
    version, time, collections and counts, checksum) and data.mdb (a
    compacted copy of the LMDB data file). Indexes are left out: a restored
    database rebuilds them when first opened.

    Opens the database read-only, so it runs beside a writer; the archive
    holds one committed state.

    \b
    Examples:
      vecdb backup ./data ./backups/data-monday.tar
      vecdb backup ./data ./backups/
    """
    try:
        with open_database(path, read_only=True) as db:
            archive = db.backup(out)
        manifest = read_manifest(archive)
    except (VecdbError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up {_summary(manifest)} from {path} to {archive} ({archive.stat().st_size / 2**20:,.1f} MiB)")


@click.command(short_help="Restore a backup archive into a folder, checking it first.")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True,
              help="Replace the vecdb database at PATH (no process may have it open).")
def restore(archive: Path, path: Path, force: bool) -> None:
    """Restore the backup ARCHIVE (made by `vecdb backup`) into the folder
    PATH, which must be missing or empty unless --force.

    The archive is checked before anything is put in place: only
    manifest.json and data.mdb, as regular files (no links, absolute paths
    or '..'), a known format version, the manifest's size and checksum, and
    the collections and counts it lists. The data is written to a temporary
    folder beside PATH and renamed into place at the end; a bad archive
    leaves PATH as it was. Indexes are rebuilt when the database is first
    opened.

    \b
    Examples:
      vecdb restore ./backups/data-monday.tar ./data-restored
      vecdb restore ./backups/data-monday.tar ./data --force
    """
    try:
        manifest = restore_backup(archive, path, force=force)
    except (VecdbError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {_summary(manifest)} (backed up {manifest.created} by vecdb {manifest.vecdb_version}) "
               f"to {path}")


def _summary(manifest: BackupManifest) -> str:
    names = ", ".join(f"{c['name']} ({c['count']:,})" for c in manifest.collections)
    return f"{len(manifest.collections)} collection(s), {manifest.points:,} points" + (f": {names}" if names else "")
