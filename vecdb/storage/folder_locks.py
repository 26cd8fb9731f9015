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


def swap_in_if_alone(folder: Path, replacement: Path, data: Path) -> None:
    """Replace the data file while no other process has the environment open."""
    descriptor = lock_out_lmdb_users(folder, "compacting")
    try:
        os.replace(replacement, data)
        fsync_folder(folder)
    finally:
        os.close(descriptor)


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
