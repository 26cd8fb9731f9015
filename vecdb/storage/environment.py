"""One LMDB environment per database folder: opening it (one writer process at
a time), transactions, and a memory map that grows by itself.

py-lmdb rules this module enforces (see its documentation):
- one environment per folder per process: a second handle on the same folder
  shares it (read-only) or is refused (a second writer);
- ``set_mapsize`` only while no transaction of this process is open: every
  transaction holds a shared gate, a resize takes it exclusively;
- write transactions are short, on one thread at a time;
- a named database is deleted only while no other transaction of this
  process is open (LMDB frees its handle at once, and the next database
  opened may reuse it: a read still holding the old handle would read the
  new database), and handles are looked up by name on each use, never
  kept, so no caller holds a freed one;
- handles are never opened with ``create`` on a lookup: only
  :meth:`Environment.create_databases` creates (a lookup of a dropped
  database must fail, not bring it back empty);
- an environment is never used across ``fork()``.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

import lmdb

from vecdb.errors import (
    ClosedError,
    InvalidArgumentError,
    NotFoundError,
    ReadOnlyError,
    StorageLockedError,
    VecdbError,
)
from vecdb.gate import SharedExclusiveGate
from vecdb.progress import Progress
from vecdb.storage.data_file import check_pages, prepare_data_file
from vecdb.storage import folder_locks
from vecdb.storage.format import (
    FORMAT_1,
    FORMAT_KEY,
    FORMAT_VERSION,
    MAX_NAMED_DATABASES,
    OLD_FORMATS,
    new_database_id,
    put_identity,
    read_database_id,
)

T = TypeVar("T")

INITIAL_MAP_SIZE = 64 << 20
# A read-only process cannot free the handle slot of a database another
# process dropped (py-lmdb has no mdb_dbi_close): past this many handles it
# reopens the environment, keeping the handles of databases that still exist.
READ_ONLY_HANDLE_LIMIT = MAX_NAMED_DATABASES - 512
COMPACT_STAGING = ".compacting"  # Environment.compact's copy, in the folder: same file system
# Commit ids (Environment.last_commit) hold LMDB's transaction id in these
# low bits, the data file's number above them.
_TXNID_BITS = 48

# Opens of a read-only handle that may meet a data file swap, before giving up.
_OPEN_ATTEMPTS = 20


def _file_identity(path: Path) -> Optional[Tuple[int, int]]:
    """(device, inode) of a file, None if missing."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


# This process's id, kept current across fork(): handles compare it with the
# pid they were opened in on every call, and os.getpid() is a system call
# (2% of a filtered search's time).
_this_pid = os.getpid()


def _forked() -> None:
    global _this_pid
    _this_pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class Environment:
    """An open LMDB environment with vecdb's locking and map-growth rules.
    Use :func:`open_environment`; handles on one folder share an instance."""

    def __init__(self, path: Path, writable: bool, initial_map_size: int, progress: Progress) -> None:
        self.path = path
        self.writable = writable
        self._lock_fd: Optional[int] = None
        # Held from a data file swap (compaction, upgrade) until LMDB is
        # closed: see folder_locks.swap_in_if_alone.
        self._lmdb_lock_out: Optional[int] = None
        if writable:
            self._lock_fd = folder_locks.lock_writer(path)
            # A compaction killed midway leaves its copy of the data file: no
            # other writer can be compacting now, so it is abandoned.
            shutil.rmtree(path / COMPACT_STAGING, ignore_errors=True)
        try:
            self._lmdb_lock_out = prepare_data_file(path, writable, progress)
            self._env = self._open_lmdb(initial_map_size)
            if writable:
                # A writer killed between writing a commit's meta page (durable)
                # and publishing it in lock.mdb leaves the commit invisible to
                # read transactions while another process keeps lock.mdb open;
                # LMDB adopts it when the next writer takes the write lock. Take
                # it now, before this writer reads anything it acts on (orphan
                # removal at open would otherwise drop a collection whose config
                # that commit wrote).
                self._env.begin(write=True).abort()
        except lmdb.Error as exc:
            self._release_lock()
            raise VecdbError(f"cannot open the database at {path}: {exc}") from None
        except BaseException:
            self._release_lock()
            raise
        self._pid = _this_pid
        # Data files swapped in by compact(): LMDB numbers a compacted copy's
        # commits from 1 again, so commit ids carry this too (see last_commit).
        self._swaps = 0
        self._gate = SharedExclusiveGate()
        self._write_lock = threading.Lock()
        self._writer_thread: Optional[int] = None
        self._databases: Dict[Tuple[bytes, bool], Any] = {}
        # The read transaction each thread has open (nested reads share it).
        self._local = threading.local()
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

    def _open_lmdb(self, map_size: int) -> Any:
        """LMDB opened on the data file the folder holds now.

        A read-only LMDB open opens the data file before it takes the lock
        file (LMDB's order), so one that waited out a data file swap
        (compaction, a restore over the folder) held the replaced file and
        read it through the new file's lock table: stale states, going
        back and forth (a probe: ~1 open in 100-600 beside a compacting
        writer). The file's identity before and after tells; such an open
        starts again, as does one that met a lock file a restore retired
        (folder_locks.retire_lock_file). A writer holds the writer lock,
        which every swap takes: its file cannot change under it."""
        data = self.path / "data.mdb"
        failure: Optional[lmdb.Error] = None
        for _ in range(_OPEN_ATTEMPTS):
            before = _file_identity(data)
            try:
                env = lmdb.open(str(self.path), map_size=map_size, max_dbs=MAX_NAMED_DATABASES,
                                readonly=not self.writable, create=self.writable, max_readers=256, readahead=False)
            except lmdb.InvalidError as exc:
                if self.writable:
                    raise
                failure = exc
                continue
            failure = None
            # Once open, a swap waits for this handle to close: the file stays.
            if self.writable or (before is not None and before == _file_identity(data)):
                return env
            env.close()
        if failure is not None:  # not a retired lock file: a damaged one
            raise failure
        raise VecdbError(f"cannot open the database at {self.path}: its data file was replaced {_OPEN_ATTEMPTS} "
                         "times while opening (compactions or restores); try again")

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
        elif stored in OLD_FORMATS:  # a writable open upgrades before LMDB opens (prepare_data_file)
            version = bytes(stored).decode()
            raise ReadOnlyError(f"{self.path} is in vecdb storage format {version}"
                                f"{' (vecdb 0.1)' if stored == FORMAT_1 else ''}, which a read-only handle cannot "
                                "read: open it once for writing (vecdb.open(path)) with no other process using it, "
                                f"which upgrades it in place to format {FORMAT_VERSION.decode()}, then read-only "
                                "opens work")
        elif stored is not None and bytes(stored) != FORMAT_VERSION:
            raise VecdbError(f"{self.path} uses storage format {bytes(stored)!r}; this vecdb reads {FORMAT_VERSION!r}")

    def check_usable(self) -> None:
        if not self._open:
            raise ClosedError("the database is closed")
        if _this_pid != self._pid:
            raise ClosedError("this database handle was opened in a parent process; open it again after fork()")

    def last_commit(self) -> int:
        """The id of the last write transaction committed to the folder by
        any process, read without a transaction (LMDB's ``last_txnid``, from
        the newer meta page): it moves on with every commit. It may run a
        moment ahead of what a read transaction sees (a commit writes its
        meta page before publishing it to readers), never behind: compare it
        with :meth:`seen_commit` taken earlier to know that nothing was
        committed since. (Ids stay distinct across the data file swaps of
        :meth:`compact`, after which LMDB counts from 1 again: handles of
        this process would take a new file's commit for one they saw.)
        Read holding the gate shared: compact() swaps the LMDB environment
        holding it alone, and the closed one must not be asked."""
        with self._gate.shared():
            self.check_usable()
            return self._commit_id(self._env.info()["last_txnid"])

    def _commit_id(self, txnid: int) -> int:
        return (self._swaps << _TXNID_BITS) | txnid

    def seen_commit(self) -> int:
        """The id of the commit a read transaction begun now sees (in a
        ``read()`` block, that block's, which may be older)."""
        with self.read() as txn:
            return self._commit_id(txn.id())

    def read(self) -> "_ReadTransaction":
        """A read transaction seeing the last committed state, as a context
        manager (``with environment.read() as txn:``); keep it short. Inside
        another ``read()`` block of the same thread it is that block's
        transaction: everything one operation reads comes from one state
        (so a generator suspended inside a ``read()`` block shares its
        transaction with the thread's reads until it finishes)."""
        self.check_usable()
        return _ReadTransaction(self)

    @contextmanager
    def zero_copy(self, txn: lmdb.Transaction[bytes]) -> Iterator[lmdb.Transaction[Any]]:
        """A transaction reading exactly what ``txn`` (open in a :meth:`read`
        or :meth:`write` block) reads, whose values are buffers into the map
        rather than copies; valid inside the ``with`` block only. Our
        transactions return bytes (callers keep what they read), so this is
        a second read transaction, begun now: when it sees the same commit
        as ``txn``, it sees the same state (LMDB snapshots are per commit).
        Otherwise (``txn`` writes, or a commit landed since it began) it is
        ``txn`` itself, which copies."""
        try:
            twin = self._env.begin(buffers=True)
        except lmdb.MapResizedError:  # another process grew the map; txn's map still serves
            yield txn
            return
        try:
            yield twin if twin.id() == txn.id() else txn
        finally:
            twin.abort()

    def write(self, body: Callable[[lmdb.Transaction[bytes]], T], *, alone: bool = False) -> T:
        """Run ``body`` in one write transaction and commit it (durably: LMDB
        fsyncs on commit). If the map is full, the transaction is abandoned,
        the map doubled and ``body`` run again from scratch, so ``body`` must
        only depend on what it reads through the transaction. With
        ``alone``, no other transaction of this process is open meanwhile
        (readers wait): needed to delete named databases."""
        if not self.writable:
            raise ReadOnlyError(f"{self.path} is open read-only")
        self.check_usable()
        with self._write_lock:
            while True:
                try:
                    with self._gate.exclusive() if alone else self._gate.shared():
                        self.check_usable()  # again: close() may have run while this waited
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

    def _begin(self, write: bool) -> Optional[lmdb.Transaction[bytes]]:
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
        """The handle of an existing named database (NotFoundError if there
        is none). Look it up on each use: a handle kept past a
        :meth:`drop_databases` would be a freed one. Must not be called
        inside a :meth:`write` body for a database not opened yet."""
        handle = self._databases.get((name, dupsort))
        if handle is None:
            if self._writer_thread == threading.get_ident():
                raise VecdbError(f"internal error: database {name!r} opened inside a write transaction")
            self.check_usable()
            try:
                if self.writable:
                    return self.write(lambda txn: self._remember(name, dupsort, self._open_db(txn, name, dupsort, False)))
                if len(self._databases) >= READ_ONLY_HANDLE_LIMIT and not self._gate.held_by_this_thread():
                    self._reopen_keeping_live_handles()
                # Without a transaction py-lmdb opens the handle in one of its own
                # and commits it; a handle opened in an aborted read would close.
                with self._gate.shared():
                    self.check_usable()
                    return self._remember(name, dupsort, self._open_db(None, name, dupsort, create=False))
            except lmdb.NotFoundError:
                raise NotFoundError(f"named database {name!r} does not exist") from None
        return handle

    def _remember(self, name: bytes, dupsort: bool, handle: Any) -> Any:
        # Stored while the gate is held: a reopen cannot slip in between and
        # leave a handle of the closed environment here.
        self._databases[name, dupsort] = handle
        return handle

    def create_databases(self, names: Sequence[Tuple[bytes, bool]]) -> None:
        """Create these named databases (``(name, dupsort)`` pairs) if missing."""
        handles = self.write(lambda txn: [self._open_db(txn, name, dupsort, create=True) for name, dupsort in names])
        self._databases.update(zip(names, handles))

    def drop_databases(self, names: Sequence[Tuple[bytes, bool]], body: Callable[[lmdb.Transaction[bytes]], T]) -> T:
        """Run ``body`` and delete these named databases (those that exist)
        in one write transaction, with no other transaction of this process
        open meanwhile; their handles are forgotten."""
        def drop(txn: lmdb.Transaction[bytes]) -> T:
            result = body(txn)
            for name, dupsort in names:
                try:
                    handle = self._databases.get((name, dupsort)) or self._open_db(txn, name, dupsort, create=False)
                except lmdb.NotFoundError:
                    continue
                txn.drop(handle, delete=True)
            return result

        try:
            return self.write(drop, alone=True)
        finally:
            for name in names:
                self._databases.pop(name, None)

    def database_names(self) -> List[bytes]:
        """Every key of the main database (named databases among them)."""
        with self.read() as txn:
            return [bytes(key) for key in txn.cursor().iternext(keys=True, values=False)]

    def _open_db(self, txn: Optional[lmdb.Transaction[bytes]], name: bytes, dupsort: bool, create: bool) -> Any:
        return self._env.open_db(name, txn=txn, create=create, dupsort=dupsort, dupfixed=dupsort)

    def compact(self) -> int:
        """Rewrite the data file without its free pages (LMDB never shrinks
        it otherwise); returns the bytes saved. Needs the writer handle and no
        other process with the folder open: they would keep the old file."""
        if not self.writable:
            raise ReadOnlyError(f"{self.path} is open read-only; compacting needs the writer")
        self.check_usable()
        data = self.path / "data.mdb"
        before = data.stat().st_size
        staging = self.path / COMPACT_STAGING
        with self._write_lock, self._gate.exclusive():
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            self._copy_into(staging, compact=True)
            try:
                self._reopen(lambda: folder_locks.swap_in_if_alone(self.path, staging / "data.mdb", data, "compacting"))
                self._swaps += 1
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return before - data.stat().st_size

    def _reopen_keeping_live_handles(self) -> None:
        with self._gate.exclusive():
            self.check_usable()
            if len(self._databases) >= READ_ONLY_HANDLE_LIMIT:  # not done by another thread meanwhile
                self._reopen()

    def _reopen(self, while_closed: Callable[[], Optional[int]] = lambda: None) -> None:
        """Close the LMDB environment, run ``while_closed``, open it again
        and reopen the handles of the named databases that still exist
        (callers look them up by name: they must work again at once).
        ``while_closed`` may return a descriptor holding other LMDB users
        out (a swapped data file), kept until LMDB is closed again.
        Call with the gate held exclusively."""
        map_size = self._env.info()["map_size"]
        reopen = list(self._databases)
        self._env.close()
        self._release_lmdb_lock_out()
        self._databases.clear()
        try:
            self._lmdb_lock_out = while_closed()
        finally:
            self._env = self._open_lmdb(map_size)
            # A read-only handle is opened outside any transaction (py-lmdb
            # commits it in one of its own): one opened in a read transaction
            # closes with it, and its slot would be handed to the next name.
            txn = self._env.begin(write=True) if self.writable else None
            for name, dupsort in reopen:
                try:
                    self._databases[name, dupsort] = self._open_db(txn, name, dupsort, create=False)
                except lmdb.NotFoundError:  # dropped by another process
                    pass
            if txn is not None:
                txn.commit()

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
        tests/engine/test_durability.py::test_compact_with_a_crowded_payload_index."""
        self.check_usable()
        while True:
            with self._gate.shared():
                self.check_usable()
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
        """Close the environment once the transactions in flight in this
        process end (LMDB would free what they are reading); later ones get
        ClosedError."""
        if not self._open:
            return
        if _this_pid != self._pid:  # inherited across fork: the parent's to close
            self._open = False
            self._release_lock()
            return
        with self._write_lock, self._gate.exclusive():
            if self._open:
                self._open = False
                self._env.close()
                self._release_lock()

    def _release_lock(self) -> None:
        """Release this handle's locks on the folder (with LMDB closed)."""
        self._release_lmdb_lock_out()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _release_lmdb_lock_out(self) -> None:
        if self._lmdb_lock_out is not None:
            os.close(self._lmdb_lock_out)
            self._lmdb_lock_out = None


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
        if environment is not None and environment._pid == _this_pid:
            raise StorageLockedError(f"{path} is open in this process; close it before {purpose}")
        writer_lock = folder_locks.lock_writer(path)
        try:
            lmdb_lock = folder_locks.lock_out_lmdb_users(path, purpose) if (path / "lock.mdb").exists() else None
            try:
                yield
                if lmdb_lock is not None:  # the folder was replaced: an open that waited must not use its lock file
                    folder_locks.retire_lock_file(lmdb_lock)
            finally:
                if lmdb_lock is not None:
                    os.close(lmdb_lock)
        finally:
            os.close(writer_lock)


_registry_lock = threading.Lock()
_registry: Dict[str, Environment] = {}


def open_environment(path: Path, read_only: bool, progress: Progress) -> Environment:
    """Open (or share) the environment of a database folder (a storage
    format upgrade on opening reports to ``progress``).

    A read-only handle on a folder this process already has open shares that
    environment; a second writable handle is refused with StorageLockedError.
    """
    if path.exists() and not path.is_dir():
        raise InvalidArgumentError(f"{path} is a file; a vecdb database is a folder (created if missing)")
    if read_only and not (path / "data.mdb").exists():
        raise NotFoundError(f"no vecdb database at {path}")
    if not read_only:
        path.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _registry_lock:
        environment = _registry.get(key)
        if environment is not None and environment._pid != _this_pid:
            environment = None  # inherited across fork: never reuse
        if environment is not None:
            if not read_only:
                raise StorageLockedError(f"{path} is already open in this process; close that handle first")
        else:
            environment = Environment(path, writable=not read_only, initial_map_size=INITIAL_MAP_SIZE,
                                      progress=progress)
            _registry[key] = environment
        environment.users += 1
        return environment


def open_in_this_process(path: Path) -> bool:
    """Whether this process has the database folder open (LMDB allows one
    environment per folder per process)."""
    with _registry_lock:
        environment = _registry.get(str(path.resolve()))
        return environment is not None and environment._pid == _this_pid


class ReadOnlyView(Environment):
    """What a ``read_only=True`` handle uses when this process has the folder
    open for writing too: LMDB allows one environment per process and file,
    so both handles share the writer's, and this view reads through it but
    refuses every write, as a read-only environment does. (Without it a
    read-only handle wrote through the shared environment, behind the
    writer handle's indexes and caches.)"""

    writable = False

    def __init__(self, shared: Environment) -> None:  # noqa: super().__init__ would open the folder again
        self.shared = shared
        self.path = shared.path
        self.database_id = shared.database_id

    def check_usable(self) -> None:
        self.shared.check_usable()

    def last_commit(self) -> int:
        return self.shared.last_commit()

    def seen_commit(self) -> int:
        return self.shared.seen_commit()

    def read(self) -> "_ReadTransaction":
        return self.shared.read()

    def database(self, name: bytes, dupsort: bool = False) -> Any:
        return self.shared.database(name, dupsort)

    @contextmanager
    def zero_copy(self, txn: lmdb.Transaction[bytes]) -> Iterator[lmdb.Transaction[Any]]:
        with self.shared.zero_copy(txn) as view:
            yield view

    def database_names(self) -> List[bytes]:
        return self.shared.database_names()

    def copy_to(self, folder: Path) -> Path:
        return self.shared.copy_to(folder)

    def write(self, body: Callable[[lmdb.Transaction[bytes]], T], *, alone: bool = False) -> T:
        raise ReadOnlyError(f"{self.path} is open read-only (by this handle)")

    def create_databases(self, names: Sequence[Tuple[bytes, bool]]) -> None:
        raise ReadOnlyError(f"{self.path} is open read-only (by this handle)")

    def drop_databases(self, names: Sequence[Tuple[bytes, bool]], body: Callable[[lmdb.Transaction[bytes]], T]) -> T:
        raise ReadOnlyError(f"{self.path} is open read-only (by this handle)")

    def compact(self) -> int:
        raise ReadOnlyError(f"{self.path} is open read-only (by this handle); compacting needs the writer")


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

    __slots__ = ("_environment", "_txn", "_nested")

    def __init__(self, environment: Environment) -> None:
        self._environment = environment
        self._txn: Optional[lmdb.Transaction[bytes]] = None
        self._nested = False

    def __enter__(self) -> lmdb.Transaction[bytes]:
        environment = self._environment
        outer = getattr(environment._local, "txn", None)
        if outer is not None:
            # Share the thread's open transaction: one state for the whole
            # operation, and no second gate entry (which would wait behind a
            # resize that waits for the first).
            self._nested = True
            return outer
        while True:
            environment._gate.enter_shared()
            try:
                environment.check_usable()  # again: close() may have run while this waited
                txn = environment._begin(write=False)
            except BaseException:
                environment._gate.exit_shared()
                raise
            if txn is not None:
                self._txn = txn
                environment._local.txn = txn
                return txn
            environment._gate.exit_shared()
            environment._adopt_map_size()

    def __exit__(self, *exc_info: Any) -> None:
        if self._nested:
            return
        self._environment._local.txn = None
        assert self._txn is not None, "not nested: __enter__ began one"
        try:
            self._txn.abort()
        finally:
            self._environment._gate.exit_shared()
