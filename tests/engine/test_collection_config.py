"""A collection's stored config: typed settings apart from counters, the
stored form unchanged byte for byte, and the store's one read-modify-write
of it (CollectionStore.update_config)."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

import vecdb
from vecdb.config import CollectionConfig, CollectionSettings
from vecdb.plans import Graph, plan_to_dict

# A config as storage format 2 has always stored it (keys in this order).
STORED = {
    "name": "docs", "key": "00112233aabbccdd", "dim": 64, "metric": "cosine",
    "index": {"kind": "hnsw", "M": 12, "ef_construction": 100, "ef_search": 40, "dtype": "float16"},
    "payload_indexes": {"lang": "keyword"}, "next_label": 1200, "sequence": 31, "log_start": 7,
    "quantization": {"m": 8, "rerank": 50, "train_size": 500, "max_samples": 65536, "iterations": 6, "opq": True},
    "quantizer_version": 2, "mrl_dims": [16, 32], "rotate": "pca", "rotation_version": 1,
    "default_plan": {"kind": "graph", "ef": 48}, "default_plan_k": 10,
    "fingerprint": 2**63 + 5, "base_fingerprint": 17,
}


def test_a_stored_config_reads_typed_and_writes_back_the_same_bytes():
    config = CollectionConfig.from_dict(STORED)
    assert config.settings == CollectionSettings(
        dim=64, metric="cosine", index=vecdb.HNSW(M=12, ef_construction=100, ef_search=40, dtype="float16"),
        quantization=vecdb.PQ(m=8, rerank=50, train_size=500, iterations=6, opq=True), mrl_dims=(16, 32),
        rotate="pca")
    assert (config.next_label, config.sequence, config.quantizer_version, config.rotation_version) == (1200, 31, 2, 1)
    assert msgpack.packb(config.to_dict()) == msgpack.packb(STORED)


def test_a_flat_config_without_quantization_round_trips():
    stored = {**STORED, "index": {"kind": "flat"}, "quantization": None, "mrl_dims": [], "rotate": None}
    config = CollectionConfig.from_dict(stored)
    assert config.index_spec == vecdb.Flat() and config.pq is None and not config.prefixes_ready
    assert msgpack.packb(config.to_dict()) == msgpack.packb(stored)


@pytest.mark.parametrize("change", [
    lambda data: data.pop("dim"),
    lambda data: data.pop("index"),
    lambda data: data.update(surprise=1),
    lambda data: data.update(index={"kind": "hnsw", "M": 1}),
    lambda data: data.update(quantization={"m": 8, "colour": "red"}),
])
def test_anything_else_is_a_value_error(change):
    data = {**STORED, "index": dict(STORED["index"])}
    change(data)
    with pytest.raises(ValueError):
        CollectionConfig.from_dict(data)
    with pytest.raises(ValueError):
        CollectionConfig.from_dict([1, 2])


def test_settings_read_from_describe_are_the_ones_created(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", 32, "ip", index=vecdb.HNSW(M=8), quantization=vecdb.PQ(train_size=300),
                                   mrl_dims=[16, 8])
        [described] = db.describe()
        settings = CollectionSettings.from_dict(described)  # extra keys (count, name...) ignored
        assert settings == col._config.settings
        assert settings.quantization.m == 4 and settings.mrl_dims == (8, 16)
        assert (col.index, col.quantization) == (settings.index, settings.quantization)


def test_update_config_changes_the_named_fields_only_and_stores_them(tmp_path):
    with vecdb.open(tmp_path / "db") as db:
        col = db.create_collection("c", 4)
        col.upsert(["a", "b"], np.eye(2, 4, dtype=np.float32))
        store = col._store
        with db._environment.read() as txn:
            before = store.config(txn)
        plan = plan_to_dict(Graph(ef=20))
        written = db._environment.write(lambda txn: store.update_config(txn, default_plan=plan, default_plan_k=5))
        with db._environment.read() as txn:
            after = store.config(txn)
        assert written == after and (after.default_plan, after.default_plan_k) == (plan, 5)
        assert {**after.to_dict(), "default_plan": None, "default_plan_k": 0} == before.to_dict()
        with pytest.raises(TypeError):
            db._environment.write(lambda txn: store.update_config(txn, defualt_plan=plan))
    with vecdb.open(tmp_path / "db") as db:
        assert db.get_collection("c").stats()["default_plan"] == plan
