"""Checks of the LMDB data file (``data.mdb``) that keep a damaged file from
crashing the process.

LMDB trusts its file: it keeps no checksums, maps the file and follows page
numbers wherever they lead. A file cut short kills the process with SIGBUS
when a page past its end is touched; a damaged page trips an assertion
(``abort()``) or sends LMDB through wild memory. So vecdb reads the file
itself first (:func:`vecdb._core.check_lmdb_file`, the native reader of
LMDB's layout) and refuses it with :class:`~vecdb.errors.CorruptDatabaseError`:

- before ``lmdb.open``: both meta pages (flags, magic, version, page size,
  the free-list and main database records) and the file's size against the
  newest meta's last used page; a writer, which no other writer can race,
  also walks the main database and upgrades a file in an older format
  (:func:`prepare_data_file`);
- right after, inside a read transaction, so a writer in another process
  cannot reuse pages under the walk: every branch and leaf page of every
  tree (:func:`check_pages`; see lmdb_file.h for the list). It reads each
  B-tree page once (about 0.2 ms per MB of B-tree pages from the page
  cache) and no overflow page; a value's own bytes are checked by their
  checksums when read (:mod:`vecdb.storage.codec`).

``vecdb check`` runs the full level too: every overflow page's header and
that each page is used or free exactly once.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, Optional

from vecdb import _core
from vecdb.errors import CorruptDatabaseError
from vecdb.progress import Progress
from vecdb.storage.format import FORMAT_KEY, OLD_FORMATS
from vecdb.storage.upgrade import STAGING, upgrade_data_file

DATA_FILE = "data.mdb"
_RETRIES = 5  # snapshots a busy writer may retire while a walk starts


def prepare_data_file(folder: Path, writable: bool, progress: Progress) -> Optional[int]:
    """Refuse a data file LMDB could not map safely (cut short, meta pages
    damaged; for a writer, a damaged main database too) and, for a writer,
    upgrade a file in an older format (reporting to ``progress``). A missing file is a new database: nothing to
    check. A writer calls this holding the writer lock. After an upgrade,
    returns the descriptor holding other LMDB users out (see
    :func:`~vecdb.storage.folder_locks.swap_in_if_alone`), else None."""
    data = folder / DATA_FILE
    if writable:  # an upgrade killed after its rename leaves its staging folder behind
        shutil.rmtree(folder / STAGING, ignore_errors=True)
    if not data.exists():
        return None
    report = _core.check_lmdb_file(str(data), "main" if writable else "meta")
    refuse_if_damaged(data, report)
    stored_format = report["main_values"].get(FORMAT_KEY)
    if writable and stored_format in OLD_FORMATS:
        # The upgrade reads every tree: walk them first (no other writer can
        # race this one, and the upgrade refuses to run beside readers).
        refuse_if_damaged(data, _core.check_lmdb_file(str(data), "structure"))
        return upgrade_data_file(folder, stored_format, progress)
    return None


def check_pages(folder: Path, environment: Any) -> None:
    """Walk every B-tree page of the snapshot a read transaction of
    ``environment`` (a :class:`~vecdb.storage.environment.Environment`)
    pins; raises CorruptDatabaseError naming what is damaged."""
    data = folder / DATA_FILE
    for _ in range(_RETRIES):
        with environment.read() as txn:
            report = _core.check_lmdb_file(str(data), "structure", txn.id())
        if report["snapshot_found"]:
            refuse_if_damaged(data, report)
            return
    # Each attempt lost its meta page to two commits in between: check the
    # newest snapshot without a pin (a writer racing it could only cause a
    # false alarm, never hide damage).
    refuse_if_damaged(data, _core.check_lmdb_file(str(data), "structure"))


def refuse_if_damaged(data: Path, report: Dict[str, Any]) -> None:
    problems = report["problems"]
    if not problems:
        return
    database, page, text = problems[0]
    database = database.decode(errors="replace")
    more = len(problems) - 1 + report["problems_omitted"]
    where = f"{database} database" if database not in ("meta", "free list") else database
    raise CorruptDatabaseError(
        f"{data} is damaged ({where}{f', page {page}' if page else ''}: {text}"
        f"{f'; and {more} more problem(s)' if more else ''}); vecdb refuses to open it rather than crash or "
        f"answer wrongly. Restore the database from a backup (vecdb restore ARCHIVE FOLDER); "
        f"`vecdb check {data.parent}` lists every problem")
