"""Benchmark harness for vecdb: the one way speed and recall are measured in this project.

Run ``python -m bench --help`` for the command line. The pieces:

- ``bench.datasets``: loaders (.npy folders, TEXMEX .fvecs/.ivecs/.bvecs, ann-benchmarks HDF5),
  a seeded synthetic Gaussian-mixture generator, and the named datasets.
- ``bench.ground_truth``: exact neighbours from ``vecdb.knn``, cached on disk.
- ``bench.systems``: one adapter per searched system behind a common interface.
- ``bench.runner`` / ``bench.worker``: each system is measured in its own subprocess.
- ``bench.report``: Markdown table and recall-vs-QPS plot from the results JSON.
"""
