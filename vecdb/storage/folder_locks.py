"""Locks on a database folder across processes: the writer lock (one
writer per folder, naming its holder), and locking every LMDB user out while
the data file is replaced whole (compaction, storage format upgrades)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from vecdb._files import fsync_folder
from vecdb.errors import StorageLockedError

LOCK_FILE = "vecdb.lock"  # the writer lock, beside LMDB's own files


def swap_in_if_alone(folder: Path, replacement: Path, data: Path, purpose: str) -> int:
    """Replace the data file while no other process has the environment
    open, and return the descriptor that still holds every other LMDB user
    out. The caller opens LMDB on the folder before closing it, and closes
    it only once that environment is closed again (closing it drops this
    process's LMDB locks too).

    Why: LMDB's lock file keeps the last commit id, and a read transaction
    picks its meta page by that id's parity; only the first process to open
    the environment resets the lock file from the data file. A process whose
    open waited for this lock would not be the first: it would read the new
    file through the old file's commit id (for a compacted copy, whose
    commit is 1, meta page 0: an empty database). Opening LMDB while holding
    everyone out makes this process the first."""
    descriptor = lock_out_lmdb_users(folder, purpose)
    try:
        os.replace(replacement, data)
        fsync_folder(folder)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def retire_lock_file(descriptor: int) -> None:
    """Mark the lock file locked by :func:`lock_out_lmdb_users` as not
    LMDB's (its magic number zeroed) before the lock is released, when its
    folder was replaced whole: a process whose open waited for the lock
    then fails with MDB_INVALID instead of reading the new data file through
    the old folder's lock table. A process opening it first resets it."""
    os.pwrite(descriptor, bytes(4), 0)


def lock_out_lmdb_users(folder: Path, purpose: str) -> int:
    """Every LMDB process holds a shared lock on byte 0 of lock.mdb, so an
    exclusive lock succeeds only if no other process has the environment
    open, and keeps new openers waiting until the returned descriptor is
    closed. POSIX record locks never conflict within one process, and closing
    any descriptor of the file drops them all: call this only while this
    process has the environment closed."""
    descriptor = os.open(folder / "lock.mdb", os.O_RDWR)
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
    except OSError:
        os.close(descriptor)
        raise StorageLockedError(
            f"another process has {folder} open (read-only handles count); close it before {purpose}"
        ) from None
    return descriptor


def lock_writer(path: Path) -> int:
    """Take the folder's writer lock without waiting: a second writer fails
    at once with the reason, naming the holder, instead of blocking. The
    holder's PID and command line are written into the lock file for that."""
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").split("\n", 1)
        os.close(fd)
        pid, command = holder[0].strip(), holder[1].strip() if len(holder) > 1 else ""
        who = f"process {pid} ({command})" if pid else "another process"
        server = " send the writes through its server (vecdb.connect(url)), or" if " serve" in command else ""
        raise StorageLockedError(f"{path} is open for writing by {who}: stop it first,{server} open the folder with "
                                 "read_only=True") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n{_command_line()}\n".encode("utf-8", "replace"), 0)
    return fd


def _command_line() -> str:
    try:
        with open(f"/proc/{os.getpid()}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()[:300]
    except OSError:
        return ""
