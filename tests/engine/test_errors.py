"""Bad input gets a vecdb.errors exception naming the problem; never a crash,
a silent wrong answer, or a partial write."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from vecdb.errors import DimensionMismatchError, InvalidArgumentError, InvalidDTypeError, VecdbError


@pytest.fixture
def index():
    idx = vecdb.FlatIndex(4, metric="l2")
    idx.add(np.eye(4, dtype=np.float32))
    return idx


def test_error_classes_are_builtin_compatible():
    assert issubclass(InvalidArgumentError, ValueError) and issubclass(InvalidArgumentError, VecdbError)
    assert issubclass(DimensionMismatchError, InvalidArgumentError)
    assert issubclass(InvalidDTypeError, TypeError) and issubclass(InvalidDTypeError, VecdbError)
    assert InvalidArgumentError.http_status == 400


@pytest.mark.parametrize(
    "queries, error, message",
    [
        (np.ones(3), DimensionMismatchError, "dimension 3, expected 4"),
        (np.ones((2, 5)), DimensionMismatchError, "dimension 5, expected 4"),
        (np.ones((2, 2, 4)), DimensionMismatchError, "1-D vector or a 2-D array, got 3-D"),
        (np.float32(1.0), DimensionMismatchError, "got 0-D"),
        (np.array([1.0, np.nan, 0, 0]), InvalidArgumentError, "row 0 of queries contains NaN"),
        (np.array([[0, 0, 0, 0], [1.0, 0, np.inf, 0]]), InvalidArgumentError, "row 1 of queries contains NaN or infinity"),
        (np.array(["a", "b", "c", "d"]), InvalidDTypeError, "numeric array"),
        (np.array([1 + 2j, 0, 0, 0]), InvalidDTypeError, "numeric array"),
        ([[1, 2, 3, 4], [1, 2]], InvalidDTypeError, "numeric array"),
        (np.ones(4, dtype=bool), InvalidDTypeError, "numeric array"),
    ],
)
def test_bad_queries(index, queries, error, message):
    with pytest.raises(error, match=message):
        index.search(queries, 1)
    with pytest.raises(error, match=message):
        vecdb.knn(np.eye(4, dtype=np.float32), queries, 1)


@pytest.mark.parametrize(
    "k, error, message",
    [
        (0, InvalidArgumentError, "k must be >= 1, got 0"),
        (-3, InvalidArgumentError, "k must be >= 1, got -3"),
        (1.5, InvalidDTypeError, "k must be an integer"),
        ("10", InvalidDTypeError, "k must be an integer"),
        (True, InvalidDTypeError, "k must be an integer"),
        (None, InvalidDTypeError, "k must be an integer"),
    ],
)
def test_bad_k(index, k, error, message):
    with pytest.raises(error, match=message):
        index.search(np.ones(4), k)


def test_numpy_integer_k_is_fine(index):
    ids, _ = index.search(np.ones(4), np.int64(2))
    assert ids.shape == (2,)


def test_bad_vectors_write_nothing(index):
    bad = np.ones((10, 4), dtype=np.float32)
    bad[7, 2] = np.nan
    with pytest.raises(InvalidArgumentError, match="row 7 of vectors contains NaN"):
        index.add(bad)
    with pytest.raises(DimensionMismatchError, match="dimension 3, expected 4"):
        index.add(np.ones((2, 3)))
    assert len(index) == 4


def test_float16_overflow_is_refused():
    index = vecdb.FlatIndex(2, dtype="float16")
    with pytest.raises(InvalidArgumentError, match="row 1 of vectors has values outside the float16 range"):
        index.add(np.array([[1.0, 2.0], [1e6, 0.0]]))
    assert len(index) == 0


def test_int8_index_needs_integers_in_range():
    index = vecdb.FlatIndex(2, dtype="int8")
    with pytest.raises(InvalidDTypeError, match="must be integers for an int8 index"):
        index.add(np.array([[0.5, 1.0]]))
    with pytest.raises(InvalidArgumentError, match="outside the int8 range"):
        index.add(np.array([[300, 1]]))
    index.add(np.array([[-128, 127]]))
    assert len(index) == 1


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"dim": 0}, InvalidArgumentError, "dimension must be between 1 and 32768, got 0"),
        ({"dim": 100000}, InvalidArgumentError, "dimension must be between 1"),
        ({"dim": 4, "metric": "hamming"}, InvalidArgumentError, "unknown metric 'hamming'"),
        ({"dim": 4, "dtype": "float64"}, InvalidArgumentError, "unsupported dtype 'float64'"),
        ({"dim": 4, "dtype": "bogus"}, InvalidArgumentError, "unsupported dtype 'bogus'"),
    ],
)
def test_bad_index_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        vecdb.FlatIndex(**kwargs)


def test_metric_aliases():
    assert vecdb.FlatIndex(3, metric="dot").metric == "ip"
    assert vecdb.FlatIndex(3, metric="Euclidean").metric == "l2"
    assert vecdb.FlatIndex(3, metric="COSINE").metric == "cosine"


@pytest.mark.parametrize(
    "allowed, error, message",
    [
        (np.ones(3, dtype=bool), InvalidArgumentError, "allowed mask has length 3, expected 4"),
        ([0, 4], InvalidArgumentError, "allowed id 4 is out of range"),
        ([-1], InvalidArgumentError, "allowed id -1 is out of range"),
        ([[0, 1]], InvalidArgumentError, "allowed must be 1-D"),
        (np.array([0.5, 1.0]), InvalidDTypeError, "boolean mask or integer ids"),
    ],
)
def test_bad_filters(index, allowed, error, message):
    with pytest.raises(error, match=message):
        index.search(np.ones(4), 2, allowed=allowed)


@pytest.mark.parametrize("threads, error", [(0, InvalidArgumentError), (-1, InvalidArgumentError), (1.5, InvalidDTypeError)])
def test_bad_threads(index, threads, error):
    with pytest.raises(error, match="threads"):
        index.search(np.ones(4), 1, threads=threads)


def test_knn_needs_2d_data():
    with pytest.raises(DimensionMismatchError, match="data must be a 2-D array"):
        vecdb.knn(np.ones(4), np.ones(4), 1)


def test_native_module_refuses_wrong_layouts_itself():
    # The Python layer converts; the native layer must still refuse rather
    # than reinterpret memory if called directly.
    from vecdb import _core

    data = np.ones((5, 4), dtype=np.float32)
    with pytest.raises(InvalidArgumentError, match="must be C-contiguous"):
        _core.knn(np.asfortranarray(np.ones((5, 4), dtype=np.float32)), data, 1, "l2", None, 1)
    with pytest.raises(InvalidArgumentError, match="queries must be float32, got float16"):
        _core.knn(data, data.astype(np.float16), 1, "l2", None, 1)
    with pytest.raises(InvalidArgumentError, match="unsupported dtype"):
        _core.knn(data.astype(np.float64), data, 1, "l2", None, 1)
    with pytest.raises(InvalidArgumentError, match="words"):
        _core.knn(np.ones((200, 4), dtype=np.float32), data, 1, "l2", np.zeros(1, dtype=np.uint64), 1)
    with pytest.raises(InvalidArgumentError, match="native byte order"):
        _core.knn(data.astype(">f4"), data, 1, "l2", None, 1)
