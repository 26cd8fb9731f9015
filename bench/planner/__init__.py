"""The query planner's benchmarks: the Matryoshka funnel against full-dimension HNSW
(``funnel``) and the planner's plan choice under filters against forced plans
(``filtered``), run with ``python -m bench.planner --help``; and the calibration of the
planner's cost model, ``python -m bench.planner.calibration --help``."""
