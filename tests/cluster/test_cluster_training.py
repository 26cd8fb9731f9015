"""Trained state is the cluster's: PQ codebooks and the PCA rotation are
learned once, on a sample drawn from every shard, and installed on every
shard, so all shards share codes and prefixes."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb


@pytest.fixture(scope="module")
def cluster(ray_cluster, tmp_path_factory):
    from vecdb.cluster import open as open_cluster

    with open_cluster(tmp_path_factory.mktemp("training") / "db", shards=3) as database:
        yield database


def stored_on_each_shard(cluster, name, read):
    """What ``read(store, txn)`` finds in each shard's folder (opened
    read-only alongside the shard's own actor)."""
    found = []
    for shard in range(cluster.shards):
        with vecdb.open(cluster.path / f"shard-{shard:03d}", read_only=True) as database:
            collection = database.get_collection(name)
            with collection._environment.read() as txn:
                found.append(read(collection._store, txn))
    return found


def shard_versions(collection, part, key):
    return [stats[part][key] for stats in collection.stats()["shards"]]


def test_pq_codebooks_are_trained_once_for_every_shard(cluster):
    rng = np.random.default_rng(8)
    data = rng.standard_normal((900, 16)).astype(np.float32)
    collection = cluster.create_collection("codes", 16, "l2", quantization=vecdb.PQ(m=4, train_size=700))
    try:
        collection.upsert(list(range(600)), data[:600])
        assert shard_versions(collection, "quantization", "quantizer_version") == [0, 0, 0]  # not before train_size
        collection.upsert(list(range(600, 900)), data[600:])  # the cluster reaches train_size: every shard at once
        assert shard_versions(collection, "quantization", "quantizer_version") == [1, 1, 1]
        first = stored_on_each_shard(cluster, "codes", lambda store, txn: store.codebooks(txn))
        assert first[0] is not None and first.count(first[0]) == 3
        hits = collection.search(data[:20], 1)
        assert [row[0].id for row in hits] == list(range(20))  # codes, then the stored vectors re-rank
        collection.train_quantizer()  # again: once more for all
        assert shard_versions(collection, "quantization", "quantizer_version") == [2, 2, 2]
        second = stored_on_each_shard(cluster, "codes", lambda store, txn: store.codebooks(txn))
        assert second.count(second[0]) == 3 and second[0] != first[0]
    finally:
        cluster.drop_collection("codes")


def test_the_pca_rotation_is_learned_once_for_every_shard(cluster):
    rng = np.random.default_rng(9)
    data = (rng.standard_normal((1100, 32)) * np.linspace(3, 0.1, 32)).astype(np.float32)
    collection = cluster.create_collection("prefixes", 32, "l2", mrl_dims=[8], rotate="pca")
    try:
        with pytest.raises(vecdb.errors.InvalidArgumentError, match="rotation"):
            collection.search(data[0], 5, dims=8)  # nothing learned yet
        collection.upsert(list(range(1100)), data)
        assert shard_versions(collection, "mrl", "rotation_version") == [1, 1, 1]
        rotations = stored_on_each_shard(cluster, "prefixes", lambda store, txn: store.rotation(txn))
        assert rotations[0] is not None and rotations.count(rotations[0]) == 3
        assert collection.search(data[7], 1, dims=8)[0].id == 7
    finally:
        cluster.drop_collection("prefixes")


def test_training_settings_are_checked_as_embedded(cluster):
    collection = cluster.create_collection("plain", 4)
    try:
        with pytest.raises(vecdb.errors.InvalidArgumentError, match="no quantization"):
            collection.train_quantizer()
        with pytest.raises(vecdb.errors.InvalidArgumentError, match="no rotation"):
            collection.learn_rotation()
    finally:
        cluster.drop_collection("plain")
