"""WordLlama with the real model from the wordllama wheel: offline, a
meaningful embedding (paraphrases near, unrelated texts far), its tokenizer
found through vecdb's cache folder, one model per process."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vecdb.embeddings import WordLlama, word_llama
from vecdb.errors import InvalidArgumentError

pytest.importorskip("wordllama")

# (query, its paraphrase, an unrelated sentence)
TRIPLES = [
    ("How do I reset my password?", "I forgot my password and need to change it.",
     "The weather in Paris is sunny today."),
    ("The stock market fell sharply this morning.", "Share prices dropped steeply early in the day.",
     "My grandmother bakes the best apple pie."),
    ("A dog is playing fetch in the park.", "A puppy chases a ball on the grass.",
     "The committee approved the annual budget."),
]


def test_a_paraphrase_ranks_above_an_unrelated_sentence():
    embed = WordLlama()
    for query, paraphrase, unrelated in TRIPLES:
        q, p, u = embed([query, paraphrase, unrelated])
        assert q @ p > q @ u, (query, paraphrase, unrelated)


def test_vectors_are_unit_float32_and_text_without_tokens_is_zero():
    vectors = WordLlama()([text for triple in TRIPLES for text in triple] + [""])
    assert vectors.shape == (10, 256) and vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors[:9], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[9], 0.0)  # not NaN, as wordllama's own norm=True gives
    assert WordLlama()([]).shape == (0, 256)


def test_smaller_dimensions_are_the_leading_dimensions_renormalized():
    texts = [text for triple in TRIPLES for text in triple]
    full = WordLlama(256)(texts)
    for dim in (64, 128):
        embed = WordLlama(dim)
        assert embed.name == f"wordllama/l2_supercat_{dim}" and embed.config()["dim"] == dim
        prefix = full[:, :dim] / np.linalg.norm(full[:, :dim], axis=1, keepdims=True)
        np.testing.assert_allclose(embed(texts), prefix, rtol=1e-5, atol=1e-6)


def test_one_model_per_dimension_per_process():
    assert WordLlama()._model is WordLlama(dim=256)._model
    assert WordLlama(64)._model is not WordLlama(256)._model


def test_the_tokenizer_is_cached_under_the_users_cache(monkeypatch, tmp_path):
    import wordllama

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(word_llama, "_models", {})
    vectors = WordLlama(64)(["a sentence"])
    tokenizers = tmp_path / "vecdb" / f"wordllama-{wordllama.__version__}" / "tokenizers"
    cached = tokenizers / "l2_supercat_tokenizer_config.json"
    assert cached.is_file() and [path.name for path in cached.parent.iterdir()] == [cached.name]
    # A second process (here: an emptied model table) reuses the cached file.
    monkeypatch.setattr(word_llama, "_models", {})
    np.testing.assert_array_equal(WordLlama(64)(["a sentence"]), vectors)


def test_an_unwritable_cache_falls_back_to_a_temporary_folder(monkeypatch, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("the cache home is a file: nothing can be made under it")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder))
    monkeypatch.setattr(word_llama, "_models", {})
    vectors = WordLlama()(["a sentence"])
    monkeypatch.undo()
    np.testing.assert_array_equal(vectors, WordLlama()(["a sentence"]))


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wordllama", None)
    monkeypatch.setattr(word_llama, "_models", {})
    with pytest.raises(ImportError, match=r'pip install "vecdb-engine\[embeddings\]"'):
        WordLlama()


@pytest.mark.parametrize("dim", [32, 512, 1024, True, "256"])
def test_dimensions_outside_the_wheel_are_refused(dim):
    with pytest.raises(InvalidArgumentError, match="one of 64, 128, 256"):
        WordLlama(dim)
