"""Calibration of the query planner's cost model (``vecdb/query/planner.py``) on this machine:
``python -m bench.planner.calibration``.

For a filtered query the planner chooses between an exact scan of the vectors the filter
allows and a filtered HNSW graph search; for any query it may instead run a *funnel*: an
HNSW graph over the first ``d'`` dimensions returning ``C`` candidates, re-ranked exactly
at full dimension. The calibration times each, one query per call on one thread, and fits
the constants the planner needs (all times in microseconds):

- exact scan: ``t = a + c*n_total + b0*n_allowed + b1*n_allowed*dim`` (``c``: the scan
  tests every slot against the filter; also fitted without ``b0``);
- graph node: ``t_node = c0 + c1*dim``, from full traversals (a search whose filter allows
  nothing visits every node reachable on layer 0 once);
- filtered graph search at selectivity ``s``:
  ``t = a_g + t_node * min(n_total, (alpha*ef + beta) / s**gamma)``. The native search
  does not count the nodes it visits: ``visited`` is inferred from latency in units of
  full-traversal node costs.

It then evaluates the model ``vecdb/query/planner.py`` ships on the same measurements (its
constants beside the re-fit ones, its prediction errors, the scan/graph crossover it
predicts against the measured one), and measures the funnel's recall and latency over
prefixes of the raw dimensions and of the PCA rotation collections learn
(``vecdb.index.rotation.learn_pca_rotation``) against a full-dimension graph.

Modules: ``corpus`` (data, filters, cached graphs), ``measure`` (timed scans, traversals
and filtered searches), ``funnel`` (the funnel experiment), ``fit`` (the models and the
crossover), ``shipped`` (vecdb's own model on the measurements), ``report`` (the Markdown
report, which also states where each of vecdb's constants comes from).
"""
