"""Reading points to import from files, a chunk at a time, with errors that
name the file and the row (0-based, as numpy counts) or line (1-based, as
editors count).

Vector files, by extension:

- ``.npy``: a 2-D array of numbers, memory-mapped;
- ``.fvecs``: the TEXMEX format (each row an int32 dimension, then that many
  float32), memory-mapped, every row's dimension checked;
- ``.hdf5`` / ``.h5``: a 2-D dataset of an ann-benchmarks file (``train``
  unless told otherwise), read slice by slice (needs h5py);
- ``.jsonl``: one point per line, ``{"id": ..., "vector": [...],
  "payload": {...}}`` (what ``vecdb export`` writes); ``id`` and
  ``payload`` may be left out.

A Parquet file (``.parquet``: the columns of :mod:`vecdb.arrow`, as
``vecdb export --format parquet`` writes them) carries ids, vectors and
payloads itself (:class:`ParquetPoints`; needs pyarrow).

Payload files are JSONL, one JSON object per line in the order of the
vectors (:class:`PayloadFile`). :func:`batches` joins the two into what one
``upsert`` takes.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple

import numpy as np

from vecdb.arrow import import_pyarrow
from vecdb.errors import DimensionMismatchError, InvalidArgumentError, VecdbError
from vecdb.records import UserId
from vecdb.storage.keys import check_user_id

VECTOR_EXTENSIONS = (".npy", ".fvecs", ".hdf5", ".h5", ".jsonl")
ARROW_EXTENSIONS = (".parquet",)
_NUMERIC_KINDS = "fiu"


@dataclass
class Chunk:
    """Consecutive points read from a vector file."""

    first_row: int
    vectors: np.ndarray
    ids: Optional[List[Any]] = None
    payloads: Optional[List[Optional[Dict[str, Any]]]] = None


@dataclass
class Batch:
    """What one upsert takes, and where in the source it came from."""

    first_row: int
    ids: List[UserId]
    vectors: np.ndarray
    payloads: Optional[List[Optional[Dict[str, Any]]]]


class VectorFile(ABC):
    """A file of ``rows`` vectors of dimension ``dim``, read in chunks."""

    path: Path
    rows: int
    dim: int

    def where(self, row: int) -> str:
        """How error messages name a row of this file."""
        return f"{self.path} row {row}"

    def chunks(self, size: int) -> Iterator[Chunk]:
        """Chunks of at most ``size`` points, float32 vectors checked finite."""
        for chunk in self._chunks(size):
            chunk.vectors = np.ascontiguousarray(chunk.vectors, dtype=np.float32)
            finite = np.isfinite(chunk.vectors).all(axis=1)
            if not finite.all():
                row = chunk.first_row + int(np.flatnonzero(~finite)[0])
                raise InvalidArgumentError(f"{self.where(row)} contains NaN or infinity "
                                           "(or a number too large for float32)")
            yield chunk

    @abstractmethod
    def _chunks(self, size: int) -> Iterator[Chunk]:
        """Chunks as read, before conversion and checks."""

    def close(self) -> None:
        """Release the file (memory maps go with the last array using them)."""


def open_vector_file(path: Path, dataset: Optional[str] = None) -> VectorFile:
    """The reader for ``path``, chosen by its extension; ``dataset`` names
    the HDF5 dataset (``train`` by default) and is refused for other kinds."""
    suffix = path.suffix.lower()
    if dataset is not None and suffix not in (".hdf5", ".h5"):
        raise InvalidArgumentError(f"{path}: a dataset name only applies to .hdf5 files")
    if suffix == ".npy":
        return NpyFile(path)
    if suffix == ".fvecs":
        return FvecsFile(path)
    if suffix in (".hdf5", ".h5"):
        return Hdf5File(path, dataset or "train")
    if suffix == ".jsonl":
        return JsonlPointFile(path)
    raise InvalidArgumentError(f"{path}: unknown extension {path.suffix or '(none)'!r}; "
                               f"vecdb imports {', '.join(VECTOR_EXTENSIONS + ARROW_EXTENSIONS)}")


def _check_matrix(path: Path, shape: Tuple[int, ...], dtype: np.dtype, what: str) -> None:
    if len(shape) != 2:
        raise DimensionMismatchError(f"{path}: {what} must be 2-D (rows x dimension), got shape {shape}")
    if shape[1] == 0:
        raise DimensionMismatchError(f"{path}: {what} has dimension 0")
    if dtype.kind not in _NUMERIC_KINDS:
        raise InvalidArgumentError(f"{path}: {what} holds {dtype}, not numbers")


class NpyFile(VectorFile):
    """A 2-D ``.npy`` array, memory-mapped (only the chunk being read is in RAM)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InvalidArgumentError(f"{path} is not a readable .npy array ({exc})") from None
        _check_matrix(path, self._array.shape, self._array.dtype, "the array")
        self.rows, self.dim = self._array.shape

    def _chunks(self, size: int) -> Iterator[Chunk]:
        for start in range(0, self.rows, size):
            yield Chunk(start, self._array[start:start + size])


class FvecsFile(VectorFile):
    """A TEXMEX ``.fvecs`` file, memory-mapped as int32 rows of ``1 + dim``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        size = path.stat().st_size
        if size < 4:
            raise InvalidArgumentError(f"{path} is empty: an .fvecs row starts with its int32 dimension")
        self.dim = int(np.fromfile(path, dtype="<i4", count=1)[0])
        if not 0 < self.dim <= 1 << 20:
            raise DimensionMismatchError(f"{self.where(0)} declares dimension {self.dim}; is this an .fvecs file?")
        row_bytes = 4 * (1 + self.dim)
        if size % row_bytes:
            raise InvalidArgumentError(
                f"{path}: {size:,} bytes is not a whole number of rows of dimension {self.dim} "
                f"({row_bytes} bytes each); the file is truncated or a row has another dimension")
        self.rows = size // row_bytes
        self._rows = np.memmap(path, dtype="<i4", mode="r", shape=(self.rows, 1 + self.dim))

    def _chunks(self, size: int) -> Iterator[Chunk]:
        for start in range(0, self.rows, size):
            block = self._rows[start:start + size]
            wrong = np.flatnonzero(block[:, 0] != self.dim)
            if len(wrong):
                row = start + int(wrong[0])
                raise DimensionMismatchError(f"{self.where(row)} declares dimension {int(block[wrong[0], 0])}; "
                                             f"row 0 declared {self.dim}")
            yield Chunk(start, block[:, 1:].view("<f4"))


class Hdf5File(VectorFile):
    """A 2-D dataset of an HDF5 file (ann-benchmarks: ``train``, ``test``...),
    read one slice per chunk."""

    def __init__(self, path: Path, dataset: str) -> None:
        try:
            import h5py  # optional: only HDF5 imports need it
        except ImportError:
            raise InvalidArgumentError(f"{path}: reading HDF5 files needs h5py (pip install h5py)") from None
        self.path = path
        try:
            self._file = h5py.File(path, "r")
        except OSError as exc:
            raise InvalidArgumentError(f"{path} is not a readable HDF5 file ({exc})") from None
        try:
            self._dataset = self._file.get(dataset)
            if not isinstance(self._dataset, h5py.Dataset):
                names = sorted(name for name, item in self._file.items() if isinstance(item, h5py.Dataset))
                raise InvalidArgumentError(f"{path} has no dataset {dataset!r}; it has "
                                           f"{', '.join(names) or 'none'} (choose one with --dataset)")
            _check_matrix(path, self._dataset.shape, self._dataset.dtype, f"dataset {dataset!r}")
        except VecdbError:
            self._file.close()
            raise
        self.rows, self.dim = self._dataset.shape

    def _chunks(self, size: int) -> Iterator[Chunk]:
        for start in range(0, self.rows, size):
            yield Chunk(start, self._dataset[start:start + size])

    def close(self) -> None:
        self._file.close()


class JsonlPointFile(VectorFile):
    """Points as JSON lines: ``{"id": ..., "vector": [...], "payload": {...}}``.
    Either every line has an id or none has (ids then come from row numbers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = _count_lines(path)
        self._handle = open(path, "rb")
        first = next(islice(_objects(self._handle, path), 1), None) if self.rows else None
        self._handle.seek(0)
        if first is None:
            raise InvalidArgumentError(f"{path} is empty: nothing to import")
        self.dim = len(self._vector_of(first, 0))
        self._with_ids = "id" in first

    def where(self, row: int) -> str:
        return f"{self.path} line {row + 1}"

    def _chunks(self, size: int) -> Iterator[Chunk]:
        objects = _objects(self._handle, self.path)
        start = 0
        while True:
            lines = list(islice(objects, size))
            if not lines:
                return
            vectors = np.empty((len(lines), self.dim), dtype=np.float32)
            payloads = []
            for offset, line in enumerate(lines):
                row = start + offset
                vectors[offset] = self._vector_of(line, row)
                payloads.append(_object_or_null(line, "payload", self.where(row)))
                if ("id" in line) != self._with_ids:
                    rule = ("has no \"id\"; line 1 has one, so every line needs one" if self._with_ids else
                            "has an \"id\"; line 1 has none, so ids are row numbers and no line may have one")
                    raise InvalidArgumentError(f"{self.where(row)}: {rule}")
            ids = [line["id"] for line in lines] if self._with_ids else None
            yield Chunk(start, vectors, ids, payloads)
            start += len(lines)

    def _vector_of(self, line: Dict[str, Any], row: int) -> np.ndarray:
        vector = line.get("vector")
        if not isinstance(vector, list) or not all(type(x) in (int, float) for x in vector):
            raise InvalidArgumentError(f"{self.where(row)}: \"vector\" must be a list of numbers")
        if row and len(vector) != self.dim:
            raise DimensionMismatchError(f"{self.where(row)}: the vector has dimension {len(vector)}; "
                                         f"line 1's has {self.dim}")
        if not vector:
            raise DimensionMismatchError(f"{self.where(row)}: the vector is empty")
        return np.asarray(vector, dtype=np.float32)

    def close(self) -> None:
        self._handle.close()


class ParquetPoints:
    """A Parquet file of points, read ``size`` rows at a time as an Arrow
    stream for :func:`vecdb.arrow.arrow_batches` (only the batch being read
    is in memory)."""

    def __init__(self, path: Path, vector_column: str) -> None:
        pa = import_pyarrow()
        import pyarrow.parquet  # a submodule pyarrow does not load itself

        self.path = path
        try:
            self._file = pyarrow.parquet.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidArgumentError(f"{path} is not a readable Parquet file ({exc})") from None
        self.rows = self._file.metadata.num_rows
        self.schema = self._file.schema_arrow
        self.dim = self._dim(pa, vector_column)

    def _dim(self, pa: Any, column: str) -> Optional[int]:
        """The dimension of a column of single vectors (None: a struct of
        named vectors, or no such column; reading says what is wrong)."""
        if column not in self.schema.names:
            return None
        kind = self.schema.field(column).type
        if pa.types.is_fixed_size_list(kind):
            return int(kind.list_size)
        if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and self.rows:
            first = next(self._file.iter_batches(batch_size=1, columns=[column])).column(0)[0]
            return len(first) if first.is_valid else None
        return None

    def stream(self, size: int) -> Any:
        """The rows as a ``pyarrow.RecordBatchReader`` of ``size``-row batches."""
        pa = import_pyarrow()
        return pa.RecordBatchReader.from_batches(self.schema, self._file.iter_batches(batch_size=size))

    def close(self) -> None:
        self._file.close()


class PayloadFile:
    """One JSON object per line, the payload of the vector of the same row.

    With ``id_field`` each line's value of that field is the point's id (and
    is left out of the payload); with ``payload_field`` the payload is that
    field's value (an object or null) instead of the whole line.
    """

    def __init__(self, path: Path, id_field: Optional[str] = None, payload_field: Optional[str] = None) -> None:
        self.path = path
        self.id_field = id_field
        self.payload_field = payload_field
        self.lines = _count_lines(path)
        self._handle = open(path, "rb")
        self._objects = _objects(self._handle, path)
        self._row = 0

    def read(self, count: int) -> Tuple[Optional[List[Any]], List[Optional[Dict[str, Any]]]]:
        """The ids (None without ``id_field``) and payloads of the next
        ``count`` lines."""
        ids: List[Any] = []
        payloads: List[Optional[Dict[str, Any]]] = []
        for line in islice(self._objects, count):
            where = f"{self.path} line {self._row + 1}"
            self._row += 1
            if self.id_field is not None:
                if self.id_field not in line:
                    raise InvalidArgumentError(f"{where} has no {self.id_field!r} field for the id")
                ids.append(line[self.id_field] if self.payload_field else line.pop(self.id_field))
            payloads.append(line if self.payload_field is None else _object_or_null(line, self.payload_field, where))
        return (ids if self.id_field is not None else None), payloads

    def close(self) -> None:
        self._handle.close()


def batches(vectors: VectorFile, payloads: Optional[PayloadFile], size: int, start_id: int) -> Iterator[Batch]:
    """Upsert-sized batches of ids, vectors and payloads. Ids come from the
    vector file (JSONL), else the payload file's id field, else row numbers
    plus ``start_id``. Ids read from files are checked and must be unique in
    the whole import: a repeat is an error naming both places, never a
    silent replacement."""
    seen: Dict[UserId, int] = {}
    for chunk in vectors.chunks(size):
        ids, chunk_payloads = chunk.ids, chunk.payloads
        if payloads is not None:
            ids, chunk_payloads = payloads.read(len(chunk.vectors))
        if ids is None:
            ids = list(range(start_id + chunk.first_row, start_id + chunk.first_row + len(chunk.vectors)))
        else:
            where = payloads.path if payloads is not None and payloads.id_field else vectors.path
            ids = _checked_ids(ids, chunk.first_row, where, seen)
        yield Batch(chunk.first_row, ids, chunk.vectors, chunk_payloads)


def _checked_ids(ids: List[Any], first_row: int, where: Path, seen: Dict[UserId, int]) -> List[UserId]:
    checked = []
    for row, value in enumerate(ids, start=first_row):
        try:
            user_id = check_user_id(value)
        except VecdbError as exc:
            raise type(exc)(f"{where} line {row + 1}: {exc}") from None
        earlier = seen.setdefault(user_id, row)
        if earlier != row:
            raise InvalidArgumentError(f"{where} line {row + 1}: id {user_id!r} already appeared on line "
                                       f"{earlier + 1}; ids must be unique")
        checked.append(user_id)
    return checked


def _count_lines(path: Path) -> int:
    """Lines in a text file (a last line without a newline counts)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _object_or_null(line: Dict[str, Any], field: str, where: str) -> Optional[Dict[str, Any]]:
    value = line.get(field)
    if value is not None and not isinstance(value, dict):
        raise InvalidArgumentError(f"{where}: {field!r} must be an object or null, got {type(value).__name__}")
    return value


def _objects(handle: BinaryIO, path: Path) -> Iterator[Dict[str, Any]]:
    """Each line parsed as a JSON object; anything else is an error naming the line."""
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            raise InvalidArgumentError(f"{path} line {number} is empty; every line must be a JSON object")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{path} line {number} is not valid JSON ({exc.msg} at column "
                                       f"{exc.colno})") from None
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"{path} line {number} is not UTF-8 text") from None
        if not isinstance(value, dict):
            raise InvalidArgumentError(f"{path} line {number} is a JSON {type(value).__name__}, "
                                       "not an object")
        yield value
