"""Collections with product quantization (``quantization=vecdb.PQ(...)``):
exact until trained, trained automatically at the threshold, re-ranked with
vectors read from LMDB, persisted, retrained on request."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from vecdb import errors
from tests.support.datasets import low_rank_clusters
from tests.support.reference import recall

DIM = 32
INDEXES = [vecdb.HNSW(M=8, ef_construction=64, ef_search=64), vecdb.Flat()]


@pytest.fixture
def data():
    base, queries = low_rank_clusters(np.random.default_rng(5), 1200, 20, DIM)
    return base, queries


def quantized(db, index, name="c", metric="cosine", train_size=500, rerank=50):
    return db.create_collection(name, DIM, metric, index=index,
                                quantization=vecdb.PQ(m=8, rerank=rerank, train_size=train_size, iterations=6))


def found_ids(hits):
    return np.array([[h.id for h in row] for row in hits])


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
@pytest.mark.parametrize("index", INDEXES)
def test_exact_until_trained_then_reranked_codes(tmp_path, data, metric, index):
    base, queries = data
    truth, distances = vecdb.knn(base, queries, k=10, metric=metric)
    with vecdb.open(tmp_path / "db") as db:
        col = quantized(db, index, metric=metric)
        col.upsert(list(range(400)), base[:400])
        assert col.stats()["quantization"]["trained"] is False
        early_truth, _ = vecdb.knn(base[:400], queries, k=10, metric=metric)
        assert recall(found_ids(col.search(queries, k=10)), early_truth) == 1.0  # exact
        assert type(col._indexes.main).__name__ == "ExactLabelIndex"
        col.upsert(list(range(400, 1200)), base[400:])  # crosses train_size
        col.wait_indexed()  # a graph's collection trains in the background
        stats = col.stats()
        assert type(col._indexes.main).__name__ == "RerankingLabelIndex"  # codes, re-ranked from LMDB
        assert stats["quantization"] == {"m": 8, "rerank": 50, "train_size": 500, "opq": False, "trained": True,
                                         "quantizer_version": 1}
        hits = col.search(queries, k=10, with_payload=False)
        assert recall(found_ids(hits), truth) >= 0.9
        # Scores come from the exact re-rank: the full vectors' distances.
        exact = vecdb.pairwise_distances(queries, base, metric=metric)
        for q, row in enumerate(hits):
            want = exact[q, [h.id for h in row]]
            want = np.sqrt(np.maximum(want, 0)) if metric == "l2" else 1 - want
            np.testing.assert_allclose([h.score for h in row], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("index", INDEXES)
def test_codes_take_a_fraction_of_the_memory(tmp_path, data, index):
    base, _ = data
    with vecdb.open(tmp_path / "db") as db:
        plain = db.create_collection("plain", DIM, index=index)
        plain.upsert(list(range(1200)), base)
        plain.wait_indexed()  # all of it in the graph (the indexer may still be moving the backlog in)
        col = quantized(db, index)
        col.upsert(list(range(1200)), base)
        col.wait_indexed()
        ratio = plain.stats()["index_memory_bytes"] / col.stats()["index_memory_bytes"]
        # 8-byte codes for 128-byte vectors: all of it for a scan, the links stay for a graph.
        assert ratio > (10 if isinstance(index, vecdb.Flat) else 1.5), ratio


@pytest.mark.parametrize("index", INDEXES)
def test_reopen_uses_the_stored_codebooks(tmp_path, data, index):
    base, queries = data
    with vecdb.open(tmp_path / "db") as db:
        col = quantized(db, index)
        col.upsert(list(range(1200)), base, [{"i": i} for i in range(1200)])
        before = found_ids(col.search(queries, k=10))
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")
        assert col.quantization == vecdb.PQ(m=8, rerank=50, train_size=500, iterations=6)
        assert col.stats()["index_source"] == "snapshot"  # graph or codes: not rebuilt
        np.testing.assert_array_equal(found_ids(col.search(queries, k=10)), before)
    # A damaged snapshot is rebuilt from LMDB, with the stored codebooks.
    snapshot = next((tmp_path / "db" / "snapshots").glob("*.hnsw"))
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    with vecdb.open(tmp_path / "db") as db:
        col = db.get_collection("c")
        assert col.stats()["index_source"] == "rebuild"
        # A graph rebuilt on several threads may differ slightly: compare recall.
        truth, _ = vecdb.knn(base, queries, k=10, metric="cosine")
        assert recall(found_ids(col.search(queries, k=10)), truth) >= 0.9


def test_opq_collection(tmp_path, data):
    base, queries = data
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", DIM, quantization=vecdb.PQ(m=8, rerank=50, train_size=500, opq=True))
        col.upsert(list(range(1200)), base)
        assert col.stats()["quantization"]["opq"] is True
        truth, _ = vecdb.knn(base, queries, k=10, metric="cosine")
        assert recall(found_ids(col.search(queries, k=10)), truth) >= 0.9
    with vecdb.open(tmp_path / "db") as db:
        assert db.get_collection("c").stats()["index_source"] == "snapshot"


def test_writes_after_training_and_filters(tmp_path, data):
    base, queries = data
    with vecdb.open(tmp_path / "db") as db:
        col = quantized(db, vecdb.HNSW(M=8, ef_construction=64))
        col.upsert(list(range(1200)), base, [{"even": i % 2 == 0} for i in range(1200)])
        col.delete(list(range(0, 100)))
        col.upsert([5000], base[600:601] * 1.0001)  # a near twin of point 600
        hits = col.search(base[600], k=3, with_payload=False)
        assert {h.id for h in hits[:2]} == {600, 5000}
        found = found_ids(col.search(queries, k=10))
        assert not np.isin(found, np.arange(100)).any()
        for narrow in ({"even": True}, {"$and": [{"even": True}, {"even": {"$ne": False}}]}):
            hits = col.search(queries, k=5, filter=narrow)
            assert all(h.payload["even"] for row in hits for h in row)
        allowed = np.zeros(1200, dtype=bool)
        allowed[100::2] = True
        truth, _ = vecdb.knn(base, queries, k=10, metric="cosine", allowed=allowed)
        assert recall(found_ids(col.search(queries, k=10, filter={"even": True})), truth) >= 0.9


def test_train_quantizer_on_request(tmp_path, data):
    base, queries = data
    with vecdb.open(tmp_path / "db") as db:
        col = quantized(db, vecdb.HNSW(M=8, ef_construction=64), train_size=100_000)
        col.upsert(list(range(100)), base[:100])
        with pytest.raises(errors.InvalidArgumentError, match="at least 256"):
            col.train_quantizer()
        col.upsert(list(range(1200)), base)
        assert col.stats()["quantization"]["trained"] is False  # below its train_size
        col.train_quantizer()
        col.train_quantizer()
        assert col.stats()["quantization"]["quantizer_version"] == 2
        truth, _ = vecdb.knn(base, queries, k=10, metric="cosine")
        assert recall(found_ids(col.search(queries, k=10)), truth) >= 0.9
        plain = db.create_collection("plain", DIM)
        with pytest.raises(errors.InvalidArgumentError, match="no quantization"):
            plain.train_quantizer()
    with vecdb.open(tmp_path / "db") as db:
        assert db.get_collection("c").stats()["index_source"] == "snapshot"
    with vecdb.open(tmp_path / "db", read_only=True) as db:
        with pytest.raises(errors.ReadOnlyError):
            db.get_collection("c").train_quantizer()


def test_reader_refresh_adopts_new_codebooks(tmp_path, data):
    base, queries = data
    with vecdb.open(tmp_path / "db") as writer:
        col = quantized(writer, vecdb.Flat())
        col.upsert(list(range(300)), base[:300])
        with vecdb.open(tmp_path / "db", read_only=True) as reader:
            seen = reader.get_collection("c")
            assert seen.stats()["quantization"]["trained"] is False
            col.upsert(list(range(300, 1200)), base[300:])
            reader.refresh()
            assert seen.stats()["index_count"] == 1200
            assert seen.stats()["index_memory_bytes"] < 1200 * DIM * 4 / 4  # 8-byte codes, not vectors
            truth, _ = vecdb.knn(base, queries, k=10, metric="cosine")
            assert recall(found_ids(seen.search(queries, k=10)), truth) >= 0.9


def test_a_stale_reader_never_reranks_deleted_points(tmp_path, data):
    base, _ = data
    with vecdb.open(tmp_path / "db") as writer:
        col = quantized(writer, vecdb.HNSW(M=8, ef_construction=64))
        col.upsert(list(range(1200)), base)
        col.wait_indexed()
        with vecdb.open(tmp_path / "db", read_only=True) as reader:
            stale = reader.get_collection("c")
            nearest = [h.id for h in stale.search(base[7], k=10)]
            col.delete(nearest[:5])  # the reader's index still holds them
            hits = stale.search(base[7], k=10, with_payload=False)
            assert len(hits) == 10 and not {h.id for h in hits} & set(nearest[:5])


def test_training_failures_keep_the_collection_working(tmp_path, data, monkeypatch):
    base, queries = data
    with vecdb.open(tmp_path / "db") as db:
        col = quantized(db, vecdb.Flat())
        real_train = vecdb.ProductQuantizer.train

        def failing(self, *args, **kwargs):
            raise MemoryError("simulated")

        monkeypatch.setattr(vecdb.ProductQuantizer, "train", failing)
        with pytest.warns(RuntimeWarning, match="training the PQ codebooks failed"):
            col.upsert(list(range(600)), base[:600])  # committed, then training fails
        assert col.count() == 600 and col.stats()["quantization"]["trained"] is False
        truth, _ = vecdb.knn(base[:600], queries, k=10, metric="cosine")
        assert recall(found_ids(col.search(queries, k=10)), truth) == 1.0  # still exact
        monkeypatch.setattr(vecdb.ProductQuantizer, "train", real_train)
        # A failure after training, while building the index, commits no codebooks.
        monkeypatch.setattr("vecdb.collection.build_main_index", lambda *a: (_ for _ in ()).throw(MemoryError("build")))
        with pytest.raises(MemoryError):
            col.train_quantizer()
        assert col.stats()["quantization"]["quantizer_version"] == 0
        monkeypatch.undo()
        col.upsert([600], base[600:601])  # the next upsert trains
        assert col.stats()["quantization"]["trained"] is True


def test_damaged_codebooks_open_exact_and_can_be_retrained(tmp_path, data):
    base, queries = data
    with vecdb.open(tmp_path / "db") as db:
        col = quantized(db, vecdb.Flat())
        col.upsert(list(range(1200)), base)
        db._environment.write(lambda txn: col._store.put_codebooks(txn, b"not codebooks"))
    with vecdb.open(tmp_path / "db") as db:
        with pytest.warns(RuntimeWarning, match="damaged"):
            col = db.get_collection("c")
        truth, _ = vecdb.knn(base, queries, k=10, metric="cosine")
        assert recall(found_ids(col.search(queries, k=10)), truth) == 1.0
        col.train_quantizer()
        assert recall(found_ids(col.search(queries, k=10)), truth) >= 0.9


def test_bad_settings_are_refused(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        with pytest.raises(errors.InvalidArgumentError, match="does not divide the dimension 32"):
            db.create_collection("a", DIM, quantization=vecdb.PQ(m=5))
        with pytest.raises(errors.InvalidArgumentError, match="train_size"):
            vecdb.PQ(train_size=10)
        with pytest.raises(errors.InvalidArgumentError, match="quantization"):
            db.create_collection("a", DIM, quantization="pq")
        db.create_collection("b", DIM, quantization=vecdb.PQ(m=8))
        with pytest.raises(errors.InvalidArgumentError, match="quantization"):
            db.create_collection("b", DIM, quantization=vecdb.PQ(m=4), exist_ok=True)
        assert db.get_or_create_collection("b", DIM, quantization=vecdb.PQ(m=8)).quantization.m == 8
        assert vecdb.PQ().for_dim(384).m == 48
        with pytest.raises(errors.InvalidArgumentError, match="at most 1000"):
            vecdb.PQ(iterations=2000)
        with pytest.raises(errors.InvalidArgumentError, match="opq"):
            vecdb.PQ(opq="no")
        assert db.create_collection("n", DIM, quantization=vecdb.PQ(m=np.int64(8))).quantization.m == 8
