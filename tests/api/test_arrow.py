"""Arrow tables and pandas DataFrames in and out (vecdb.arrow), on every
backend (the ``db`` fixture): ``upsert_arrow`` stores exactly the ids,
vectors and payloads the table holds (checked with ``get`` against the
numpy and dict originals), ``to_arrow`` gives them back in a table that
reads back unchanged (through Parquet too), named vectors travel as a
struct column, bad input is refused naming the column before anything is
written (a bad row: at its batch), and float32 vectors cross without a
copy."""

from __future__ import annotations


import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")

import vecdb  # noqa: E402
from vecdb import arrow  # noqa: E402
from vecdb.errors import DimensionMismatchError, DuplicateIdError, InvalidArgumentError, InvalidDTypeError  # noqa: E402

N, DIM = 230, 7


def payload_of(i):
    """Payloads with what Arrow infers cleanly (ints, strings, lists,
    objects with the same keys), keys some points lack, and one key whose
    values share no Arrow type."""
    payload = {"n": i, "title": f"doc {i}", "tags": ["even" if i % 2 == 0 else "odd"] * (i % 3),
               "meta": {"page": i % 5, "lang": "en"}}
    if i % 4:
        payload["score"] = i / 8
    payload["mixed"] = [i, str(i), {"i": i}, [i, "x"]][i % 4]  # an int, a string, an object, a list
    return payload


@pytest.fixture
def points():
    rng = np.random.default_rng(20)
    ids = [f"p{i}" for i in range(N)]
    return ids, rng.standard_normal((N, DIM)).astype(np.float32), [payload_of(i) for i in range(N)]


def table_of(ids, vectors, payloads, **extra):
    columns = {"id": ids, "vector": arrow.fixed_size_list_array(pa, vectors)}
    keys = dict.fromkeys(key for payload in payloads for key in payload if key != "mixed")
    columns.update({key: [payload.get(key) for payload in payloads] for key in keys})
    columns.update(extra)
    return pa.table(columns)


def assert_stored(collection, ids, vectors, payloads):
    records = collection.get(ids, with_vector=True)
    assert [record.id for record in records] == list(ids)
    np.testing.assert_array_equal(np.stack([record.vector for record in records]), vectors)
    for record, payload in zip(records, payloads):
        assert record.payload == payload
        assert {key: type(value) for key, value in record.payload.items()} == \
            {key: type(value) for key, value in payload.items()}


def without_mixed(payloads):
    return [{key: value for key, value in payload.items() if key != "mixed"} for payload in payloads]


def test_upsert_arrow_stores_the_tables_points_in_batches(db, points):
    ids, vectors, payloads = points
    docs = db.create_collection("docs", dim=DIM)
    assert docs.upsert_arrow(table_of(ids, vectors, payloads), batch_size=100) == N
    assert docs.count() == N
    assert_stored(docs, ids, vectors, without_mixed(payloads))


def test_to_arrow_round_trips_through_parquet(db, points, tmp_path):
    ids, vectors, payloads = points
    docs = db.create_collection("docs", dim=DIM)
    docs.upsert(ids, vectors, payloads)
    table = docs.to_arrow()
    assert table.column_names == ["id", "vector", "n", "title", "tags", "meta", "mixed", "score"]
    assert table.schema.field("vector").type == pa.list_(pa.float32(), DIM)
    assert table.column("vector").num_chunks == 1
    np.testing.assert_array_equal(table.column("vector").chunk(0).flatten().to_numpy().reshape(N, DIM), vectors)
    assert table.column("id").to_pylist() == ids
    assert table.schema.field("n").type == pa.int64() and table.schema.field("meta").type.num_fields == 2
    assert table.schema.field("mixed").metadata == {b"vecdb.encoding": b"json"}  # no one Arrow type fits
    pq.write_table(table, tmp_path / "docs.parquet")
    copy = db.create_collection("copy", dim=DIM)
    assert copy.upsert_arrow(pq.read_table(tmp_path / "docs.parquet")) == N
    assert_stored(copy, ids, vectors, payloads)
    assert copy.to_arrow().equals(table)


def test_to_arrow_takes_a_filter_and_leaves_out_what_is_not_asked(db, points):
    ids, vectors, payloads = points
    docs = db.create_collection("docs", dim=DIM)
    docs.upsert(ids, vectors, payloads)
    table = docs.to_arrow({"n": {"$lt": 10}}, with_vector=False)
    assert table.column_names == ["id", "n", "title", "tags", "meta", "mixed", "score"]
    assert table.column("id").to_pylist() == ids[:10]
    assert docs.to_arrow(with_payload=False).column_names == ["id", "vector"]
    empty = docs.to_arrow({"n": {"$lt": 0}})
    assert empty.num_rows == 0 and empty.schema.field("vector").type == pa.list_(pa.float32(), DIM)


def test_ids_of_both_kinds_travel_as_json_text(db):
    docs = db.create_collection("docs", dim=2)
    docs.upsert([1, "1", 2], np.eye(3, 2, dtype=np.float32))
    table = docs.to_arrow()
    assert table.schema.field("id").metadata == {b"vecdb.encoding": b"json"}
    copy = db.create_collection("copy", dim=2)
    copy.upsert_arrow(table)
    assert [record.id for record in copy.scroll()[0]] == [1, "1", 2]


def test_dataframes_in_and_out(db, points):
    ids, vectors, payloads = points
    docs = db.create_collection("docs", dim=DIM)
    frame = pd.DataFrame({"id": ids, "vector": list(vectors.astype(np.float64)),
                          "n": [payload["n"] for payload in payloads],
                          "score": [payload.get("score", np.nan) for payload in payloads]})
    assert docs.upsert_arrow(frame) == N
    expected = [{"n": payload["n"], **({"score": payload["score"]} if "score" in payload else {})}
                for payload in payloads]
    assert_stored(docs, ids, vectors, expected)  # NaN is a missing value, float64 vectors become float32
    out = docs.to_pandas()
    assert list(out.columns) == ["id", "vector", "n", "score"]
    assert str(out["n"].dtype) == "Int64" and out["n"].tolist() == list(range(N))
    np.testing.assert_array_equal(np.stack(out["vector"].to_list()), vectors)
    indexed = db.create_collection("indexed", dim=DIM)
    assert indexed.upsert_arrow(out.set_index("id")) == N  # a named index is the id column
    assert_stored(indexed, ids, vectors, expected)


def test_lists_of_equal_length_and_other_inputs_are_read(db, points):
    ids, vectors, payloads = points
    docs = db.create_collection("docs", dim=DIM)
    lists = pa.table({"key": ids, "embedding": pa.array(vectors.tolist(), pa.list_(pa.float64()))})
    assert docs.upsert_arrow(lists.to_batches()[0], id="key", vector="embedding", payload=[]) == N
    assert_stored(docs, ids, vectors, [{}] * N)

    class Stream:  # a foreign Arrow producer (polars, DuckDB...): only the C stream interface
        def __arrow_c_stream__(self, requested_schema=None):
            return table_of(ids, vectors, payloads).__arrow_c_stream__(requested_schema)

    streamed = db.create_collection("streamed", dim=DIM)
    assert streamed.upsert_arrow(Stream(), payload=["n", "title"], batch_size=64) == N
    assert_stored(streamed, ids, vectors, [{"n": p["n"], "title": p["title"]} for p in payloads])
    reader = pa.RecordBatchReader.from_batches(lists.schema, lists.to_batches(max_chunksize=50))
    read = db.create_collection("read", dim=DIM)
    assert read.upsert_arrow(reader, id="key", vector="embedding") == N
    assert read.count() == N


def test_named_vectors_travel_as_a_struct_column(db):
    specs = {"text": vecdb.VectorSpec(3), "image": vecdb.VectorSpec(2, "l2")}
    named = db.create_collection("named", vectors=specs)
    rng = np.random.default_rng(3)
    text, image = rng.standard_normal((20, 3)).astype(np.float32), rng.standard_normal((20, 2)).astype(np.float32)
    has_image = [i % 3 != 0 for i in range(20)]
    named.upsert(list(range(20)), {"text": text, "image": [image[i] if has_image[i] else None for i in range(20)]},
                 [{"i": i} for i in range(20)])
    table = named.to_arrow()
    assert table.schema.field("vector").type == pa.struct([("text", pa.list_(pa.float32(), 3)),
                                                          ("image", pa.list_(pa.float32(), 2))])
    copy = db.create_collection("copy", vectors=specs)
    assert copy.upsert_arrow(table, batch_size=7) == 20
    for record in copy.get(list(range(20)), with_vector=True):
        np.testing.assert_array_equal(record.vector["text"], text[record.id])
        assert ("image" in record.vector) == has_image[record.id]
        if has_image[record.id]:
            np.testing.assert_array_equal(record.vector["image"], image[record.id])
    assert copy.to_arrow().equals(table)
    columns = pa.table({"id": [0, 1], "t": pa.array(text[:2].tolist(), pa.list_(pa.float32()))})
    only_text = db.create_collection("only_text", vectors=specs)
    only_text.upsert_arrow(columns, vector={"text": "t"})
    assert [sorted(record.vector) for record in only_text.get([0, 1], with_vector=True)] == [["text"], ["text"]]


def test_documents_go_in_with_the_points(db, points):
    ids, vectors, payloads = points
    docs = db.create_collection("docs", dim=DIM)
    texts = [None if i % 5 == 0 else f"text {i}" for i in range(N)]
    docs.upsert_arrow(table_of(ids, vectors, payloads, body=texts), document="body")
    table = docs.to_arrow(with_document=True)
    assert table.column("document").to_pylist() == texts
    assert "body" not in table.column_names


@pytest.mark.parametrize("change, error, words", [
    (lambda t: t.drop_columns(["vector"]), InvalidArgumentError, ["vector column 'vector'", "'id'"]),
    (lambda t: t.rename_columns(["key", "vector", "n"]), InvalidArgumentError, ["id column 'id'"]),
    (lambda t: t.set_column(1, "vector", pa.array([[1.0] * DIM, [1.0] * DIM, [1.0] * (DIM - 1)])),
     InvalidArgumentError, ["'vector' is ragged", "row 2 has 6 values"]),
    (lambda t: t.set_column(1, "vector", pa.array([[1.0] * 4] * 3, pa.list_(pa.float32(), 4))),
     DimensionMismatchError, ["'vector' has vectors of dimension 4", "dimension 7"]),
    (lambda t: t.set_column(1, "vector", pa.array([[1.0] * 4] * 3)), DimensionMismatchError, ["dimension 4"]),
    (lambda t: t.set_column(1, "vector", pa.array([[1.0] * DIM, None, [1.0] * DIM])), InvalidArgumentError,
     ["'vector' has a null vector at row 1"]),
    (lambda t: t.set_column(1, "vector", pa.array([["a"] * DIM] * 3)), InvalidDTypeError, ["lists of string"]),
    (lambda t: t.set_column(0, "id", pa.array([1.5, 2.5, 3.5])), InvalidDTypeError, ["'id' holds double"]),
    (lambda t: t.set_column(0, "id", pa.array(["a", None, "c"])), InvalidArgumentError,
     ["'id' has a null id at row 1"]),
    (lambda t: t.set_column(0, "id", pa.array(["a", "b", "a"])), DuplicateIdError, ["'a' at row 2", "row 0"]),
    (lambda t: t.set_column(2, "n", pa.array([0, 1, 2], pa.timestamp("s"))), InvalidDTypeError,
     ["'n' holds timestamp[s]"]),
])
def test_bad_tables_are_refused_naming_the_column_before_anything_is_written(db, change, error, words):
    docs = db.create_collection("docs", dim=DIM)
    table = pa.table({"id": ["a", "b", "c"], "vector": pa.array([[0.5] * DIM] * 3, pa.list_(pa.float32(), DIM)),
                      "n": [1, 2, 3]})
    with pytest.raises(error) as raised:
        docs.upsert_arrow(change(table))
    assert all(word in str(raised.value) for word in words), str(raised.value)
    assert docs.count() == 0


def test_a_bad_row_stops_at_its_batch_and_says_what_was_written(db):
    docs = db.create_collection("docs", dim=2)
    table = pa.table({"id": [0, 1, 2, 3, 4, 1], "vector": pa.array([[1.0, 0.0]] * 6, pa.list_(pa.float32(), 2))})
    with pytest.raises(DuplicateIdError, match="rows 0-2 were written"):
        docs.upsert_arrow(table, batch_size=3)
    assert [record.id for record in docs.scroll()[0]] == [0, 1, 2]


def test_bad_arguments_are_refused(db):
    docs = db.create_collection("docs", dim=2)
    table = pa.table({"id": [0], "vector": pa.array([[1.0, 0.0]], pa.list_(pa.float32(), 2)), "n": [1]})
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        docs.upsert_arrow(table, batch_size=0)
    with pytest.raises(InvalidArgumentError, match="list of column names"):
        docs.upsert_arrow(table, payload="n")
    with pytest.raises(InvalidDTypeError, match="got list"):
        docs.upsert_arrow([{"id": 0, "vector": [1.0, 0.0]}])
    with pytest.raises(InvalidArgumentError, match="one unnamed vector"):
        docs.upsert_arrow(table, vector={"text": "vector"})
    docs.upsert([0], [[1.0, 0.0]], [{"vector": "a payload key named like a column"}])
    with pytest.raises(InvalidArgumentError, match="payload key 'vector'"):
        docs.to_arrow()
    assert docs.to_arrow(with_vector=False).column("vector").to_pylist() == ["a payload key named like a column"]


def test_float32_vectors_cross_without_a_copy(rng):
    vectors = rng.standard_normal((1000, 16)).astype(np.float32)
    column = arrow.fixed_size_list_array(pa, vectors)
    assert np.shares_memory(column.flatten().to_numpy(), vectors)  # out: Arrow over the numpy buffer
    table = pa.table({"id": np.arange(1000), "vector": column})
    lists = pa.table({"id": np.arange(1000), "vector": pa.ListArray.from_arrays(
        pa.array(np.arange(0, 16001, 16, dtype=np.int32)), pa.array(vectors.reshape(-1)))})

    class Target:  # what arrow_batches reads of a collection
        name, dim, vectors = "target", 16, {}

    for source in (table, lists):
        batches = list(arrow.arrow_batches(Target(), source, batch_size=300))
        assert [batch.first_row for batch in batches] == [0, 300, 600, 900]
        for batch in batches:  # in: each batch's (n, dim) array is a view of the table's buffer
            assert batch.vectors.dtype == np.float32 and batch.vectors.shape == (len(batch.ids), 16)
            assert np.shares_memory(batch.vectors, vectors)
            np.testing.assert_array_equal(batch.vectors, vectors[batch.first_row:batch.first_row + 300])
