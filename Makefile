# One entry point per job; each target sets up what it needs from scratch
# (a virtualenv in .venv with vecdb built from this checkout).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   := ../shared/data/npm-minilm-384

.PHONY: demo test bench bench-kernels sanitize clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Rebuilds the native core every time: it is quick, and stale builds are not.
install-%: $(PY)
	$(PY) -m pip install --quiet -e ".[$*]"

## demo: build vecdb and search real sentence embeddings (the main job until `vecdb serve` exists)
demo: install-test
	$(PY) -m vecdb.demo --data $(DATA)

## test: build vecdb and run the test suite
test: install-test
	$(PY) -m pytest -q

## bench: flat search against numpy and faiss on the shared data and synthetic 128/768-d sets
bench: install-bench
	$(PY) -m bench --dataset npm-minilm-384 --dataset synthetic:100000:128:l2 --dataset synthetic:50000:768:ip \
		--systems vecdb-flat,numpy-flat,faiss-flat --batch 1,1000 --threads 1,all --out bench/results

## bench-kernels: the distance kernels alone against numpy (pytest-benchmark)
bench-kernels: install-bench
	$(PY) -m pytest bench/test_kernels_speed.py --benchmark-only --benchmark-columns=mean,ops

## sanitize: rebuild with AddressSanitizer + UBSan, run the tests, restore the normal build
sanitize: install-test
	VECDB_SANITIZE=1 $(PY) setup.py -q build_ext --inplace --force
	LD_PRELOAD="$$($(CXX) -print-file-name=libasan.so) $$($(CXX) -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(PY) -m pytest -q -p no:cacheprovider tests; \
	status=$$?; $(PY) setup.py -q build_ext --inplace --force; exit $$status

clean:
	rm -rf $(VENV) build *.egg-info vecdb/*.so
