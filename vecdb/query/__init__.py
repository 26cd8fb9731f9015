"""How a search runs: filters parsed (:mod:`.filters`) and evaluated
(:mod:`.filter_eval`), a plan chosen by the cost model (:mod:`.planner`) and
run (:mod:`.executor`), all of it for one collection by :mod:`.searcher`;
plans measured by :mod:`.tuning`."""
