"""Points in and out as Apache Arrow tables and pandas DataFrames (needs
pyarrow: ``pip install 'vecdb-engine[arrow]'``), for every backend: written
on :meth:`CollectionAPI.upsert` and :meth:`CollectionAPI.scroll` alone, so
the HTTP client and a cluster share it with the embedded database (this
module imports neither the native core nor LMDB).

The table's shape, both ways:

- ``id``: integers or strings, one per row, never null;
- ``vector``: ``fixed_size_list<float32>[dim]`` (a ``list`` of numbers of
  equal lengths is read too). A float32 column becomes the ``(n, dim)``
  numpy array ``upsert`` takes without a copy, and an exported one is one
  numpy array without a copy. A collection with named vectors has one
  ``struct`` column instead, a field per vector name, null where a point
  lacks that vector;
- ``document``: optional, strings (null: no document);
- every payload key a column of its own (what a DataFrame user filters and
  plots, and what LanceDB tables look like), null where a point lacks the
  key. A key whose values Arrow cannot hold as one type without changing
  them (an integer in one point and a string in another, objects with
  different keys) is a column of JSON text, marked in the field's metadata
  (``vecdb.encoding: json``), and decoded again on the way in, so a round
  trip, through Parquet too, gives back the same payloads. A null value is
  an absent key: a payload key holding JSON null does not come back.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from vecdb.errors import DimensionMismatchError, DuplicateIdError, InvalidArgumentError, InvalidDTypeError
from vecdb.records import Record, UserId

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from vecdb.api import CollectionAPI

INSTALL_HINT = "pip install 'vecdb-engine[arrow]'"
# The field metadata marking a column of JSON text (values Arrow could not hold as one type).
ENCODING_KEY, JSON_ENCODING = b"vecdb.encoding", b"json"
ID_COLUMN, VECTOR_COLUMN, DOCUMENT_COLUMN = "id", "vector", "document"
DEFAULT_BATCH_SIZE = 1000


def import_pyarrow() -> Any:
    """The pyarrow module, or an error saying which extra installs it."""
    try:
        import pyarrow
        import pyarrow.compute  # list lengths: a submodule pyarrow does not load itself
    except ImportError:
        raise InvalidArgumentError(f"Arrow tables and DataFrames need pyarrow: {INSTALL_HINT}") from None
    return pyarrow


@dataclass
class ArrowBatch:
    """What one ``upsert`` takes, read from rows ``first_row`` onward of a
    table: ``vectors`` an ``(n, dim)`` float32 array, or ``{name: array or
    list with None per id}`` for named vectors."""

    first_row: int
    ids: List[UserId]
    vectors: Any
    payloads: Optional[List[Optional[Dict[str, Any]]]]
    documents: Optional[List[Optional[str]]]


VectorColumns = Union[str, Mapping[str, str]]


def upsert_arrow(collection: CollectionAPI, table: Any, *, id: str = ID_COLUMN, vector: VectorColumns = VECTOR_COLUMN,
                 payload: Optional[Sequence[str]] = None, document: Optional[str] = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """:meth:`CollectionAPI.upsert_arrow`: one ``upsert`` per batch of
    :func:`arrow_batches`; returns the number of rows upserted."""
    upserted = 0
    try:
        for batch in arrow_batches(collection, table, id=id, vector=vector, payload=payload, document=document,
                                   batch_size=batch_size):
            upsert_batch(collection, batch)
            upserted += len(batch.ids)
    except InvalidArgumentError as exc:
        raise written_before(exc, upserted) from None
    return upserted


def written_before(error: InvalidArgumentError, upserted: int) -> InvalidArgumentError:
    """``error``, saying that the first ``upserted`` rows were written."""
    if not upserted:
        return error
    return type(error)(f"{error} (rows 0-{upserted - 1} were written before this batch; this batch and the rest "
                       "were not: upserting the table again after fixing it replaces those rows, not duplicating "
                       "them)")


def upsert_batch(collection: CollectionAPI, batch: ArrowBatch) -> None:
    """One all-or-nothing upsert; its errors say which rows of the table it
    held."""
    with rows_of(batch):
        collection.upsert(batch.ids, batch.vectors, batch.payloads, documents=batch.documents)


@contextmanager
def rows_of(batch: ArrowBatch) -> Iterator[None]:
    """An error of the upsert of ``batch`` says which rows of the table it held."""
    try:
        yield
    except InvalidArgumentError as exc:
        raise type(exc)(f"rows {batch.first_row}-{batch.first_row + len(batch.ids) - 1}: {exc}") from None


def arrow_batches(collection: CollectionAPI, table: Any, *, id: str = ID_COLUMN,
                  vector: VectorColumns = VECTOR_COLUMN, payload: Optional[Sequence[str]] = None,
                  document: Optional[str] = None, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[ArrowBatch]:
    """The rows of ``table`` (see :meth:`CollectionAPI.upsert_arrow`) as
    upsert-sized batches for ``collection``. The columns and their types are
    checked against the collection before the first batch; rows (nulls,
    ragged vectors, ids repeated anywhere in the table) as their batch is
    read."""
    pa = import_pyarrow()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")
    schema, tables = _table_stream(pa, table, batch_size)
    columns = _Columns.check(pa, schema, collection, id, vector, payload, document)
    seen: Dict[UserId, int] = {}
    first_row = 0
    for part in tables:
        if part.num_rows:
            yield columns.read(pa, part, first_row, seen)
            first_row += part.num_rows


def to_arrow(collection: CollectionAPI, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
             with_payload: bool = True, with_document: bool = False) -> pyarrow.Table:
    """:meth:`CollectionAPI.to_arrow`: every page of ``scroll``, as one table."""
    pages = scroll_pages(collection, filter, with_vector=with_vector, with_payload=with_payload,
                         with_document=with_document)
    return table_from_pages(collection, pages, with_vector=with_vector, with_payload=with_payload,
                            with_document=with_document)


def to_pandas(collection: CollectionAPI, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
              with_payload: bool = True, with_document: bool = False) -> pandas.DataFrame:
    """:meth:`CollectionAPI.to_pandas`: :func:`to_arrow` as a DataFrame,
    integer and boolean columns with pandas' nullable types (a missing value
    is ``<NA>``, not NaN turning the column's integers into floats)."""
    table = to_arrow(collection, filter, with_vector=with_vector, with_payload=with_payload,
                     with_document=with_document)
    return dataframe(table)


def dataframe(table: pyarrow.Table) -> pandas.DataFrame:
    """``table`` as a DataFrame, integer and boolean columns with pandas'
    nullable types (a missing value is ``<NA>``, not NaN turning the
    column's integers into floats)."""
    pa = import_pyarrow()
    try:
        import pandas
    except ImportError:
        raise InvalidArgumentError(f"to_pandas needs pandas: {INSTALL_HINT.replace('arrow', 'pandas')}") from None
    nullable = {pa.bool_(): pandas.BooleanDtype(), pa.int8(): pandas.Int8Dtype(), pa.int16(): pandas.Int16Dtype(),
                pa.int32(): pandas.Int32Dtype(), pa.int64(): pandas.Int64Dtype(), pa.uint8(): pandas.UInt8Dtype(),
                pa.uint16(): pandas.UInt16Dtype(), pa.uint32(): pandas.UInt32Dtype(), pa.uint64(): pandas.UInt64Dtype()}
    return table.to_pandas(types_mapper=nullable.get)


def scroll_pages(collection: CollectionAPI, filter: Optional[Dict[str, Any]] = None, *, with_vector: bool = True,
                 with_payload: bool = True, with_document: bool = False,
                 page_size: int = DEFAULT_BATCH_SIZE) -> Iterator[List[Record]]:
    """Every point matching ``filter``, a ``scroll`` page at a time."""
    cursor = None
    while True:
        records, cursor = collection.scroll(filter, page_size, cursor, with_payload=with_payload,
                                            with_vector=with_vector, with_document=with_document)
        yield records
        if cursor is None:
            return


def table_from_pages(collection: CollectionAPI, pages: Iterable[List[Record]], *, with_vector: bool = True,
                     with_payload: bool = True, with_document: bool = False) -> pyarrow.Table:
    """One table of the records of ``pages`` (read with the same flags)."""
    pa = import_pyarrow()
    records = [record for page in pages for record in page]
    columns: Dict[str, Any] = {ID_COLUMN: _value_column(pa, [record.id for record in records])}
    if with_vector:
        columns[VECTOR_COLUMN] = _vector_column(pa, collection, records)
    if with_document:
        columns[DOCUMENT_COLUMN] = pa.array([record.document for record in records], pa.string()), None
    if with_payload:
        for key, values in _payload_values(records).items():
            if key in columns:
                raise InvalidArgumentError(
                    f"payload key {key!r} has the name of the {key!r} column; a table of these points cannot hold "
                    "both (export without payloads, or rename the key with update_payload)")
            columns[key] = _value_column(pa, values)
    return pa.table({name: array for name, (array, _) in columns.items()},
                    schema=pa.schema([pa.field(name, array.type, metadata=metadata)
                                      for name, (array, metadata) in columns.items()]))


# ---- reading tables ----


def _table_stream(pa: Any, table: Any, batch_size: int) -> Tuple[Any, Iterator[Any]]:
    """The schema of ``table`` and its rows as tables of at most
    ``batch_size`` rows (slices: no data copied)."""
    pandas = sys.modules.get("pandas")  # an object can only be a DataFrame if pandas is loaded
    if pandas is not None and isinstance(table, pandas.DataFrame):
        # A named index is data (set_index("id")); a default RangeIndex is only row numbers.
        named = any(name is not None for name in table.index.names)
        try:
            table = pa.Table.from_pandas(table, preserve_index=named)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # e.g. an object column of ints and strings
            raise InvalidDTypeError(f"the DataFrame does not convert to an Arrow table: {exc}") from None
    elif isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    elif not isinstance(table, (pa.Table, pa.RecordBatchReader)):
        if not hasattr(table, "__arrow_c_stream__"):
            raise InvalidDTypeError(
                "upsert_arrow takes a pyarrow.Table, RecordBatch or RecordBatchReader, a pandas.DataFrame, or an "
                f"object with __arrow_c_stream__ (a polars DataFrame, a DuckDB result...), got {type(table).__name__}")
        table = pa.RecordBatchReader.from_stream(table)
    if isinstance(table, pa.Table):
        return table.schema, _slices(table, batch_size)
    return table.schema, (piece for batch in table for piece in _slices(pa.Table.from_batches([batch]), batch_size))


def _slices(table: Any, size: int) -> Iterator[Any]:
    for start in range(0, table.num_rows, size):
        yield table.slice(start, size)


def _one_array(pa: Any, column: Any) -> Any:
    """A table column as one array: the chunk itself when there is one."""
    if column.num_chunks == 1:
        return column.chunk(0)
    return pa.concat_arrays(column.chunks) if column.num_chunks else pa.array([], column.type)


@dataclass
class _Columns:
    """The columns an import reads, checked against a collection's schema."""

    id: str
    id_json: bool
    vectors: Dict[Optional[str], Tuple[str, int]]  # vector name (None: unnamed) -> (column or struct.field, dim)
    named_struct: Optional[str]  # the struct column of named vectors, if they come as one
    payload: List[Tuple[str, bool]]  # (column, holds JSON text)
    document: Optional[str]

    @classmethod
    def check(cls, pa: Any, schema: Any, collection: CollectionAPI, id: str, vector: VectorColumns,
              payload: Optional[Sequence[str]], document: Optional[str]) -> "_Columns":
        fields = {field.name: field for field in schema}

        def field_of(name: Any, role: str) -> Any:
            if not isinstance(name, str):
                raise InvalidArgumentError(f"{role} must be a column name (a str), got {name!r}")
            if name not in fields:
                raise InvalidArgumentError(f"the table has no {role} column {name!r}; its columns are "
                                           f"{', '.join(map(repr, fields)) or 'none'}")
            return fields[name]

        id_field = field_of(id, "id")
        id_json = _is_json(id_field)
        if not (id_json or _is_integer(pa, id_field.type) or _is_text(pa, id_field.type)):
            raise InvalidDTypeError(f"column {id!r} holds {id_field.type}: ids are integers or strings")
        used = {id}
        vectors: Dict[Optional[str], Tuple[str, int]] = {}
        named_struct = None
        if collection.vectors:
            if isinstance(vector, str):
                struct = field_of(vector, "vector")
                if not pa.types.is_struct(struct.type):
                    raise InvalidDTypeError(
                        f"collection {collection.name!r} has named vectors ({', '.join(collection.vectors)}): column "
                        f"{vector!r} must be a struct with a field per vector name (as to_arrow writes it), or pass "
                        f"vector={{name: column}}; it holds {struct.type}")
                named_struct, used = vector, used | {vector}
                members = {struct.type.field(i).name: struct.type.field(i) for i in range(struct.type.num_fields)}
                mapping = {name: name for name in members}
            else:
                mapping = dict(vector)
                members = {name: field_of(column, f"vector {name!r}") for name, column in mapping.items()}
                used |= set(mapping.values())
            for name, column in mapping.items():
                if name not in collection.vectors:
                    raise InvalidArgumentError(f"collection {collection.name!r} has no vector {name!r}; its vectors "
                                               f"are {', '.join(map(repr, collection.vectors))}")
                where = f"{named_struct}.{name}" if named_struct else column
                _check_vector_type(pa, members[name], where, collection.vectors[name].dim, collection.name)
                vectors[name] = (where, collection.vectors[name].dim)
        else:
            if not isinstance(vector, str):
                raise InvalidArgumentError(f"collection {collection.name!r} has one unnamed vector: vector must be "
                                           f"a column name, got {vector!r}")
            _check_vector_type(pa, field_of(vector, "vector"), vector, collection.dim, collection.name)
            vectors[None] = (vector, collection.dim)
            used.add(vector)
        if document is not None:
            document_field = field_of(document, "document")
            if not _is_text(pa, document_field.type) and not pa.types.is_null(document_field.type):
                raise InvalidDTypeError(f"column {document!r} holds {document_field.type}: documents are strings")
            used.add(document)
        if payload is None:
            names = [name for name in fields if name not in used]
        elif isinstance(payload, str):
            raise InvalidArgumentError(f"payload is a list of column names, got the string {payload!r}")
        else:
            names = list(payload)
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"payload names a column twice: {names!r}")
        for name in names:
            payload_field = field_of(name, "payload")
            _check_json_like(pa, payload_field.type, name)
        return cls(id, id_json, vectors, named_struct,
                   [(name, _is_json(fields[name])) for name in names], document)

    def read(self, pa: Any, table: Any, first_row: int, seen: Dict[UserId, int]) -> ArrowBatch:
        ids = self._ids(pa, table, first_row, seen)
        vectors: Any
        if None in self.vectors:
            column, dim = self.vectors[None]
            vectors = vector_matrix(pa, _one_array(pa, table.column(column)), dim, column, first_row)
        else:
            vectors = self._named_vectors(pa, table, first_row)
        payloads: Optional[List[Optional[Dict[str, Any]]]] = None
        if self.payload:
            rows: List[Dict[str, Any]] = [{} for _ in range(table.num_rows)]
            for name, is_json in self.payload:
                for row, value in zip(rows, table.column(name).to_pylist()):
                    if value is not None:  # a null cell: the point lacks the key
                        row[name] = json.loads(value) if is_json else value
            payloads = list(rows)
        documents = None if self.document is None else table.column(self.document).to_pylist()
        return ArrowBatch(first_row, ids, vectors, payloads, documents)

    def _ids(self, pa: Any, table: Any, first_row: int, seen: Dict[UserId, int]) -> List[UserId]:
        column = table.column(self.id)
        if column.null_count:
            row = first_row + _first_null(pa, _one_array(pa, column))
            raise InvalidArgumentError(f"column {self.id!r} has a null id at row {row}")
        ids = column.to_pylist()
        if self.id_json:
            ids = [json.loads(value) for value in ids]
        for row, user_id in enumerate(ids, start=first_row):
            earlier = seen.setdefault(user_id, row)
            if earlier != row:
                raise DuplicateIdError(f"column {self.id!r}: id {user_id!r} at row {row} already appeared at row "
                                       f"{earlier}; ids must be unique")
        return ids

    def _named_vectors(self, pa: Any, table: Any, first_row: int) -> Dict[str, Any]:
        given: Dict[str, Any] = {}
        members: Dict[str, Any] = {}
        if self.named_struct is not None:
            struct = _one_array(pa, table.column(self.named_struct))
            # flatten(): each field's rows of this slice, null too where the whole struct row is
            members = {struct.type.field(index).name: array for index, array in enumerate(struct.flatten())}
        for name, (where, dim) in self.vectors.items():
            assert name is not None
            array = members[name] if self.named_struct is not None else _one_array(pa, table.column(where))
            if not array.null_count:
                given[name] = vector_matrix(pa, array, dim, where, first_row)
                continue
            present = np.asarray(array.is_valid().to_numpy(zero_copy_only=False))
            rows = vector_matrix(pa, array.filter(pa.array(present)), dim, where, first_row)
            row_of = iter(rows)
            given[name] = [next(row_of) if has else None for has in present]
        return given


def vector_matrix(pa: Any, array: Any, dim: int, column: str, first_row: int = 0) -> np.ndarray:
    """A list or fixed-size-list array of ``dim`` numbers per row, without
    nulls, as an ``(n, dim)`` float32 array: a view of the Arrow buffer when
    it holds float32 (no copy), else converted."""
    if array.null_count:
        raise InvalidArgumentError(f"column {column!r} has a null vector at row {first_row + _first_null(pa, array)}")
    if not pa.types.is_fixed_size_list(array.type):
        lengths = pa.compute.list_value_length(array).to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero(lengths != dim)
        if len(wrong):
            row = int(wrong[0])
            if (lengths == lengths[0]).all():
                raise DimensionMismatchError(f"column {column!r} has vectors of dimension {int(lengths[0])}; the "
                                             f"collection's have {dim}")
            raise InvalidArgumentError(f"column {column!r} is ragged: the vector at row {first_row + row} has "
                                       f"{int(lengths[row])} values, where the collection's vectors have {dim}")
    values = array.flatten()  # the rows' values only: a slice of the child array, no copy
    if values.null_count:
        row = first_row + _first_null(pa, values) // dim
        raise InvalidArgumentError(f"column {column!r}: the vector at row {row} holds a null value")
    if pa.types.is_float32(values.type):
        flat = values.to_numpy(zero_copy_only=True)
    else:
        flat = values.to_numpy(zero_copy_only=False).astype(np.float32)
    return flat.reshape(len(array), dim)


def _check_vector_type(pa: Any, field: Any, column: str, dim: int, collection: str) -> None:
    kind = field.type
    if not (pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        raise InvalidDTypeError(f"column {column!r} holds {kind}: vectors are fixed-size lists (or lists) of numbers")
    item = kind.value_type
    if not (pa.types.is_floating(item) or pa.types.is_integer(item)):
        raise InvalidDTypeError(f"column {column!r} holds lists of {item}: vectors are lists of numbers")
    if pa.types.is_fixed_size_list(kind) and kind.list_size != dim:
        raise DimensionMismatchError(f"column {column!r} has vectors of dimension {kind.list_size}; collection "
                                     f"{collection!r} has dimension {dim}")


def _check_json_like(pa: Any, kind: Any, column: str) -> None:
    """Refuse a payload column whose values are not JSON (timestamps,
    binary, decimals...), naming it, before anything is written."""
    types = pa.types
    if types.is_dictionary(kind):
        return _check_json_like(pa, kind.value_type, column)
    if types.is_null(kind) or types.is_boolean(kind) or types.is_integer(kind) or types.is_floating(kind) or \
            _is_text(pa, kind):
        return None
    if types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind):
        return _check_json_like(pa, kind.value_type, column)
    if types.is_struct(kind):
        for index in range(kind.num_fields):
            _check_json_like(pa, kind.field(index).type, column)
        return None
    raise InvalidDTypeError(f"column {column!r} holds {kind}: payloads are JSON (numbers, strings, booleans, lists "
                            "and objects); cast the column (for example to string) or leave it out with payload=[...]")


def _is_text(pa: Any, kind: Any) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text(pa, kind.value_type)
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or
                getattr(pa.types, "is_string_view", lambda _: False)(kind))


def _is_integer(pa: Any, kind: Any) -> bool:
    return bool(pa.types.is_integer(kind) or (pa.types.is_dictionary(kind) and pa.types.is_integer(kind.value_type)))


def _is_json(field: Any) -> bool:
    return bool((field.metadata or {}).get(ENCODING_KEY) == JSON_ENCODING)


def _first_null(pa: Any, array: Any) -> int:
    return int(np.flatnonzero(~np.asarray(array.is_valid().to_numpy(zero_copy_only=False)))[0])


# ---- writing tables ----


def _vector_column(pa: Any, collection: CollectionAPI, records: List[Record]) -> Tuple[Any, Optional[Dict[bytes, bytes]]]:
    if not collection.vectors:
        return _fixed_size_lists(pa, [record.vector for record in records], collection.dim), None
    names = list(collection.vectors)
    arrays = [_fixed_size_lists(pa, [_named(record).get(name) for record in records], collection.vectors[name].dim)
              for name in names]
    return pa.StructArray.from_arrays(arrays, names=names), None


def _named(record: Record) -> Dict[str, Any]:
    assert isinstance(record.vector, dict), "records of named vectors carry {name: vector}"
    return record.vector


def _fixed_size_lists(pa: Any, vectors: List[Any], dim: int) -> Any:
    """The vectors (None: a point without one) stacked into one array, as
    :func:`fixed_size_list_array`."""
    present = np.array([vector is not None for vector in vectors], dtype=bool)
    if present.all():
        matrix = np.stack(vectors).astype(np.float32, copy=False) if vectors else np.empty((0, dim), np.float32)
        return fixed_size_list_array(pa, matrix)
    matrix = np.zeros((len(vectors), dim), dtype=np.float32)
    if present.any():
        matrix[present] = np.stack([vector for vector in vectors if vector is not None])
    return fixed_size_list_array(pa, matrix, present)


def fixed_size_list_array(pa: Any, matrix: np.ndarray, present: Optional[np.ndarray] = None) -> Any:
    """``fixed_size_list<float32>[dim]`` over the buffer of ``matrix``, a
    C-contiguous ``(n, dim)`` float32 array (Arrow takes it without a copy);
    null where ``present`` (a boolean per row) is False."""
    rows, dim = matrix.shape
    values = pa.array(matrix.reshape(-1))
    validity = None if present is None else pa.array(present).buffers()[1]
    return pa.Array.from_buffers(pa.list_(pa.float32(), dim), rows, [validity], children=[values])


def _payload_values(records: List[Record]) -> Dict[str, List[Any]]:
    """Each payload key (in order of first appearance) and its value per
    record (None where it has none)."""
    keys: Dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record.payload or ()))
    return {key: [(record.payload or {}).get(key) for record in records] for key in keys}


def _value_column(pa: Any, values: List[Any]) -> Tuple[Any, Optional[Dict[bytes, bytes]]]:
    """The Arrow array of ``values`` when Arrow holds them unchanged; else
    their JSON text, marked so that reading decodes it."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        array = None
    if array is not None and _kept(pa, array, values):
        return array, None
    text = [None if value is None else json.dumps(value, ensure_ascii=False) for value in values]
    return pa.array(text, pa.string()), {ENCODING_KEY: JSON_ENCODING}


def _kept(pa: Any, array: Any, values: List[Any]) -> bool:
    """Whether ``array`` gives ``values`` back exactly (an inferred type may
    turn integers into floats, or give objects the union of their keys)."""
    kind = array.type
    if pa.types.is_struct(kind) and kind.num_fields == 0:
        return False  # empty objects: Parquet cannot store a struct without fields
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind) or _is_text(pa, kind) or pa.types.is_null(kind):
        return True
    if pa.types.is_floating(kind):
        return not any(type(value) is int for value in values)
    return all(_identical(value, back) for value, back in zip(values, array.to_pylist()))


def _identical(value: Any, back: Any) -> bool:
    """Equal and of the same types throughout (1 and 1.0 are not)."""
    if type(value) is not type(back):
        return False
    if isinstance(value, dict):
        return value.keys() == back.keys() and all(_identical(value[key], back[key]) for key in value)
    if isinstance(value, list):
        return len(value) == len(back) and all(map(_identical, value, back))
    return bool(value == back or (value != value and back != back))  # NaN == NaN here
