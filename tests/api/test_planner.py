"""The query planner, Matryoshka prefix indexes, the PCA rotation, explain
and tune, checked against exact search (the oracle)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecdb
from vecdb import plans
from vecdb.errors import InvalidArgumentError
from vecdb.index.rotation import learn_pca_rotation, rotation_train_size
from vecdb.index.snapshot import SNAPSHOT_FOLDER
from vecdb.query.planner import (RESIDENT_SCAN_BYTES, SCAN_SLOT_US, SPARSE_FILTER_SLOTS, SearchShape, choose,
                                 estimate)


def mrl_like(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Clustered vectors whose variance decays along the dimensions, so that
    prefixes carry most of the signal (the MRL property)."""
    centres = rng.standard_normal((max(2, n // 50), dim))
    points = centres[rng.integers(0, len(centres), n)] + 0.4 * rng.standard_normal((n, dim))
    return (points / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)


def ids_of(hits):
    return [hit.id for hit in hits]


def recall(found, truth) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return mrl_like(rng, 3000, 64), mrl_like(rng, 30, 64)


def filled(db, data, name="c", payload=True, **options):
    base, _ = data
    col = db.create_collection(name, dim=base.shape[1], **options)
    payloads = [{"group": i % 200} for i in range(len(base))] if payload else None
    col.upsert(list(range(len(base))), base, payloads)
    col.wait_indexed()
    col.create_payload_index("group", "integer")
    return col


# ---- plan choice ----

def test_tiny_collection_is_scanned(db):
    col = db.create_collection("tiny", dim=8)
    col.upsert(list(range(50)), np.random.default_rng(0).standard_normal((50, 8)))
    col.wait_indexed()
    assert isinstance(col.explain(np.ones(8)).plan, plans.Scan)


def test_selective_filter_scans_the_allowed_points_and_broad_filter_uses_the_graph(db):
    rng = np.random.default_rng(5)
    col = db.create_collection("wide", dim=128, index=vecdb.HNSW(M=8, ef_construction=32))
    col.upsert(list(range(20_000)), mrl_like(rng, 20_000, 128), [{"group": i % 200} for i in range(20_000)])
    col.wait_indexed()
    col.create_payload_index("group", "integer")
    query = mrl_like(rng, 1, 128)[0]
    narrow = col.explain(query, 10, filter={"group": 3})  # 100 of 20,000 points
    assert isinstance(narrow.plan, plans.Scan)
    assert narrow.estimates["allowed"] == 100 and narrow.estimates["selectivity"] == pytest.approx(0.005)
    broad = col.explain(query, 10, filter={"group": {"$lt": 150}})
    assert isinstance(broad.plan, plans.Graph)
    assert broad.estimates["allowed"] == 15_000
    assert isinstance(col.explain(query, 10).plan, plans.Graph)


@pytest.mark.parametrize(("m", "scanned_below", "graph_from"), [(16, 0.04, 0.05), (8, 0.08, 0.10)])
def test_filtered_crossover_is_where_the_graph_starts_walking_two_hops(m, scanned_below, graph_from):
    """Under 1.5 / (2M) of the points a filtered graph search walks through
    every point (csrc/hnsw/graph.h, "Filtered search"), so the planner scans;
    from there the graph walks two hops and costs a few unfiltered searches."""
    shape = SearchShape(count=50_000, dim=384, main_kind="graph", ef_search=64, graph_m=m)
    for share, kind in [(0.001, plans.Scan), (scanned_below, plans.Scan), (graph_from, plans.Graph),
                        (0.3, plans.Graph), (0.5, plans.Graph)]:
        assert isinstance(choose(shape, 10, allowed=round(share * 50_000)).plan, kind), share


def test_a_scan_under_a_sparse_filter_pays_nothing_per_slot_of_an_hnsw_index():
    """An HNSW index's exact scan looks few allowed ids up in its id map
    (csrc/hnsw/hnsw_index.h, kSparseFilterSlots) instead of testing every
    slot; a flat index tests every row either way."""
    graph = SearchShape(count=1_000_000, dim=128, main_kind="graph", ef_search=64, graph_m=16)
    flat = SearchShape(count=1_000_000, dim=128, main_kind="exact", ef_search=64, graph_m=16)
    for allowed in (1, 1_000, 1_000_000 // SPARSE_FILTER_SLOTS - 1):
        share = allowed / 1_000_000
        assert estimate(plans.Scan(), flat, 10, share, None) - estimate(plans.Scan(), graph, 10, share, None) == \
            pytest.approx(SCAN_SLOT_US * 1_000_000)
    for share in (1 / SPARSE_FILTER_SLOTS, 0.5, 1.0):
        assert estimate(plans.Scan(), graph, 10, share, None) == pytest.approx(estimate(plans.Scan(), flat, 10, share,
                                                                                         None))


def test_a_repeated_filter_scans_while_its_vectors_fit_in_the_cache():
    """A filter that ran before scans vectors the CPU likely still holds
    (planner.RESIDENT_SCAN_BYTES): the planner prices that scan lower, so at
    the default ef the crossover moves up, but not for vectors too many to
    stay cached."""
    shape = SearchShape(count=50_000, dim=384, main_kind="graph", ef_search=64, graph_m=16)
    tenth = choose(shape, 10, allowed=5_000)  # 7.7 MB of vectors
    assert isinstance(tenth.plan, plans.Graph) and not tenth.estimates["repeated_filter"]
    again = choose(shape, 10, allowed=5_000, repeated=True)
    assert isinstance(again.plan, plans.Scan) and again.estimates["repeated_filter"]
    assert 5_000 * 384 * 4 <= RESIDENT_SCAN_BYTES < 15_000 * 384 * 4
    assert isinstance(choose(shape, 10, allowed=15_000, repeated=True).plan, plans.Graph)
    assert not choose(shape, 10, allowed=None, repeated=True).estimates["repeated_filter"]


def test_explain_says_whether_the_filter_ran_before(db):
    rng = np.random.default_rng(9)
    col = db.create_collection("again", dim=16)
    col.upsert(list(range(500)), rng.standard_normal((500, 16)).astype(np.float32),
               [{"group": i % 10} for i in range(500)])
    query = rng.standard_normal(16).astype(np.float32)
    assert not col.explain(query, 5, filter={"group": 3}).estimates["repeated_filter"]
    assert col.explain(query, 5, filter={"group": 3}).estimates["repeated_filter"]
    assert not col.explain(query, 5, filter={"group": 4}).estimates["repeated_filter"]
    assert not col.explain(query, 5).estimates["repeated_filter"]


def test_mrl_collection_funnels_once_scanning_costs_more(db):
    rng = np.random.default_rng(6)
    col = db.create_collection("mrl", dim=128, index=vecdb.HNSW(M=8, ef_construction=32), mrl_dims=[16, 32])
    col.upsert(list(range(500)), mrl_like(rng, 500, 128))
    col.wait_indexed()
    query = mrl_like(rng, 1, 128)[0]
    assert isinstance(col.explain(query, 10).plan, plans.Scan)  # 500 points: scanning is cheapest
    col.upsert(list(range(500, 20_000)), mrl_like(rng, 19_500, 128))
    col.wait_indexed()
    explanation = col.explain(query, 10)
    assert isinstance(explanation.plan, plans.Funnel)
    assert explanation.plan.dims == 32  # the largest prefix up to a third of the dimension
    assert len(explanation.stages) == 2


def test_plans_return_only_allowed_points(db, data):
    col = filled(db, data, mrl_dims=[16])
    allowed = {i for i in range(3000) if i % 200 < 20}
    for plan in (plans.Scan(), plans.Graph(ef=64), plans.Funnel(dims=16, candidates=50), plans.Prefix(dims=16)):
        for hits in col.search(data[1], 10, filter={"group": {"$lt": 20}}, plan=plan):
            assert len(hits) == 10 and set(ids_of(hits)) <= allowed


# ---- funnel correctness against the oracle ----

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), metric=st.sampled_from(["cosine", "ip", "l2"]),
       dims=st.sampled_from([2, 4, 8]), candidates=st.integers(10, 120), index=st.sampled_from(["hnsw", "flat"]))
def test_funnel_is_the_exact_rerank_of_its_shortlist(tmp_path_factory, seed, metric, dims, candidates, index):
    """A funnel returns the exact top k of the prefix index's shortlist; so
    whenever that shortlist holds the true neighbours, it returns exactly
    what an exact search does."""
    rng = np.random.default_rng(seed)
    base, queries = mrl_like(rng, 300, 16), mrl_like(rng, 3, 16)
    spec = vecdb.HNSW(M=8, ef_construction=40) if index == "hnsw" else vecdb.Flat()
    with vecdb.open(tmp_path_factory.mktemp("funnel")) as db:
        col = db.create_collection("c", dim=16, metric=metric, index=spec, mrl_dims=[dims])
        col.upsert(list(range(300)), base)
        col.wait_indexed()
        truth, truth_distances = vecdb.knn(base, queries, k=5, metric=metric)
        for query, true_ids in zip(queries, truth):
            funnel = ids_of(col.search(query, 5, plan=plans.Funnel(dims=dims, candidates=candidates)))
            shortlist = ids_of(col.search(query, candidates, plan=plans.Prefix(dims=dims, ef=candidates)))
            rows, _ = vecdb.knn(base[shortlist], query[None], k=5, metric=metric)
            assert funnel == [shortlist[row] for row in rows[0]]
            if set(true_ids.tolist()) <= set(shortlist):
                assert funnel == true_ids.tolist()


def test_funnel_scores_are_full_dimension_scores(db, data):
    base, queries = data
    col = filled(db, data, metric="l2", mrl_dims=[8])
    exact = col.search(queries[0], 10, plan=plans.Scan())
    funnel = col.search(queries[0], 10, plan=plans.Funnel(dims=8, candidates=3000))
    assert ids_of(funnel) == ids_of(exact)
    np.testing.assert_allclose([h.score for h in funnel], [h.score for h in exact], rtol=1e-5)


def test_deleted_points_never_come_back_from_prefix_indexes(db, data):
    col = filled(db, data, mrl_dims=[8])
    first = ids_of(col.search(data[1][0], 10, plan=plans.Prefix(dims=8)))
    col.delete(first[:5])
    for plan in (plans.Prefix(dims=8), plans.Funnel(dims=8, candidates=100)):
        assert not set(first[:5]) & set(ids_of(col.search(data[1][0], 10, plan=plan)))


def test_funnel_over_pq_codes_reranks_from_lmdb(db, data):
    base, queries = data
    col = filled(db, data, metric="l2", mrl_dims=[16], quantization=vecdb.PQ(m=8, train_size=1000))
    assert col.stats()["quantization"]["trained"]
    truth, _ = vecdb.knn(base, queries, k=10, metric="l2")
    found = [ids_of(h) for h in col.search(queries, 10, plan=plans.Funnel(dims=16, candidates=300))]
    assert recall(found, truth) >= 0.9


# ---- dims and plan validation ----

def test_dims_must_be_an_indexed_prefix(db, data):
    col = filled(db, data, mrl_dims=[8, 16])
    hits = col.search(data[1][0], 5, dims=8)
    assert len(hits) == 5
    with pytest.raises(InvalidArgumentError, match=r"dims=12 is not an indexed prefix.*\[8, 16\]"):
        col.search(data[1][0], 5, dims=12)
    with pytest.raises(InvalidArgumentError, match="dims"):
        col.search(data[1][0], 5, dims=0)
    with pytest.raises(InvalidArgumentError, match="not both"):
        col.search(data[1][0], 5, dims=8, plan=plans.Scan())
    plain = filled(db, data, name="plain")
    with pytest.raises(InvalidArgumentError, match="no prefix indexes.*mrl_dims"):
        plain.search(data[1][0], 5, dims=8)


def test_prefix_plans_wait_for_the_rotation(db, data):
    col = db.create_collection("r", dim=64, mrl_dims=[8], rotate="pca")
    col.upsert(list(range(100)), data[0][:100])
    col.wait_indexed()
    with pytest.raises(InvalidArgumentError, match=f"rotation is learned once the collection holds "
                                                   f"{rotation_train_size(64):,} vectors"):
        col.search(data[1][0], 5, dims=8)
    assert isinstance(col.explain(data[1][0]).plan, plans.Scan)  # searches in full meanwhile


@pytest.mark.parametrize("options, message", [
    ({"mrl_dims": [64]}, "below the dimension"),
    ({"mrl_dims": [8, 8]}, "repeated"),
    ({"mrl_dims": [0]}, "mrl_dims entry"),
    ({"mrl_dims": "8"}, "list of prefix sizes"),
    ({"rotate": "pca"}, "needs mrl_dims"),
    ({"mrl_dims": [8], "rotate": "svd"}, "'pca'"),
])
def test_bad_mrl_options_are_refused(db, options, message):
    with pytest.raises(InvalidArgumentError, match=message):
        db.create_collection("bad", dim=64, **options)


def test_plans_are_validated(db, data):
    col = filled(db, data, index=vecdb.Flat(), mrl_dims=[8])
    with pytest.raises(InvalidArgumentError, match="Graph plan needs an HNSW index"):
        col.search(data[1][0], 5, plan=plans.Graph())
    with pytest.raises(InvalidArgumentError, match="plan must be"):
        col.search(data[1][0], 5, plan="graph")
    with pytest.raises(InvalidArgumentError, match="'kind'"):
        col.search(data[1][0], 5, plan={"kind": "teleport"})
    with pytest.raises(InvalidArgumentError, match="candidates"):
        plans.Funnel(dims=8, candidates=0)
    as_dict = col.search(data[1][0], 5, plan={"kind": "funnel", "dims": 8, "candidates": 40})
    assert ids_of(as_dict) == ids_of(col.search(data[1][0], 5, plan=plans.Funnel(dims=8, candidates=40)))


# ---- explain ----

def test_explain_is_complete_before_and_after_execution(db, data):
    col = filled(db, data, mrl_dims=[16])
    query = data[1][0]
    planned = col.explain(query, 10, filter={"group": {"$lt": 100}})
    assert not planned.executed and planned.total_us is None
    assert set(planned.estimates) == {"points", "allowed", "selectivity", "k", "repeated_filter"}
    assert planned.estimated_us == pytest.approx(sum(stage.estimated_us for stage in planned.stages))
    assert planned.description in [text for text, _ in planned.alternatives]
    assert all(stage.actual_us is None for stage in planned.stages)
    ran = col.explain(query, 10, plan=plans.Funnel(dims=16, candidates=80), execute=True)
    assert ran.executed and ran.reason == "requested" and ran.total_us > 0
    assert [stage.results for stage in ran.stages] == [80, 10]
    assert all(stage.actual_us > 0 for stage in ran.stages)
    text = str(ran)
    assert "Funnel(dims=16, candidates=80" in text and "took" in text
    as_dict = ran.to_dict()
    assert as_dict["plan"] == {"kind": "funnel", "dims": 16, "candidates": 80, "ef": None}
    assert len(as_dict["stages"]) == 2


# ---- tune ----

def test_tune_reaches_its_target_on_held_out_queries_and_becomes_the_default(tmp_path, data):
    path = tmp_path / "db"
    with vecdb.open(path) as db:
        col = filled(db, data, mrl_dims=[8, 16])
        report = col.tune(target_recall=0.9, k=10, queries=100, seed=3)
        assert report.recall >= 0.9 and report.held_out_recall >= 0.9
        assert report.trials and all({"plan", "recall", "latency_us", "estimated_us"} <= set(t) for t in report.trials)
        assert any(t["plan"]["kind"] == "funnel" for t in report.trials)
        again = col.tune(target_recall=0.9, k=10, queries=100, seed=3)
        # Same seed, same plans tried with the same recalls (the choice among
        # them also weighs measured time).
        assert [(t["plan"], t["recall"]) for t in again.trials] == [(t["plan"], t["recall"]) for t in report.trials]
        assert again.plan in [plans.plan_from_dict(t["plan"]) for t in again.trials if t["meets_target"]]
        assert "chosen" in str(report)
    with vecdb.open(path) as db:
        col = db.get_collection("c")
        assert col.stats()["default_plan"] == {"kind": again.plan.kind, **vars(again.plan)}
        explanation = col.explain(data[1][0], 10)  # the tuned plan is weighed (against a scan, at 3,000 points)
        assert again.plan.describe(10) in [text for text, _ in explanation.alternatives]


def test_tune_with_real_queries(db, data):
    base, queries = data
    col = filled(db, data, mrl_dims=[16])
    report = col.tune(target_recall=0.95, queries=queries)
    truth, _ = vecdb.knn(base, queries, k=10, metric="cosine")
    found = [ids_of(h) for h in col.search(queries, 10, plan=report.plan)]
    assert recall(found, truth) >= 0.9
    with pytest.raises(InvalidArgumentError, match="target_recall"):
        col.tune(target_recall=1.5)


# ---- PCA rotation ----

@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_rotation_preserves_full_dimension_distances(metric):
    rng = np.random.default_rng(1)
    sample = rng.standard_normal((500, 32)).astype(np.float32) * np.linspace(3, 0.1, 32, dtype=np.float32)
    rotation = learn_pca_rotation(sample @ rng.standard_normal((32, 32)).astype(np.float32), metric)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(32), atol=1e-5)
    points, queries = rng.standard_normal((50, 32)).astype(np.float32), rng.standard_normal((5, 32)).astype(np.float32)
    before = vecdb.pairwise_distances(points, queries, metric=metric)
    after = vecdb.pairwise_distances(points @ rotation, queries @ rotation, metric=metric)
    np.testing.assert_allclose(after, before, atol=1e-5 * max(1.0, float(np.abs(before).max())))


def test_rotation_orders_axes_by_variance_and_is_deterministic():
    rng = np.random.default_rng(2)
    hidden = rng.standard_normal((2000, 16)) * np.linspace(0.1, 4, 16)  # most variance last
    sample = (hidden @ np.linalg.qr(rng.standard_normal((16, 16)))[0]).astype(np.float32)
    rotation = learn_pca_rotation(sample, "l2")
    variances = (sample @ rotation).var(axis=0)
    assert np.all(np.diff(variances) <= 1e-3 * variances[0])
    np.testing.assert_array_equal(rotation, learn_pca_rotation(sample, "l2"))


def test_rotated_collection_learns_once_and_helps_prefixes(tmp_path):
    rng = np.random.default_rng(4)
    dim = 64
    # Not MRL-ordered: the informative directions are spread over all dimensions.
    mixed = mrl_like(rng, 3000, dim) @ np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
    base, queries = mixed[:2900], mixed[2900:]
    truth, _ = vecdb.knn(base, queries, k=10, metric="cosine")
    results = {}
    for rotate in (None, "pca"):
        with vecdb.open(tmp_path / str(rotate)) as db:
            col = db.create_collection("c", dim=dim, mrl_dims=[8], rotate=rotate)
            col.upsert(list(range(len(base))), base)
            col.wait_indexed()
            assert col.stats()["mrl"]["rotation_trained"] == (rotate == "pca")
            found = [ids_of(h) for h in col.search(queries, 10, plan=plans.Funnel(dims=8, candidates=30))]
            results[rotate] = recall(found, truth)
            np.testing.assert_array_equal(col.get([5], with_vector=True)[0].vector, base[5])  # stored as given
    assert results["pca"] > results[None] + 0.1


def test_rotation_and_prefix_snapshots_survive_reopen(tmp_path, data):
    base, queries = data
    path = tmp_path / "db"
    with vecdb.open(path) as db:
        col = db.create_collection("c", dim=64, mrl_dims=[8, 16], rotate="pca")
        col.upsert(list(range(len(base))), base)
        col.wait_indexed()
        before = [ids_of(h) for h in col.search(queries, 10, plan=plans.Funnel(dims=8, candidates=50))]
    snapshots = sorted(p.name for p in (path / SNAPSHOT_FOLDER).iterdir())
    assert len([name for name in snapshots if ".mrl" in name and ".r1." in name]) == 2
    with vecdb.open(path) as db:
        col = db.get_collection("c")
        assert col.stats()["index_source"] == "snapshot"
        assert [ids_of(h) for h in col.search(queries, 10, plan=plans.Funnel(dims=8, candidates=50))] == before
        col.learn_rotation()
        assert col.stats()["mrl"]["rotation_version"] == 2
    names = [p.name for p in (path / SNAPSHOT_FOLDER).iterdir()]
    assert not [name for name in names if ".r1." in name] and len([n for n in names if ".r2." in n]) == 2
    with vecdb.open(path) as db:
        db.drop_collection("c")
    assert not list((path / SNAPSHOT_FOLDER).glob("*.mrl*"))


def test_prefix_indexes_replay_writes_after_a_crash(tmp_path, data, monkeypatch):
    monkeypatch.setattr(vecdb.collection, "SNAPSHOT_MIN_CHANGES", 100)
    base, queries = data
    path = tmp_path / "db"
    db = vecdb.open(path)
    col = db.create_collection("c", dim=64, mrl_dims=[16])
    col.upsert(list(range(2000)), base[:2000])  # snapshots (2,000 changes >= 100)
    col.wait_indexed()
    col.upsert(list(range(2000, 3000)), base[2000:])
    col.wait_indexed()
    col.delete([1, 2, 3])
    # As after a crash: no snapshot on close, the last writes are only in LMDB.
    col._changes_since_snapshot = 0
    db.close()
    with vecdb.open(path) as db:
        col = db.get_collection("c")
        assert col.stats()["index_source"] == "snapshot+replay"
        hits = col.search(base[2500], 1, dims=16)
        assert ids_of(hits) == [2500]
        assert not {1, 2, 3} & set(ids_of(col.search(base[1], 20, dims=16)))


def test_damaged_rotation_opens_without_prefixes(tmp_path, data):
    path = tmp_path / "db"
    with vecdb.open(path) as db:
        col = db.create_collection("c", dim=64, mrl_dims=[8], rotate="pca")
        col.upsert(list(range(len(data[0]))), data[0])
        col.wait_indexed()
        store = col._store
        db._environment.write(lambda txn: store.put_rotation(txn, b"garbage"))
    for snapshot in (path / SNAPSHOT_FOLDER).glob("*.mrl*"):
        snapshot.unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with vecdb.open(path) as db:
            col = db.get_collection("c")
            assert len(col.search(data[1][0], 5)) == 5
            assert not col._indexes.prefixes
            col.learn_rotation()
            assert len(col.search(data[1][0], 5, dims=8)) == 5
    assert any("rotation" in str(w.message) for w in caught)


def test_read_only_handle_adopts_the_writers_rotation(tmp_path, data):
    path = tmp_path / "db"
    writer = vecdb.open(path)
    col = writer.create_collection("c", dim=64, mrl_dims=[8], rotate="pca")
    col.upsert(list(range(100)), data[0][:100])
    col.wait_indexed()
    reader = vecdb.open(path, read_only=True)
    seen = reader.get_collection("c")
    with pytest.raises(InvalidArgumentError, match="rotation"):
        seen.search(data[1][0], 5, dims=8)
    col.upsert(list(range(100, 3000)), data[0][100:])
    col.wait_indexed()
    reader.refresh()
    assert ids_of(seen.search(data[0][2000], 1, dims=8)) == ids_of(col.search(data[0][2000], 1, dims=8))
    reader.close()
    writer.close()


def test_the_tuned_plan_runs_for_its_k_and_yields_to_a_searchs_own_ef(db, data):
    col = filled(db, data, mrl_dims=[16])
    report = col.tune(target_recall=0.9, k=10, queries=50)
    query = data[1][0]
    tuned = col.explain(query, 10)
    assert tuned.reason == "the collection's tuned plan (Collection.tune)"  # even where a scan looks cheaper
    assert type(tuned.plan) is type(report.plan)
    if hasattr(report.plan, "ef"):
        assert col.explain(query, 10, ef=300).plan.ef == 300
    assert col.explain(query, 50).reason != tuned.reason  # tuned for k=10 only


def test_flat_mrl_collection_funnels_when_cheaper_than_scanning(db):
    rng = np.random.default_rng(8)
    col = db.create_collection("flat", dim=256, index=vecdb.Flat(), mrl_dims=[16])
    col.upsert(list(range(20_000)), mrl_like(rng, 20_000, 256))
    col.wait_indexed()
    assert isinstance(col.explain(mrl_like(rng, 1, 256)[0], 10).plan, plans.Funnel)


@pytest.mark.parametrize("call, message", [
    (lambda col, q: col.search(q, 5, plan={"kind": []}), "'kind'"),
    (lambda col, q: col.explain(np.ones((0, 64), dtype=np.float32)), "at least one query"),
    (lambda col, q: col.tune(target_recall="0.9"), "target_recall"),
    (lambda col, q: col.tune(target_recall=True), "target_recall"),
    (lambda col, q: col.tune(target_recall=0.0), "target_recall"),
    (lambda col, q: col.tune(seed=-1), "seed"),
    (lambda col, q: col.tune(seed="x"), "seed"),
    (lambda col, q: col.tune(queries=np.ones((4, 3))), "dimension|dim"),
])
def test_bad_planner_arguments_get_clear_errors(db, data, call, message):
    col = filled(db, data, mrl_dims=[16])
    with pytest.raises(vecdb.errors.VecdbError, match=message):
        call(col, data[1][0])


def test_rotate_checks_the_validated_prefix_list(db):
    with pytest.raises(InvalidArgumentError, match="needs mrl_dims"):
        db.create_collection("empty", dim=64, mrl_dims=(d for d in []), rotate="pca")
    col = db.create_collection("array", dim=64, mrl_dims=np.array([8, 16]), rotate="pca")
    assert col.stats()["mrl"]["dims"] == [8, 16]


@pytest.mark.parametrize("index", [vecdb.HNSW(M=8, ef_construction=32), vecdb.Flat()])
def test_allowed_count_leaves_out_deleted_points(db, index):
    """A negated filter's mask also allows labels of deleted points (they
    lack every field); the planner's count must not, or it overstates the
    filter's selectivity after heavy deletes."""
    col = db.create_collection("deleted", dim=8, index=index)
    vectors = np.random.default_rng(0).standard_normal((3000, 8)).astype(np.float32)
    col.upsert(list(range(3000)), vectors, [{"g": i % 10} for i in range(3000)])
    col.wait_indexed()
    col.delete(ids=list(range(2900)))
    spec = {"g": {"$ne": 3}}
    explanation = col.explain(vectors[0], k=5, filter=spec)
    assert explanation.estimates["allowed"] == col.count(filter=spec) == 90
    assert explanation.estimates["points"] == 100
