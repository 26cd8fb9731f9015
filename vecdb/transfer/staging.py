"""Temporary work entries (a backup's copy of the data file, an archive
being written, a restore being unpacked) that a process killed midway
leaves behind, and that the next process may remove safely.

Each entry is claimed with an exclusive ``flock`` for as long as its
creator works on it; the kernel drops the lock when the creator exits,
however it exits. :func:`remove_abandoned` removes only entries whose lock
it can take, so it never removes one that another live process (two
``vecdb backup`` commands into one folder) is still writing. Creating and
claiming happen under a lock on the parent folder, as does the sweep: a
sweep never sees an entry created but not yet claimed.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence, Tuple


@contextmanager
def claimed_new_folder(parent: Path, prefix: str) -> Iterator[Path]:
    """A new folder ``parent/<prefix><random>`` (mode 0777 less the umask),
    claimed until the block ends. The caller removes or renames it."""
    with _parent_locked(parent):
        while True:
            path = parent / f"{prefix}{secrets.token_hex(8)}"
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        claim = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        fcntl.flock(claim, fcntl.LOCK_EX)
    try:
        yield path
    finally:
        os.close(claim)


def claimed_new_file(parent: Path, prefix: str, suffix: str) -> Tuple[int, Path]:
    """A new file ``parent/<prefix><random><suffix>`` (mode 0666 less the
    umask), open for writing and claimed until the returned descriptor is
    closed. The caller removes or links it."""
    with _parent_locked(parent):
        while True:
            path = parent / f"{prefix}{secrets.token_hex(8)}{suffix}"
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
                break
            except FileExistsError:
                continue
        fcntl.flock(descriptor, fcntl.LOCK_EX)
    return descriptor, path


def remove_abandoned(parent: Path, patterns: Sequence[str]) -> int:
    """Remove the entries of ``parent`` matching ``patterns`` (globs) that
    no live process claims; returns how many were removed."""
    removed = 0
    with _parent_locked(parent):
        for pattern in patterns:
            for path in parent.glob(pattern):
                try:
                    claim = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError:  # a link, or gone meanwhile: not ours to remove
                    continue
                try:
                    fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if os.path.isdir(path):  # opened without following links: not a link
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
                    removed += 1
                except BlockingIOError:
                    pass  # its creator is still at work
                finally:
                    os.close(claim)
    return removed


@contextmanager
def _parent_locked(parent: Path) -> Iterator[None]:
    descriptor = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
