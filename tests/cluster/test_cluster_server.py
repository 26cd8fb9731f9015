"""`vecdb serve --cluster`: the HTTP API served from a cluster database, so
the remote client and every tool work unchanged."""

from __future__ import annotations

import signal

import numpy as np
import pytest

import vecdb
from vecdb.errors import InvalidArgumentError
from tests.support.servers import ServerProcess


def test_the_server_serves_a_cluster_with_the_same_api(ray_cluster, tmp_path):
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((300, 8)).astype(np.float32)
    vectors[200:] = vectors[0]  # ties across shards
    payloads = [{"lang": ["en", "fr"][i % 2], "body": f"point {i} " + "even " * (i % 2 == 0) + "x" * (i % 7)}
                for i in range(300)]
    with vecdb.open(tmp_path / "single") as single:
        expected = single.create_collection("docs", 8, "l2", index=vecdb.Flat())
        expected.upsert(list(range(300)), vectors, payloads)
        expected.create_text_index("body", k1=1.1)
        with ServerProcess(tmp_path / "cluster", "--cluster", "--shards", "3", "--ray-address",
                           ray_cluster.address) as server:
            with vecdb.connect(server.url) as remote:
                docs = remote.create_collection("docs", 8, "l2", index=vecdb.Flat())
                docs.upsert(list(range(300)), vectors, payloads)
                for query_filter in (None, {"lang": "fr"}):
                    got = docs.search(vectors[:5], 20, filter=query_filter)
                    want = expected.search(vectors[:5], 20, filter=query_filter)
                    assert [[(h.id, h.score) for h in row] for row in got] == \
                        [[(h.id, h.score) for h in row] for row in want]
                docs.create_text_index("body", k1=1.1)
                assert remote.describe()[0]["text_indexes"] == docs.text_indexes == expected.text_indexes
                for query_filter in (None, {"lang": "fr"}):
                    got = docs.search(text="even xxx", k=30, filter=query_filter)
                    want = expected.search(text="even xxx", k=30, filter=query_filter)
                    assert [(h.id, h.payload) for h in got] == [(h.id, h.payload) for h in want]
                    assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
                assert docs.count({"lang": "en"}) == 150
                assert [r.id for r in docs.scroll(limit=7)[0]] == list(range(7))
                assert remote.describe()[0]["count"] == 300
                with pytest.raises(InvalidArgumentError, match="cluster"):
                    remote.backup(tmp_path / "backups/")
            assert server.stop() in (0, -signal.SIGTERM)  # as an embedded server ends on SIGTERM
            assert "a cluster of 3 shard(s)" in server.output()
    # The shards' folders hold the data: a new driver finds it.
    from vecdb.cluster import open as open_cluster

    with open_cluster(tmp_path / "cluster") as reopened:
        assert reopened.shards == 3 and reopened.get_collection("docs").count() == 300
