"""The checks every embedding goes through: texts in, the function's output
out, and the functions themselves; embed_batches, which applies them batch by batch."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
import pytest

from vecdb.embeddings import (
    EmbeddingFunction, Hashing, check_embedding_function, check_embeddings, check_texts, embed_batches,
)
from vecdb.errors import DimensionMismatchError, InvalidArgumentError, InvalidDTypeError
from vecdb.progress import Task


class Returns:
    """A user's embedding function of dim 4 that answers ``output(texts)``."""

    def __init__(self, output: Any, dim: int = 4) -> None:
        self.name, self.dim, self._output = "user/returns", dim, output
        self.calls: List[List[str]] = []

    def __call__(self, texts: Sequence[str]) -> Any:
        self.calls.append(list(texts))
        return self._output(texts)

    def config(self) -> Dict[str, Any]:
        return {"name": self.name}


def test_texts_must_be_a_list_of_str():
    assert check_texts(text for text in ["a", "b"]) == ["a", "b"]
    assert check_texts([]) == []
    with pytest.raises(InvalidDTypeError, match="single string"):
        check_texts("a text")
    with pytest.raises(InvalidDTypeError, match="list of texts"):
        check_texts(3)
    for wrong in (None, b"bytes", 7, ["nested"]):
        with pytest.raises(InvalidDTypeError, match=r"texts\[1\] is"):
            check_texts(["fine", wrong])


def test_a_user_function_is_checked_as_an_embedding_function():
    assert isinstance(Returns(np.zeros), EmbeddingFunction)
    assert check_embedding_function(Returns(np.zeros)) is not None
    with pytest.raises(InvalidDTypeError, match="name, dim, __call__"):
        check_embedding_function(lambda texts: np.zeros((len(texts), 4)))
    no_dim = Returns(np.zeros, dim=0)
    with pytest.raises(InvalidArgumentError, match="dim must be a positive integer"):
        check_embedding_function(no_dim)
    for config in ({"name": "another"}, {}, ["user/returns"]):
        function = Returns(np.zeros)
        function.config = lambda config=config: config
        with pytest.raises(InvalidArgumentError, match="'name' is 'user/returns'"):
            check_embedding_function(function)
    unjsonable = Returns(np.zeros)
    unjsonable.config = lambda: {"name": "user/returns", "weights": np.ones(2)}
    with pytest.raises(InvalidArgumentError, match="JSON-able"):
        check_embedding_function(unjsonable)


def test_output_becomes_contiguous_float32_of_the_declared_shape():
    function = Returns(np.zeros)
    given = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    vectors = check_embeddings(function, 3, given)
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_array_equal(vectors, given)
    np.testing.assert_array_equal(check_embeddings(function, 2, [[1, 2, 3, 4], [5, 6, 7, 8]]),
                                  [[1, 2, 3, 4], [5, 6, 7, 8]])


@pytest.mark.parametrize("output, error, message", [
    (np.zeros((2, 4)), DimensionMismatchError, r"shape \(2, 4\) for 3 texts, expected \(3, 4\)"),
    (np.zeros((3, 5)), DimensionMismatchError, r"expected \(3, 4\)"),
    (np.zeros(12), DimensionMismatchError, r"shape \(12,\)"),
    ([[0.0] * 4, [0.0] * 4, [0.0] * 3], InvalidArgumentError, "different lengths"),
    (np.full((3, 4), "x"), InvalidDTypeError, "expected float32 numbers"),
    (np.ones((3, 4), dtype=bool), InvalidDTypeError, "expected float32 numbers"),
    (np.array([[0.0] * 4, [0.0, np.nan, 0.0, 0.0], [0.0] * 4]), InvalidArgumentError, "NaN or infinity .* row 1 "),
    (np.full((3, 4), 1e300), InvalidArgumentError, "NaN or infinity"),  # beyond float32
])
def test_faulty_output_is_an_error_naming_the_function(output, error, message):
    with pytest.raises(error, match=message) as raised:
        check_embeddings(Returns(np.zeros), 3, output)
    assert "'user/returns'" in str(raised.value)


def test_embed_batches_calls_the_function_per_batch_and_reports_progress():
    texts = [f"text number {i} about {topic}" for i, topic in enumerate("abcdefg")]
    oracle = Hashing(4)
    function = Returns(oracle)
    reports: List[tuple] = []
    vectors = embed_batches(function, texts, batch_size=3, progress=lambda task, done, total:
                            reports.append((task, done, total)))
    assert [len(call) for call in function.calls] == [3, 3, 1]
    assert [call for batch in function.calls for call in batch] == texts
    np.testing.assert_array_equal(vectors, oracle(texts))
    assert vectors.flags.c_contiguous and vectors.dtype == np.float32
    assert [(done, total) for _, done, total in reports] == [(0, 7), (3, 7), (6, 7), (7, 7)]
    assert {task for task, _, _ in reports} == {Task("embedding texts with user/returns", "texts")}


def test_embed_batches_of_nothing_is_empty_without_a_call():
    function = Returns(np.zeros)
    vectors = embed_batches(function, [])
    assert vectors.shape == (0, 4) and vectors.dtype == np.float32
    assert function.calls == []


def test_embed_batches_refuses_bad_input_and_faulty_batches():
    with pytest.raises(InvalidArgumentError, match="batch_size must be >= 1"):
        embed_batches(Returns(np.zeros), ["a"], batch_size=0)
    with pytest.raises(InvalidDTypeError, match=r"texts\[0\]"):
        embed_batches(Returns(np.zeros), [None])
    # The second batch comes back one row short: caught there, with the function's name.
    short_second = Returns(lambda texts: np.zeros((len(texts) if "c" not in texts else 1, 4)))
    with pytest.raises(DimensionMismatchError, match=r"'user/returns' returned an array of shape \(1, 4\) for 2"):
        embed_batches(short_second, ["a", "b", "c", "d"], batch_size=2)
