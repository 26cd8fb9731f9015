"""Writes tests/data/format1-backup.tar with vecdb 0.1 (storage format 1,
commit cb924ac): run with that vecdb on the path, as
`python tests/data/make_format1.py OUT.tar`. tests/engine/test_format_upgrade.py
rebuilds the same points with `points()` to check the upgrade kept them."""
import subprocess, sys, tempfile
import numpy as np
import vecdb


def points(n, dim, offset=0):
    vectors = np.sin(np.arange(offset, offset + n * dim, dtype=np.float64) * 0.37).reshape(n, dim).astype(np.float32)
    payloads = [{"lang": ["en", "fr", "de"][i % 3], "year": 2000 + i % 25, "tags": ["a", str(i % 4)]}
                for i in range(offset, offset + n)]
    return vectors, payloads


def main(out):
    folder = tempfile.mkdtemp()
    db = vecdb.open(folder)
    docs = db.create_collection("docs", dim=16, metric="cosine", index=vecdb.HNSW(M=8, ef_construction=40))
    docs.create_payload_index("lang", "keyword")
    vectors, payloads = points(300, 16)
    docs.upsert([f"d{i}" for i in range(300)], vectors, payloads)
    docs.create_payload_index("year", "integer")
    docs.delete(ids=[f"d{i}" for i in range(0, 300, 10)])
    vectors, payloads = points(20, 16, offset=5000)
    docs.upsert([f"d{i}" for i in range(1, 40, 2)], vectors, payloads)
    pq = db.create_collection("pq", dim=16, metric="l2", quantization=vecdb.PQ(m=4, train_size=256),
                              mrl_dims=[8], rotate="pca")
    vectors, payloads = points(1100, 16, offset=9000)
    pq.upsert(list(range(1100)), vectors, payloads)
    db.create_collection("empty", dim=3, index=vecdb.Flat())
    db.create_collection("dropped", dim=3).upsert([1], [[1, 2, 3]])
    db.drop_collection("dropped")
    # Backed up from another process while this writer is open: the change
    # logs since the last snapshot are in the archive.
    subprocess.run([sys.executable, "-c", "import sys, vecdb\n"
                    "with vecdb.open(sys.argv[1], read_only=True) as db: db.backup(sys.argv[2])", folder, out],
                   check=True)
    db.close()


if __name__ == "__main__":
    main(sys.argv[1])
