"""Routing of points to shards (vecdb.cluster.routing): stable across
processes and releases, spread evenly, consistent when a cluster grows, and
refusing bad ids before anything is routed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from vecdb.cluster.routing import group_by_shard, jump_hash, shard_of_key
from vecdb.errors import InvalidArgumentError, InvalidDTypeError
from vecdb.storage.keys import user_id_key

IDS = [0, 1, -1, 2**63 - 1, -(2**63), "a", "1", "doc-42", "ünïcode", "x" * 400]
# Their shards among 7, computed once and written down: a change of hash or
# key encoding would send a reopened cluster's lookups to the wrong shard.
GOLDEN = [6, 5, 6, 5, 3, 4, 5, 5, 6, 6]


def test_shards_are_fixed_values_so_a_release_cannot_move_stored_points():
    assert [shard_of_key(user_id_key(point_id), 7) for point_id in IDS] == GOLDEN


def test_the_same_in_another_process_with_another_hash_seed():
    script = ("from vecdb.cluster.routing import shard_of_key; from vecdb.storage.keys import user_id_key; "
              f"print([shard_of_key(user_id_key(i), 7) for i in {IDS!r}])")
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, PYTHONHASHSEED=seed),
                              capture_output=True, text=True, check=True)
        assert done.stdout.strip() == str(GOLDEN)


def test_an_integer_and_its_string_are_different_points():
    assert user_id_key(1) != user_id_key("1")
    spread = {shard_of_key(user_id_key(point_id), 1024) for point_id in (1, "1")}
    assert len(spread) == 2


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 16])
def test_points_spread_evenly(shards):
    counts = Counter(shard_of_key(user_id_key(point_id), shards) for point_id in range(40_000))
    assert set(counts) == set(range(shards))
    expected = 40_000 / shards
    # Binomial spread: 5 standard deviations of the count around its mean.
    bound = 5 * np.sqrt(expected * (1 - 1 / shards))
    assert all(abs(count - expected) <= bound for count in counts.values()), counts


@pytest.mark.parametrize("shards", [1, 2, 5, 9])
def test_growing_a_cluster_moves_points_only_to_the_new_shard(shards):
    before = [jump_hash(key, shards) for key in range(0, 2**64, 2**64 // 20_000)]
    after = [jump_hash(key, shards + 1) for key in range(0, 2**64, 2**64 // 20_000)]
    moved = [(old, new) for old, new in zip(before, after) if old != new]
    assert all(new == shards for _, new in moved)
    share = len(moved) / len(before)
    assert abs(share - 1 / (shards + 1)) < 0.02, share


def test_groups_cover_every_position_once_in_order():
    ids = [f"id-{i}" for i in range(1000)] + list(range(1000))
    groups = group_by_shard(ids, 4)
    positions = sorted(position for group in groups.values() for position in group)
    assert positions == list(range(len(ids)))
    for shard, group in groups.items():
        assert group == sorted(group)
        assert all(shard_of_key(user_id_key(ids[position]), 4) == shard for position in group)
    assert group_by_shard([], 3) == {}
    assert group_by_shard([np.int64(5)], 3) == group_by_shard([5], 3)


@pytest.mark.parametrize("bad, error", [(True, InvalidDTypeError), (1.5, InvalidDTypeError), ("", InvalidArgumentError),
                                        (2**64, InvalidArgumentError), (None, InvalidDTypeError)])
def test_a_bad_id_refuses_the_whole_batch(bad, error):
    with pytest.raises(error):
        group_by_shard(["fine", bad], 2)


@pytest.mark.parametrize("shards", [0, -1, 1.0, True])
def test_a_bad_shard_count_is_refused(shards):
    with pytest.raises((InvalidArgumentError, InvalidDTypeError)):
        group_by_shard(["a"], shards)
