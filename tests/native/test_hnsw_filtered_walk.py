"""Filtered HNSW search at every selectivity (issue 18, part 4).

A filter letting through between 1.5 / 2M (4.7% with M=16) and 25% of
the points walks two hops (csrc/hnsw/graph.h, "Filtered search"): rejected
neighbours are stepped through unscored instead of scored. Below and above
that range the search walks through every node. Every regime must return only allowed, live
points, with high recall against a brute-force oracle, and keep the
contracts of the unfiltered walk: copies of one vector, deletes, searches
wanting more results than the walk reached. Correctness only: speed is
bench/planner's job.
"""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from tests.support import reference
from tests.support.datasets import low_rank_clusters

DIM = 48
# Shares around and inside the two-hop range [1.5/32, 0.25) of M=16.
SHARES = [0.001, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5]


@pytest.fixture(scope="module")
def built():
    base, queries = low_rank_clusters(np.random.default_rng(18), 10_000, 60, DIM)
    index = vecdb.HNSWIndex(DIM, metric="l2", M=16, ef_construction=100)
    index.add(base, threads=2)
    return index, base, queries


def random_mask(n: int, share: float, seed: int) -> np.ndarray:
    """Exactly round(share * n) allowed points (at least one), at random."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[: max(1, round(share * n))]] = True
    return mask


@pytest.mark.parametrize("share", SHARES)
def test_results_pass_the_filter_with_high_recall(built, share):
    index, base, queries = built
    mask = random_mask(len(base), share, seed=int(share * 1000))
    ids, distances = index.search(queries, 10, ef=96, allowed=mask, threads=1)
    assert mask[ids[ids >= 0]].all()
    truth, _ = reference.knn(queries, base, 10, "l2", allowed=mask)
    assert reference.recall(ids, truth) >= 0.9
    # Returned distances are the true ones, closest first.
    found = ids >= 0
    exact = reference.distances(queries, base, "l2")
    np.testing.assert_allclose(distances[found], np.take_along_axis(exact, np.where(found, ids, 0), 1)[found],
                               rtol=1e-4, atol=1e-3)
    assert (np.diff(np.where(found, distances, np.inf), axis=1) >= 0).all()


@pytest.mark.parametrize("share", [0.02, 0.1, 0.2, 0.5])
def test_deleted_points_are_stepped_over_never_returned(share):
    base, queries = low_rank_clusters(np.random.default_rng(3), 4000, 40, DIM)
    index = vecdb.HNSWIndex(DIM, metric="l2", M=16, ef_construction=60)
    index.add(base, threads=2)
    gone = np.random.default_rng(4).permutation(len(base))[:1500]
    index.delete(gone)
    live = np.ones(len(base), dtype=bool)
    live[gone] = False
    # Half the allowed ids are deleted ones: the walk must pass through them.
    mask = random_mask(len(base), share, seed=5) | random_mask(len(base), share, seed=6) & ~live
    ids, _ = index.search(queries, 10, ef=96, allowed=mask, threads=1)
    returned = ids[ids >= 0]
    assert mask[returned].all() and live[returned].all()
    truth, _ = reference.knn(queries, base, 10, "l2", allowed=mask & live)
    assert reference.recall(ids, truth) >= 0.9


@pytest.mark.parametrize("n", [3, 4, 5, 33])
def test_one_allowed_point_is_found_from_anywhere(n):
    """One point in n (1 in 5 walks two hops with M=4) is found wherever
    the walk starts."""
    rng = np.random.default_rng(n)
    base = rng.standard_normal((n, 3)).astype(np.float32)
    index = vecdb.HNSWIndex(3, metric="l2", M=4, ef_construction=4)
    index.add(base)
    queries = rng.standard_normal((5, 3))
    for point in range(n):
        ids, distances = index.search(queries, 3, ef=3, allowed=[point])
        assert (ids[:, 0] == point).all() and (ids[:, 1:] == -1).all() and np.isinf(distances[:, 1:]).all()


def test_empty_and_full_filters(built):
    index, base, queries = built
    ids, distances = index.search(queries, 10, allowed=np.zeros(len(base), dtype=bool))
    assert (ids == -1).all() and np.isinf(distances).all()
    unfiltered = index.search(queries, 10, ef=48)
    everything = index.search(queries, 10, ef=48, allowed=np.ones(len(base), dtype=bool))
    np.testing.assert_array_equal(everything[0], unfiltered[0])
    np.testing.assert_array_equal(everything[1], unfiltered[1])


@pytest.mark.parametrize(("M", "share"), [(4, 0.2), (4, 0.22), (5, 0.16)])
def test_room_for_every_allowed_point_returns_them_all(M, share):
    """Pruned links (small M, an inner product in 2-d) leave nodes no walk
    reaches; a search wanting as many results as the filter allows still
    returns every allowed point (it walks on from unvisited allowed ones)."""
    for seed in range(10):
        rng = np.random.default_rng(seed)
        base = rng.standard_normal((200, 2)).astype(np.float32)
        index = vecdb.HNSWIndex(2, metric="ip", M=M, ef_construction=4)
        index.add(base)
        allowed = np.flatnonzero(random_mask(200, share, seed))
        ids, _ = index.search(rng.standard_normal((4, 2)), len(allowed), ef=len(allowed), allowed=allowed)
        assert (np.sort(ids, axis=1) == allowed).all()


def test_copies_of_a_rejected_head_are_found():
    """Vectors stored several times (a head and its copies, graph.h): a
    filter rejecting the head but allowing a copy still finds that copy at
    the head's distance, and copies count once in the beam."""
    rng = np.random.default_rng(11)
    distinct, _ = low_rank_clusters(rng, 3000, 0, DIM)
    repeated = np.arange(0, 3000, 10)
    # Ids 0..2999 are the heads; three copies of each repeated row follow.
    base = np.concatenate([distinct] + [distinct[repeated]] * 3)
    index = vecdb.HNSWIndex(DIM, metric="l2", M=8, ef_construction=60)
    index.add(base, threads=2)
    copy_ids = 3000 + len(repeated) * np.arange(3)[:, None] + np.arange(len(repeated))[None, :]
    # One copy of every repeated vector plus 10% of the heads: about 17% of
    # the points (the two-hop walk with M=8), no repeated head itself.
    mask = random_mask(len(base), 0.1, seed=12)
    mask[repeated] = False
    mask[3000:] = False
    mask[copy_ids[1]] = True
    queries = distinct[repeated[::7]]
    ids, distances = index.search(queries, 10, ef=64, allowed=mask, threads=1)
    assert mask[ids[ids >= 0]].all()
    np.testing.assert_array_equal(ids[:, 0], copy_ids[1, ::7])
    np.testing.assert_allclose(distances[:, 0], 0, atol=1e-4)
    allowed_rows = np.flatnonzero(mask)
    found = np.searchsorted(allowed_rows, np.where(ids >= 0, ids, allowed_rows[0]))
    assert reference.tie_aware_recall(np.where(ids >= 0, found, -1), queries, base[allowed_rows], 10, "l2") >= 0.9


@pytest.mark.parametrize("dtype", ["float16", "pq"])
def test_other_storages_walk_the_same_way(dtype):
    """The graph is blind to storage: float16 rows and PQ codes (then
    re-ranked) at 10% allowed."""
    base, queries = low_rank_clusters(np.random.default_rng(21), 4000, 40, 64)
    if dtype == "pq":
        quantizer = vecdb.ProductQuantizer(64, 16, "l2").train(base, iterations=8)
        index = vecdb.HNSWIndex(64, "l2", quantizer=quantizer)
    else:
        index = vecdb.HNSWIndex(64, "l2", dtype=dtype)
    index.add(base, threads=2)
    mask = random_mask(len(base), 0.1, seed=22)
    shortlist, _ = index.search(queries, 50, ef=100, allowed=mask, threads=1)
    assert mask[shortlist[shortlist >= 0]].all()
    ids, _ = vecdb.rerank(queries, shortlist, base, k=10, metric="l2")
    truth, _ = reference.knn(queries, base, 10, "l2", allowed=mask)
    assert reference.recall(ids, truth) >= 0.9


def test_a_mask_searched_again_is_read_as_it_is_now():
    # Only masks declared unchanging (freeze_mask: a collection's cached
    # filter masks) are packed once (vecdb/native/arrays.py); any other mask
    # is read anew, however its flags say it may change: in place, through
    # a view, or after being made writable again (two of these once returned
    # stale results). A frozen mask still covers points added since.
    import gc

    from vecdb.native import arrays

    base = np.eye(8, DIM, dtype=np.float32) + 0.01
    index = vecdb.HNSWIndex(DIM, metric="l2", M=4, ef_construction=20)
    index.add(base[:6])

    def found(mask):
        return set(index.search(base, 6, ef=16, allowed=mask, threads=1)[0].ravel().tolist()) - {-1}

    def mask_of(*ids):
        mask = np.zeros(8, dtype=bool)
        mask[list(ids)] = True
        return mask

    writable = mask_of(0, 1)
    assert found(writable) == {0, 1}
    writable[[0, 1]], writable[2] = False, True
    assert found(writable) == {2}

    view = writable[:]
    view.flags.writeable = False
    assert found(view) == {2}
    writable[3] = True
    assert found(view) == {2, 3}

    thawed = mask_of(0)
    thawed.flags.writeable = False
    assert found(thawed) == {0}
    thawed.flags.writeable = True
    thawed[0], thawed[1] = False, True
    thawed.flags.writeable = False
    assert found(thawed) == {1}

    owner = np.zeros(8, dtype=bool)
    earlier_view = owner[:]
    owner[4] = True
    owner.flags.writeable = False
    assert found(owner) == {4}
    earlier_view[4], earlier_view[5] = False, True
    assert found(owner) == {5}

    frozen = mask_of(4, 6, 7)
    arrays.freeze_mask(frozen)
    assert not frozen.flags.writeable
    assert found(frozen) == found(frozen) == {4}
    index.add(base[6:])
    assert found(frozen) == {4, 6, 7}
    key = id(frozen)
    assert key in arrays._frozen_masks
    del frozen
    gc.collect()
    assert key not in arrays._frozen_masks


@pytest.mark.parametrize("share", [0.1, 0.5])
def test_slots_holding_their_own_id_and_slots_that_do_not_filter_alike(share):
    # An index filled in id order tests a slot's filter bit without reading its id (its slot number is its
    # id); replaced ids move to new slots, compaction renumbers: every slot must still be judged by its id.
    rng = np.random.default_rng(7)
    base, queries = low_rank_clusters(rng, 3_000, 20, DIM)
    index = vecdb.HNSWIndex(DIM, metric="l2", M=8, ef_construction=64)
    index.add(base[:2_000])  # ids 0..1999 in slots 0..1999
    vectors = base[:2_000].copy()
    live = np.ones(2_000, dtype=bool)
    mask = random_mask(2_000, share, seed=3)

    def check():
        ids, _ = index.search(queries, 10, ef=400, allowed=mask)
        found = ids[ids >= 0]
        assert mask[found].all() and live[found].all()
        truth, _ = reference.knn(queries, vectors, 10, "l2", allowed=mask & live)
        assert reference.recall(ids, truth) >= 0.95

    check()
    replaced = np.arange(0, 2_000, 7)
    vectors[replaced] = base[2_000:2_000 + len(replaced)]
    index.add(vectors[replaced], ids=replaced)  # new slots, ids unlike their numbers
    index.delete(np.arange(1_500, 1_600))
    live[1_500:1_600] = False
    check()
    assert index.compact() > 0  # renumbered: slot 0's id is 1 now
    check()
