"""One LMDB environment per database folder: opening it (one writer process at
a time), transactions, and a memory map that grows by itself.

py-lmdb rules this module enforces (see its documentation):
- one environment per folder per process: a second handle on the same folder
  shares it (read-only) or is refused (a second writer);
- ``set_mapsize`` only while no transaction of this process is open: every
  transaction holds a shared gate, a resize takes it exclusively;
- write transactions are short, on one thread at a time;
- an environment is never used across ``fork()``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, TypeVar

import lmdb

from vecdb._files import fsync_folder
from vecdb.errors import ClosedError, NotFoundError, ReadOnlyError, StorageLockedError, VecdbError
from vecdb.storage.data_file import check_pages, prepare_data_file
from vecdb.storage.format import FORMAT_1, FORMAT_KEY, FORMAT_VERSION, new_database_id, put_identity, read_database_id

T = TypeVar("T")

INITIAL_MAP_SIZE = 64 << 20
MAX_NAMED_DATABASES = 4096
LOCK_FILE = "vecdb.lock"


class _SharedExclusiveGate:
    """Many holders in shared mode, or one in exclusive mode; a waiting
    exclusive request stops new shared entries so a resize cannot starve."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())  # never re-entered: a plain lock is faster
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0

    def enter_shared(self) -> None:
        with self._condition:
            while self._exclusive or self._exclusive_waiting:
                self._condition.wait()
            self._shared += 1

    def exit_shared(self) -> None:
        with self._condition:
            self._shared -= 1
            # Only an exclusive request waits for the shared count to drop:
            # wake it when the last shared holder leaves.
            if self._shared == 0 and self._exclusive_waiting:
                self._condition.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.enter_shared()
        try:
            yield
        finally:
            self.exit_shared()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._exclusive_waiting += 1
            while self._exclusive or self._shared:
                self._condition.wait()
            self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


class Environment:
    """An open LMDB environment with vecdb's locking and map-growth rules.
    Use :func:`open_environment`; handles on one folder share an instance."""

    def __init__(self, path: Path, writable: bool, initial_map_size: int) -> None:
        self.path = path
        self.writable = writable
        self._lock_fd: Optional[int] = None
        if writable:
            self._lock_fd = _lock_writer(path)
        try:
            prepare_data_file(path, writable)
            self._env = lmdb.open(
                str(path), map_size=initial_map_size, max_dbs=MAX_NAMED_DATABASES,
                readonly=not writable, create=writable, max_readers=256, readahead=False,
            )
        except lmdb.Error as exc:
            self._release_lock()
            raise VecdbError(f"cannot open the database at {path}: {exc}") from None
        except BaseException:
            self._release_lock()
            raise
        self._pid = os.getpid()
        self._gate = _SharedExclusiveGate()
        self._write_lock = threading.Lock()
        self._writer_thread: Optional[int] = None
        self._databases: Dict[Tuple[bytes, bool], Any] = {}
        self._open = True
        self.users = 0
        # Readers left behind by killed processes would pin old pages forever.
        self._env.reader_check()
        try:
            check_pages(path, self)
            self._check_format()
        except BaseException:
            self.close()
            raise

    def _check_format(self) -> None:
        with self.read() as txn:
            stored = txn.get(FORMAT_KEY)
            self.database_id = read_database_id(txn) if stored == FORMAT_VERSION else None
        if stored is None and self._env.stat()["entries"] > 0:
            raise VecdbError(f"{self.path} holds an LMDB environment that vecdb did not write")
        if stored is None and self.writable:
            identity = new_database_id()
            self.write(lambda txn: put_identity(txn, identity))
            self.database_id = identity.hex()
        elif stored == FORMAT_1:  # a writable open upgrades before LMDB opens (prepare_data_file)
            raise ReadOnlyError(f"{self.path} is in vecdb storage format 1 (vecdb 0.1), which a read-only handle "
                                "cannot read: open it once for writing (vecdb.open(path)) with no other process "
                                "using it, which upgrades it in place to format 2, then read-only opens work")
        elif stored is not None and bytes(stored) != FORMAT_VERSION:
            raise VecdbError(f"{self.path} uses storage format {bytes(stored)!r}; this vecdb reads {FORMAT_VERSION!r}")

    def _check_usable(self) -> None:
        if not self._open:
            raise ClosedError("the database is closed")
        if os.getpid() != self._pid:
            raise ClosedError("this database handle was opened in a parent process; open it again after fork()")

    def read(self) -> "_ReadTransaction":
        """A read transaction seeing the last committed state, as a context
        manager (``with environment.read() as txn:``); keep it short."""
        self._check_usable()
        return _ReadTransaction(self)

    def write(self, body: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``body`` in one write transaction and commit it (durably: LMDB
        fsyncs on commit). If the map is full, the transaction is abandoned,
        the map doubled and ``body`` run again from scratch, so ``body`` must
        only depend on what it reads through the transaction."""
        if not self.writable:
            raise ReadOnlyError(f"{self.path} is open read-only")
        self._check_usable()
        with self._write_lock:
            while True:
                try:
                    with self._gate.shared():
                        txn = self._begin(write=True)
                        if txn is not None:
                            self._writer_thread = threading.get_ident()
                            try:
                                result = body(txn)
                            except BaseException:
                                txn.abort()
                                raise
                            finally:
                                self._writer_thread = None
                            txn.commit()
                            return result
                    self._adopt_map_size()
                except lmdb.MapFullError:
                    self._grow()

    def _begin(self, write: bool) -> Optional[lmdb.Transaction]:
        """A new transaction, or None when another process grew the map and
        this one must adopt the new size first."""
        try:
            return self._env.begin(write=write)
        except lmdb.MapResizedError:
            return None

    def _adopt_map_size(self) -> None:
        with self._gate.exclusive():
            self._env.set_mapsize(0)

    def _grow(self) -> None:
        with self._gate.exclusive():
            self._env.set_mapsize(self._env.info()["map_size"] * 2)

    def database(self, name: bytes, dupsort: bool = False) -> Any:
        """The handle of a named database, creating it if writable. Must not
        be called inside a :meth:`write` body for a database not opened yet."""
        handle = self._databases.get((name, dupsort))
        if handle is None:
            if self._writer_thread == threading.get_ident():
                raise VecdbError(f"internal error: database {name!r} opened inside a write transaction")
            if self.writable:
                handle = self.write(lambda txn: self._env.open_db(name, txn=txn, dupsort=dupsort, dupfixed=dupsort))
            else:
                # Without a transaction py-lmdb opens the handle in one of its own
                # and commits it; a handle opened in an aborted read would close.
                self._check_usable()
                try:
                    with self._gate.shared():
                        handle = self._env.open_db(name, create=False, dupsort=dupsort, dupfixed=dupsort)
                except lmdb.NotFoundError:
                    raise NotFoundError(f"named database {name!r} does not exist yet") from None
            self._databases[name, dupsort] = handle
        return handle

    def forget_database(self, name: bytes) -> None:
        """Drop a cached handle after its database was dropped."""
        for dupsort in (False, True):
            self._databases.pop((name, dupsort), None)

    def compact(self) -> int:
        """Rewrite the data file without its free pages (LMDB never shrinks
        it otherwise); returns the bytes saved. Needs the writer handle and no
        other process with the folder open: they would keep the old file."""
        if not self.writable:
            raise ReadOnlyError(f"{self.path} is open read-only; compacting needs the writer")
        self._check_usable()
        data = self.path / "data.mdb"
        before = data.stat().st_size
        staging = self.path / ".compacting"
        with self._write_lock, self._gate.exclusive():
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            self._copy_into(staging, compact=True)
            map_size = self._env.info()["map_size"]
            reopen = list(self._databases)
            self._env.close()
            self._databases.clear()
            try:
                _swap_in_if_alone(self.path, staging / "data.mdb", data)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                self._env = lmdb.open(str(self.path), map_size=map_size, max_dbs=MAX_NAMED_DATABASES,
                                      max_readers=256, readahead=False)
                # Handles that callers look up by name must work again at once.
                with self._env.begin(write=True) as txn:
                    for name, dupsort in reopen:
                        self._databases[name, dupsort] = self._env.open_db(
                            name, txn=txn, dupsort=dupsort, dupfixed=dupsort)
        return before - data.stat().st_size

    def copy_to(self, folder: Path) -> Path:
        """Write a consistent copy of the environment (one committed state)
        into the empty existing ``folder`` and return the copied data file,
        fsynced.

        Works on read-only handles and while writers keep committing (LMDB
        copies from a read transaction). Meanwhile LMDB cannot reuse the
        pages writers free, and the map cannot grow: a write that needs a
        bigger map waits for the copy to finish. The copy is compacted (free
        pages left out). py-lmdb 3.0.0's compacting copy crashes the process
        on DUPFIXED databases holding many values per key (payload indexes),
        hence lmdb<3 in pyproject.toml and
        tests/test_durability.py::test_compact_with_a_crowded_payload_index."""
        self._check_usable()
        while True:
            with self._gate.shared():
                try:
                    return self._copy_into(folder, compact=True)
                except lmdb.MapResizedError:  # another process grew the map: adopt its size, start again
                    (folder / "data.mdb").unlink(missing_ok=True)
                except lmdb.Error as exc:
                    raise VecdbError(f"copying the database at {self.path} to {folder} failed: {exc}") from None
            self._adopt_map_size()

    def _copy_into(self, folder: Path, compact: bool) -> Path:
        self._env.copy(str(folder), compact=compact)
        data = folder / "data.mdb"
        with open(data, "rb") as handle:
            os.fsync(handle.fileno())
        return data

    def close(self) -> None:
        if self._open:
            self._open = False
            if os.getpid() == self._pid:
                self._env.close()
            self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _swap_in_if_alone(folder: Path, replacement: Path, data: Path) -> None:
    """Replace the data file while no other process has the environment open."""
    descriptor = _lock_out_lmdb_users(folder, "compacting")
    try:
        os.replace(replacement, data)
        fsync_folder(folder)
    finally:
        os.close(descriptor)


def _lock_out_lmdb_users(folder: Path, purpose: str) -> int:
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


@contextmanager
def folder_closed_everywhere(path: Path, purpose: str) -> Iterator[None]:
    """Hold a database folder that no vecdb handle has open, in this process
    or another, for replacing it whole; keep the block short. Meanwhile
    writers elsewhere are refused, other LMDB openers wait, and this process
    opens no database (the registry stays locked: a handle opened here would
    lose its LMDB locks when the block ends). Raises StorageLockedError
    naming ``purpose`` when a handle is open."""
    with _registry_lock:
        environment = _registry.get(str(path.resolve()))
        if environment is not None and environment._pid == os.getpid():
            raise StorageLockedError(f"{path} is open in this process; close it before {purpose}")
        writer_lock = _lock_writer(path)
        try:
            lmdb_lock = _lock_out_lmdb_users(path, purpose) if (path / "lock.mdb").exists() else None
            try:
                yield
            finally:
                if lmdb_lock is not None:
                    os.close(lmdb_lock)
        finally:
            os.close(writer_lock)


def _lock_writer(path: Path) -> int:
    """Take the folder's writer lock without waiting: a second writer fails
    at once with the reason instead of blocking."""
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageLockedError(
            f"{path} is open for writing in another process; open it with read_only=True, "
            "or close the other writer first"
        ) from None
    return fd


_registry_lock = threading.Lock()
_registry: Dict[str, Environment] = {}


def open_environment(path: Path, read_only: bool) -> Environment:
    """Open (or share) the environment of a database folder.

    A read-only handle on a folder this process already has open shares that
    environment; a second writable handle is refused with StorageLockedError.
    """
    if read_only and not (path / "data.mdb").exists():
        raise NotFoundError(f"no vecdb database at {path}")
    if not read_only:
        path.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _registry_lock:
        environment = _registry.get(key)
        if environment is not None and environment._pid != os.getpid():
            environment = None  # inherited across fork: never reuse
        if environment is not None:
            if not read_only:
                raise StorageLockedError(f"{path} is already open in this process; close that handle first")
        else:
            environment = Environment(path, writable=not read_only, initial_map_size=INITIAL_MAP_SIZE)
            _registry[key] = environment
        environment.users += 1
        return environment


def open_in_this_process(path: Path) -> bool:
    """Whether this process has the database folder open (LMDB allows one
    environment per folder per process)."""
    with _registry_lock:
        environment = _registry.get(str(path.resolve()))
        return environment is not None and environment._pid == os.getpid()


def release_environment(environment: Environment) -> None:
    """Give back a handle; the environment closes with its last user."""
    with _registry_lock:
        environment.users -= 1
        if environment.users == 0:
            _registry.pop(str(environment.path.resolve()), None)
            environment.close()


class _ReadTransaction:
    """What :meth:`Environment.read` returns. A class rather than a
    generator-based context manager: every search opens one, and this is
    several microseconds cheaper."""

    __slots__ = ("_environment", "_txn")

    def __init__(self, environment: Environment) -> None:
        self._environment = environment
        self._txn: Optional[lmdb.Transaction] = None

    def __enter__(self) -> lmdb.Transaction:
        environment = self._environment
        while True:
            environment._gate.enter_shared()
            try:
                txn = environment._begin(write=False)
            except BaseException:
                environment._gate.exit_shared()
                raise
            if txn is not None:
                self._txn = txn
                return txn
            environment._gate.exit_shared()
            environment._adopt_map_size()

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._txn.abort()
        finally:
            self._environment._gate.exit_shared()
