"""The query planner's benchmarks: the Matryoshka funnel against full-dimension HNSW
(``funnel``) and the planner's plan choice under filters against forced plans
(``filtered``). Run ``python -m bench.planner --help``."""
