"""Checking a whole database folder: what ``vecdb check PATH`` runs.

Opening a database already refuses damaged pages (see
:mod:`vecdb.storage.data_file`) and every read checks the values it reads;
this reads everything, in one read transaction (one committed state, so it
runs beside a writer), and lists every problem instead of stopping at the
first:

- pages: both meta pages, the file size, every page of every tree (headers,
  node bounds, key order, counts), overflow pages, the free list, and that
  each page is used or free exactly once;
- values: the checksum of every stored value of every collection (each
  vector in a block, and the block's header), and that it decodes (a block
  whose length fits its header, a payload that is a
  dict, PQ codebooks and the PCA rotation in their formats);
- agreement between structures: the id -> label and label -> id maps are
  each other's inverse, every point has a vector and only points have
  vectors or payloads, the payload indexes hold exactly the entries the
  payloads call for, the change log lies within the collection's sequence
  and ends at its fingerprint, and the settings' label counter is past
  every label.

Damage to a point is reported with the point's id where the id can still
be read. Named databases no collection uses (left by old drops) are noted,
not counted as damage. Index snapshots are caches rebuilt from LMDB and are
not checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import lmdb
import msgpack

from vecdb import _core
from vecdb.config import CollectionConfig
from vecdb.errors import CorruptIndexError, NotFoundError, StorageLockedError
from vecdb.native.pq import ProductQuantizer
from vecdb.index.rotation import rotation_from_bytes
from vecdb.storage.codec import CHECK_BYTES, MAIN, DamagedValue, ValueCodec, in_chunks
from vecdb.storage.catalog import CONFIG_PREFIX, part_names
from vecdb.storage.collection_store import HAS_PAYLOAD
from vecdb.storage.data_file import DATA_FILE
from vecdb.storage.environment import open_in_this_process
from vecdb.storage.format import MAX_NAMED_DATABASES
from vecdb.storage.format import DATABASE_ID_KEY, FORMAT_1, FORMAT_2, FORMAT_KEY, FORMAT_VERSION
from vecdb.storage.keys import LABEL_BYTES, label_key, label_keys, user_id_from_key
from vecdb.storage.payload_index import entry_keys
from vecdb.storage.vector_blocks import VectorBlocks

# (stage, done, total): stage is "pages" (pages read) or "values" (records read).
Progress = Callable[[str, int, int], None]
_CHUNK = 4096
_FINGERPRINT_BYTES = 8


@dataclass
class Problem:
    """One thing found wrong: where (``"file"``, or a collection's name) and what."""

    where: str
    text: str


@dataclass
class CollectionReport:
    name: str
    points: int = 0
    values_checked: int = 0
    # label -> (id or None if unreadable, what is damaged about it)
    damaged: Dict[int, Tuple[Any, Set[str]]] = field(default_factory=dict)

    def damaged_points(self) -> List[Dict[str, Any]]:
        return [{"label": label, "id": point, "damaged": sorted(parts)}
                for label, (point, parts) in sorted(self.damaged.items())]


@dataclass
class CheckReport:
    path: Path
    file_bytes: int = 0
    page_size: int = 0
    pages_checked: int = 0
    storage_format: Optional[str] = None
    database_id: Optional[str] = None
    collections: List[CollectionReport] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No damage found."""
        return not self.problems

    def to_dict(self) -> Dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok, "file_bytes": self.file_bytes, "page_size": self.page_size,
                "pages_checked": self.pages_checked, "storage_format": self.storage_format,
                "database_id": self.database_id,
                "collections": [{"name": c.name, "points": c.points, "values_checked": c.values_checked,
                                 "damaged_points": c.damaged_points()} for c in self.collections],
                "problems": [{"where": p.where, "text": p.text} for p in self.problems], "notes": list(self.notes)}


def check_database(path: Path, progress: Optional[Progress] = None) -> CheckReport:
    """Check everything in the database folder ``path`` (read-only; safe
    beside a writer in another process). Raises NotFoundError if there is no
    database there, StorageLockedError if this process has it open (LMDB
    allows one environment per folder per process: run ``vecdb check`` from
    another process instead)."""
    path = Path(path)
    data = path / DATA_FILE
    if not data.is_file():
        raise NotFoundError(f"no vecdb database at {path} (no {DATA_FILE})")
    if open_in_this_process(path):
        raise StorageLockedError(f"{path} is open in this process; close it, or run `vecdb check {path}` from "
                                 "another process (it runs beside a writer)")
    report = CheckReport(path)
    meta = _core.check_lmdb_file(str(data), "meta")
    _take_pages(report, meta)
    if report.problems:
        return report  # LMDB cannot even map it safely
    environment = lmdb.open(str(path), readonly=True, max_dbs=MAX_NAMED_DATABASES, max_readers=256,
                            readahead=False)
    try:
        _Checker(environment, report, progress).run()
    finally:
        environment.close()
    return report


def _take_pages(report: CheckReport, pages: Dict[str, Any]) -> None:
    report.file_bytes, report.page_size = pages["file_bytes"], pages["page_size"]
    report.pages_checked = pages["pages_read"]
    for database, page, text in pages["problems"]:
        where = "file" if database in (b"meta", b"free list") else f"database {database.decode(errors='replace')}"
        report.problems.append(Problem("file", f"{where}{f', page {page}' if page else ''}: {text}"))
    if pages["problems_omitted"]:
        report.problems.append(Problem("file", f"and {pages['problems_omitted']} more page problems"))


class _Checker:
    def __init__(self, environment: lmdb.Environment, report: CheckReport, progress: Optional[Progress]) -> None:
        self._environment = environment
        self._report = report
        self._progress = progress
        self._done = 0
        self._total = 0

    def run(self) -> None:
        # One read transaction for everything: one committed state, pinned
        # against a writer elsewhere reusing its pages (a handle opened in a
        # read transaction lives as long as the transaction: long enough).
        while True:
            with self._environment.begin() as txn:
                pages = _core.check_lmdb_file(str(self._report.path / DATA_FILE), "full", txn.id(),
                                              self._page_progress)
                if pages["snapshot_found"]:
                    self._check(txn, pages)
                    return

    def _check(self, txn: lmdb.Transaction[bytes], pages: Dict[str, Any]) -> None:
        report = self._report
        _take_pages(report, pages)
        # LMDB may crash reading a damaged tree: values are read only from
        # trees whose every page passed.
        damaged_trees = {database for database, _, _ in pages["problems"]}
        if pages["problems_omitted"] or damaged_trees & {b"meta", b"main"}:
            return
        named = {entry["name"]: entry for entry in pages["databases"]}
        self._total = sum(entry["entries"] for entry in named.values())
        stored_format = txn.get(FORMAT_KEY)
        report.storage_format = None if stored_format is None else bytes(stored_format).decode(errors="replace")
        if stored_format == FORMAT_1:
            report.notes.append("storage format 1 (vecdb 0.1) keeps no checksums: only pages were checked; "
                                "open the database once for writing to upgrade it")
            return
        if stored_format == FORMAT_2:
            report.notes.append("storage format 2 (one record per vector): only pages were checked; open the "
                                "database once for writing to upgrade it to format 3, then check it")
            return
        if stored_format != FORMAT_VERSION:
            report.problems.append(Problem("file", f"unknown storage format {stored_format!r}"))
            return
        try:
            stored_id = MAIN.open(DATABASE_ID_KEY, txn.get(DATABASE_ID_KEY))
            report.database_id = None if stored_id is None else bytes(stored_id).hex()
        except DamagedValue:
            report.problems.append(Problem("file", "the database id (vecdb-database-id) is damaged"))
        used: Set[bytes] = set()
        for config in self._configs(txn):
            names = list(part_names(config.key).values())
            used.update(names)
            unreadable = [name.decode() for name in names if name in damaged_trees]
            if unreadable:
                self.problem(config.name, f"its values were not checked: pages of {', '.join(unreadable)} are "
                                          "damaged (above)")
                continue
            handles = {part: self._environment.open_db(name, txn=txn, create=False, dupsort=part == "payload-index",
                                                      dupfixed=part == "payload-index")
                       for part, name in part_names(config.key).items() if name in named}
            report.collections.append(_CollectionCheck(txn, config, handles, self).run())
        for name in sorted(set(named) - used):
            report.notes.append(f"named database {name.decode(errors='replace')!r} belongs to no collection "
                                "(left by a dropped collection; harmless)")

    def _configs(self, txn: lmdb.Transaction[bytes]) -> List[CollectionConfig]:
        configs = []
        cursor = txn.cursor()
        if cursor.set_range(CONFIG_PREFIX):
            for key, value in cursor:
                if not key.startswith(CONFIG_PREFIX):
                    break
                name = key[len(CONFIG_PREFIX):].decode(errors="replace")
                try:
                    configs.append(CollectionConfig.from_dict(msgpack.unpackb(MAIN.open(key, value))))
                except (DamagedValue, ValueError, TypeError):
                    self.problem(name, "its settings are damaged: none of its points can be found")
        return configs

    def problem(self, where: str, text: str) -> None:
        self._report.problems.append(Problem(where, text))

    def _page_progress(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress("pages", done, total)

    def advance(self, records: int) -> None:
        self._done += records
        if self._progress is not None:
            self._progress("values", self._done, self._total)


class _CollectionCheck:
    """Every value of one collection, and the agreement of its structures."""

    def __init__(self, txn: lmdb.Transaction[bytes], config: CollectionConfig, handles: Dict[str, Any],
                 checker: _Checker) -> None:
        self._txn = txn
        self._config = config
        self._handles = handles
        self._checker = checker
        self._codecs = {part: ValueCodec(name) for part, name in part_names(config.key).items()}
        self.report = CollectionReport(config.name)
        self._ids_by_label: Dict[int, bytes] = {}
        self._damaged_ids: List[bytes] = []

    def run(self) -> CollectionReport:
        entries = self._map("labels")  # label key -> flags, id key
        labels = {key: bytes(entry[1:]) for key, entry in entries.items()}  # label key -> id key
        ids = self._map("ids")  # id key -> label key
        self._ids_by_label = {int.from_bytes(key, "big"): id_key for key, id_key in labels.items()}
        self.report.points = len(labels)
        vectors = self._vectors()
        payloads = self._payloads()
        damaged_ids = set(self._damaged_ids)
        for label_bytes, id_key in labels.items():
            if id_key in damaged_ids:
                self._damaged(label_bytes, "id map", "its id -> label entry fails its checksum")
            elif ids.get(id_key) not in (None, label_bytes):
                self._damaged(label_bytes, "id map", f"its id maps back to label {_label(ids[id_key])}")
            elif id_key not in ids:
                self._damaged(label_bytes, "id map", "its id has no entry in the id -> label map")
            if label_bytes not in vectors:
                self._damaged(label_bytes, "vector", "it has no stored vector")
        for id_key, label_bytes in ids.items():
            if label_bytes not in labels:
                self._problem(f"id {_readable(id_key)!r} maps to label {_label(label_bytes)}, which holds no point")
        for label_bytes in vectors - labels.keys():
            self._problem(f"a vector is stored under label {_label(label_bytes)}, which holds no point")
        for label_bytes in payloads.keys() - labels.keys():
            self._problem(f"a payload is stored under label {_label(label_bytes)}, which holds no point")
        for label_bytes, entry in entries.items():
            if entry[:1] and entry[0] & HAS_PAYLOAD and label_bytes not in payloads \
                    and self.report.damaged.get(_label(label_bytes), (None, set()))[1].isdisjoint({"payload"}):
                self._damaged(label_bytes, "payload", "its payload is missing")
            elif entry[:1] and not entry[0] & HAS_PAYLOAD and label_bytes in payloads:
                self._damaged(label_bytes, "id", "its entry says it has no payload, yet one is stored")
        top = max((int.from_bytes(key, "big") for key in labels), default=-1)
        if top >= self._config.next_label:
            self._problem(f"label {top} is at or past the settings' label counter ({self._config.next_label})")
        self._payload_index(payloads)
        self._change_log()
        self._quantizer()
        return self.report

    # ---- reading ----

    def _entries(self, part: str) -> Iterator[List[Tuple[bytes, bytes]]]:
        handle = self._handles.get(part)
        if handle is not None:
            yield from in_chunks(self._txn.cursor(db=handle), _CHUNK)

    def _checked(self, part: str) -> Iterator[Tuple[bytes, bytes]]:
        """``(key, value without its check)`` of every intact entry; damaged
        ones are recorded."""
        codec = self._codecs[part]
        for chunk in self._entries(part):
            start = 0
            while start < len(chunk):
                bad = codec.first_damaged(chunk[start:])
                end = len(chunk) if bad < 0 else start + bad
                for key, value in chunk[start:end]:
                    yield key, value[:-CHECK_BYTES]
                if bad >= 0:
                    self._bad_value(part, chunk[end][0])
                    end += 1
                start = end
            self.report.values_checked += len(chunk)
            self._checker.advance(len(chunk))

    def _map(self, part: str) -> Dict[bytes, bytes]:
        return dict(self._checked(part))

    def _vectors(self) -> Set[bytes]:
        """The label keys of every stored vector; each block's header and
        each of its vectors checked."""
        blocks = VectorBlocks(self._codecs["vectors"], self._config.dim)
        found: Set[bytes] = set()
        for chunk in self._entries("vectors"):
            for key, value in chunk:
                try:
                    labels, rows = blocks.open_block(key, value)
                except DamagedValue as damage:
                    self._damaged_block(blocks, int.from_bytes(key, "big"), damage.state, found)
                    continue
                found.update(label_keys(labels))
                start = 0
                while (bad := blocks.first_damaged(labels[start:], rows[start:])) >= 0:
                    self._bad_value("vectors", label_key(int(labels[start + bad])))
                    start += bad + 1
                self.report.values_checked += len(labels)
            self._checker.advance(len(chunk))
        return found

    def _damaged_block(self, blocks: VectorBlocks, block: int, state: str, found: Set[bytes]) -> None:
        """A block whose header is damaged: which of its vectors are stored
        is unknown, so each point it may hold is reported."""
        first, last = blocks.labels_in(block)
        self._problem(f"the header of the stored vectors of labels {first}..{last} is {state}")
        for label in range(first, last + 1):
            if label in self._ids_by_label:
                self._damaged(label_key(label), "vector", "the header of its vectors' block is damaged")
                found.add(label_key(label))

    def _payloads(self) -> Dict[bytes, Dict[str, Any]]:
        payloads = {}
        for key, value in self._checked("payloads"):
            try:
                payload = msgpack.unpackb(value, strict_map_key=False)
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                self._damaged(key, "payload", "its payload does not decode")
                continue
            payloads[key] = payload
        return payloads

    # ---- structures ----

    def _payload_index(self, payloads: Dict[bytes, Dict[str, Any]]) -> None:
        stored: Set[Tuple[bytes, bytes]] = set()
        for key, value in self._checked("payload-index"):
            if len(value) != LABEL_BYTES:
                self._problem(f"a payload-index entry under {key!r} has {len(value)} bytes")
                continue
            stored.add((key, value))
        expected: Set[Tuple[bytes, bytes]] = set()
        for label_bytes, payload in payloads.items():
            for field_path, kind in self._config.payload_indexes.items():
                try:
                    expected.update((key, label_bytes) for key in entry_keys(field_path, kind, payload))
                except ValueError:
                    self._damaged(label_bytes, "payload", f"its payload does not fit the {kind} index of "
                                                          f"{field_path!r}")
        for key, label_bytes in sorted(expected - stored):
            self._damaged(label_bytes, "payload index", f"the payload index lacks its entry {key!r}")
        for key, label_bytes in sorted(stored - expected):
            if _label(label_bytes) in self.report.damaged:
                continue  # its payload is damaged: what it calls for is unknown
            self._problem(f"the payload index holds an entry {key!r} for label {_label(label_bytes)} that no payload "
                          "calls for (drop_payload_index and create_payload_index rebuild it)")

    def _change_log(self) -> None:
        config = self._config
        last: Optional[Tuple[int, bytes]] = None
        for key, value in self._checked("changes"):
            sequence = int.from_bytes(key, "big")
            if not config.log_start <= sequence <= config.sequence:
                self._problem(f"change-log entry {sequence} lies outside the log ({config.log_start}.."
                              f"{config.sequence})")
            if len(value) < _FINGERPRINT_BYTES or (len(value) - _FINGERPRINT_BYTES) % LABEL_BYTES:
                self._problem(f"change-log entry {sequence} has an impossible length {len(value)}")
            last = sequence, value
        if last is not None and last[0] == config.sequence and \
                int.from_bytes(last[1][:_FINGERPRINT_BYTES], "little") != config.fingerprint:
            self._problem(f"the last change-log entry ({last[0]}) disagrees with the settings' fingerprint")

    def _quantizer(self) -> None:
        models = dict(self._checked("quantizer"))
        config = self._config
        if config.quantizer_version:
            try:
                ProductQuantizer.from_bytes(bytes(models[b"codebooks"]))
            except (KeyError, CorruptIndexError):
                self._problem("the PQ codebooks are missing or unreadable (Collection.train_quantizer() "
                              "trains new ones)")
        if config.rotation_version and b"rotation" in models:
            try:
                rotation_from_bytes(bytes(models[b"rotation"]), config.dim)
            except CorruptIndexError:
                self._problem("the PCA rotation is unreadable (Collection.learn_rotation() learns a new one)")

    # ---- findings ----

    def _bad_value(self, part: str, key: bytes) -> None:
        if part in ("vectors", "payloads", "labels") and len(key) == LABEL_BYTES:
            self._damaged(key, {"vectors": "vector", "payloads": "payload", "labels": "id"}[part],
                          "checksum mismatch")
        elif part == "ids":
            self._damaged_ids.append(bytes(key))  # named with its point once the label map is read
        elif part == "payload-index":
            self._problem(f"a payload-index entry under {key!r} is damaged (drop_payload_index and "
                          "create_payload_index rebuild it)")
        elif part == "changes":
            self._problem(f"change-log entry {_label(key)} is damaged")
        else:
            self._problem(f"the stored {bytes(key).decode(errors='replace')} are damaged (checksum mismatch)")

    def _damaged(self, label_bytes: bytes, what: str, why: str) -> None:
        label = int.from_bytes(label_bytes, "big")
        id_key = self._ids_by_label.get(label)
        point = None if id_key is None else _readable(id_key)
        entry = self.report.damaged.setdefault(label, (point, set()))
        entry[1].add(what)
        subject = f"point {point!r} (label {label})" if point is not None else f"the point with label {label}"
        self._problem(f"{subject}: {what}: {why}")

    def _problem(self, text: str) -> None:
        self._checker.problem(self._config.name, text)


def _label(key: bytes) -> int:
    return int.from_bytes(key, "big")


def _readable(id_key: bytes) -> Any:
    try:
        return user_id_from_key(bytes(id_key))
    except (ValueError, IndexError):
        return bytes(id_key)
