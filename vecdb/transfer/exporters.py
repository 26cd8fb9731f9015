"""Writing a collection's points to files (what ``vecdb export`` writes),
from pages of records, each file appearing only once complete (temporary
file, fsync, rename).

- JSONL: one point per line, ``{"id": ..., "payload": {...}, "vector": [...]}``;
- NPY: ``<stem>.npy`` (float32, rows x dim) and beside it ``<stem>.jsonl``
  with ``{"id": ..., "payload": {...}}`` per line, in the same order;
- Parquet: the table of :func:`vecdb.arrow.to_arrow` (``id``, ``vector``
  as fixed-size lists of float32, a column per payload key), built in
  memory, then written (needs pyarrow).

``vecdb import`` reads both back (:mod:`vecdb.transfer.importers`). Vectors are
written as the float32 values stored, so a round trip is exact.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterable, List, Tuple

import numpy as np

from vecdb._files import write_atomically
from vecdb.api import CollectionAPI
from vecdb.arrow import import_pyarrow, table_from_pages
from vecdb.records import Record

# Room for the header of any (rows, dim) float32 array: it is written before
# the row count is known and rewritten in place at the end.
_NPY_HEADER_BYTES = 128


def npy_export_paths(out: Path) -> Tuple[Path, Path]:
    """The vector and record files of an NPY export to ``out`` (a trailing
    ``.npy`` is dropped: ``dump`` and ``dump.npy`` both give dump.npy and
    dump.jsonl)."""
    stem = out.parent / out.name[: -len(".npy")] if out.name.lower().endswith(".npy") else out
    return stem.parent / f"{stem.name}.npy", stem.parent / f"{stem.name}.jsonl"


def write_jsonl(pages: Iterable[List[Record]], path: Path) -> int:
    """Write every record of ``pages`` (with vectors) as a JSON line; returns
    the number written."""
    written = 0

    def write(handle: BinaryIO) -> None:
        nonlocal written
        for page in pages:
            handle.write(b"".join(_json_line({"id": record.id, "payload": record.payload,
                                              "vector": _vector(record).tolist()}) for record in page))
            written += len(page)

    write_atomically(path, write)
    return written


def write_parquet(collection: CollectionAPI, pages: Iterable[List[Record]], path: Path) -> int:
    """Write every record of ``pages`` (with vectors and payloads) as one
    Parquet table; returns the number written."""
    import_pyarrow()
    import pyarrow.parquet  # a submodule pyarrow does not load itself

    table = table_from_pages(collection, pages)
    write_atomically(path, lambda handle: pyarrow.parquet.write_table(table, handle))
    return int(table.num_rows)


def _vector(record: Record) -> np.ndarray:
    assert isinstance(record.vector, np.ndarray), "exported pages are read with their vectors"
    return record.vector


def write_npy(pages: Iterable[List[Record]], vectors_path: Path, records_path: Path, dim: int) -> int:
    """Write the vectors of ``pages`` as one float32 ``.npy`` array and their
    ids and payloads as JSON lines, in the same order; returns the number
    written."""
    written = 0

    def write_vectors(vectors: BinaryIO) -> None:
        vectors.write(_npy_header(0, dim))

        def write_records(records: BinaryIO) -> None:
            nonlocal written
            for page in pages:
                if page:
                    vectors.write(np.stack([_vector(record) for record in page]).astype("<f4").tobytes())
                records.write(b"".join(_json_line({"id": record.id, "payload": record.payload}) for record in page))
                written += len(page)

        write_atomically(records_path, write_records)
        vectors.seek(0)
        vectors.write(_npy_header(written, dim))

    write_atomically(vectors_path, write_vectors)
    return written


def _npy_header(rows: int, dim: int) -> bytes:
    """A version 1.0 ``.npy`` header for a C-order little-endian float32
    ``(rows, dim)`` array, padded to a fixed size so that it can be
    rewritten in place once the row count is known."""
    magic = np.lib.format.magic(1, 0)
    fields = repr({"descr": "<f4", "fortran_order": False, "shape": (rows, dim)})
    text = fields.ljust(_NPY_HEADER_BYTES - len(magic) - 2 - 1) + "\n"
    return magic + struct.pack("<H", len(text)) + text.encode("latin1")


def _json_line(document: Dict[str, Any]) -> bytes:
    # ASCII output keeps ids with lone surrogates (which earlier versions accepted) writable.
    return json.dumps(document, ensure_ascii=True).encode("ascii") + b"\n"
