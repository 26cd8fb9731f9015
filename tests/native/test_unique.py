"""The sorting replacements of np.unique (vecdb.native.arrays: np.unique's
C++ path aborts a daemon thread's process at exit) give np.unique's answers:
empty, one value, all equal, negatives, many repeats."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vecdb.native.arrays import unique_first, unique_sorted

LABELS = arrays(np.int64, st.integers(0, 300), elements=st.integers(-5, 40))


@given(LABELS)
def test_unique_sorted_is_np_unique(values):
    np.testing.assert_array_equal(unique_sorted(values), np.unique(values))


@given(LABELS)
def test_unique_first_is_np_unique_with_first_indexes(values):
    distinct, first = unique_first(values)
    expected_distinct, expected_first = np.unique(values, return_index=True)
    np.testing.assert_array_equal(distinct, expected_distinct)
    np.testing.assert_array_equal(first, expected_first)
