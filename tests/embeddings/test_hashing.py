"""Hashing: a lexical embedding that must rank texts sharing words above
unrelated ones, and give the same vectors in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb.embeddings import Hashing
from vecdb.errors import InvalidArgumentError, InvalidDTypeError

TEXTS = ["The quick brown fox jumps over the lazy dog", "A quick brown fox jumped over a lazy dog!",
         "Interest rates rose again at the central bank", "naïve café déjà vu", ""]


def test_texts_sharing_words_score_higher_than_unrelated_ones():
    embed = Hashing(64)
    query, paraphrase, unrelated = embed(["quick brown fox over the lazy dog", TEXTS[1], TEXTS[2]])
    assert query @ paraphrase > query @ unrelated
    # Nearest neighbours by cosine (unit vectors: dot product) pair each text with its near-copy.
    corpus = embed(["the cat sat on the mat", "stocks fell sharply on monday", "a recipe for apple pie"])
    queries = embed(["a cat sat on a mat", "on monday stocks fell", "apple pie recipe"])
    assert list(np.argmax(queries @ corpus.T, axis=1)) == [0, 1, 2]


def test_vectors_are_unit_length_case_blind_and_empty_text_is_zero():
    vectors = Hashing(32)(TEXTS)
    assert vectors.shape == (5, 32) and vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors[:4], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(vectors[4], 0.0)
    np.testing.assert_array_equal(Hashing(32)(["QUICK Brown fox"]), Hashing(32)(["quick brown FOX"]))
    np.testing.assert_array_equal(Hashing(32)(["!!! ..."]), np.zeros((1, 32)))
    assert Hashing(8)([]).shape == (0, 8)


def test_word_order_counts_a_little():
    one, other = Hashing(256)(["dog bites man", "man bites dog"])
    assert 0.5 < one @ other < 1.0 - 1e-6


def test_vectors_are_the_same_in_every_process():
    """Python salts str hashes per process (PYTHONHASHSEED): Hashing must not depend on them."""
    program = ("import json, sys; from vecdb.embeddings import Hashing; "
               "print(json.dumps(Hashing(48)(json.loads(sys.argv[1])).tolist()))")
    runs = []
    for seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(Path(vecdb.__file__).parents[1])}
        runs.append(json.loads(subprocess.run([sys.executable, "-c", program, json.dumps(TEXTS)], check=True,
                                              capture_output=True, text=True, env=environment).stdout))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(np.array(runs[0], dtype=np.float32), Hashing(48)(TEXTS))


def test_name_and_config_carry_the_dimension():
    assert Hashing().dim == 64 and Hashing().name == "hashing/64"
    assert Hashing(dim=100).config() == {"kind": "hashing", "name": "hashing/100", "dim": 100}


@pytest.mark.parametrize("dim, error", [(0, InvalidArgumentError), (-3, InvalidArgumentError),
                                        (10**6, InvalidArgumentError), (2.5, InvalidDTypeError),
                                        (True, InvalidDTypeError), ("64", InvalidDTypeError)])
def test_bad_dimensions_are_refused(dim, error):
    with pytest.raises(error, match="dim"):
        Hashing(dim)


def test_texts_must_be_str():
    with pytest.raises(InvalidDTypeError, match="single string"):
        Hashing()("one text")
    with pytest.raises(InvalidDTypeError, match=r"texts\[0\]"):
        Hashing()([42])
