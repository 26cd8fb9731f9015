"""SentenceTransformer against a stand-in sentence_transformers module
(tests/embeddings/conftest.py): the real package is not installed here and
its models would come from the Hugging Face Hub."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vecdb.embeddings import Hashing, SentenceTransformer, sentence_transformer
from vecdb.errors import InvalidArgumentError

from tests.embeddings.conftest import FAKE_ST_DIM


def test_vectors_are_the_models_normalized(fake_sentence_transformers):
    embed = SentenceTransformer()
    texts = ["a cat on a mat", "stocks fell", ""]
    vectors = embed(texts)
    assert embed.dim == FAKE_ST_DIM and embed.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_allclose(vectors, Hashing(FAKE_ST_DIM)(texts), rtol=1e-6, atol=1e-7)
    # Library code draws no progress bar of its own.
    assert fake_sentence_transformers.encodes[-1] == {"count": 3, "show_progress_bar": False,
                                                      "normalize_embeddings": True}


def test_normalize_false_keeps_the_models_lengths(fake_sentence_transformers):
    embed = SentenceTransformer(normalize=False)
    np.testing.assert_allclose(embed(["a cat on a mat"]), 3.0 * Hashing(FAKE_ST_DIM)(["a cat on a mat"]), rtol=1e-6)
    assert embed.config() == {"kind": "sentence-transformers", "name": "sentence-transformers/all-MiniLM-L6-v2",
                              "model": "all-MiniLM-L6-v2", "normalize": False}


def test_an_empty_list_is_not_sent_to_the_model(fake_sentence_transformers):
    embed = SentenceTransformer()
    assert embed([]).shape == (0, FAKE_ST_DIM)
    assert fake_sentence_transformers.encodes == []


def test_a_hub_id_is_its_own_name(fake_sentence_transformers):
    assert SentenceTransformer("BAAI/bge-small-en-v1.5").name == "BAAI/bge-small-en-v1.5"


def test_a_model_is_loaded_once_per_process_and_device(fake_sentence_transformers):
    first, second = SentenceTransformer(), SentenceTransformer(normalize=False)
    assert first._model is second._model
    SentenceTransformer(device="cpu")
    assert fake_sentence_transformers.loads == [("all-MiniLM-L6-v2", None), ("all-MiniLM-L6-v2", "cpu")]


def test_a_model_that_cannot_be_loaded_offline_is_a_clear_error(fake_sentence_transformers):
    with pytest.raises(InvalidArgumentError, match="cannot load the sentence-transformers model 'all-mpnet-base-v2'"
                                                   r".*couldn't connect.*without network access") as raised:
        SentenceTransformer("all-mpnet-base-v2")
    assert isinstance(raised.value.__cause__, OSError)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    monkeypatch.setattr(sentence_transformer, "_models", {})
    with pytest.raises(ImportError, match=r'pip install "vecdb-engine\[sentence-transformers\]"'):
        SentenceTransformer()


@pytest.mark.parametrize("model", ["", None, 3])
def test_a_model_must_be_named(fake_sentence_transformers, model):
    with pytest.raises(InvalidArgumentError, match="model must be"):
        SentenceTransformer(model)


def test_a_model_that_does_not_say_its_dimension_is_probed(fake_sentence_transformers, monkeypatch):
    monkeypatch.setattr(fake_sentence_transformers, "get_sentence_embedding_dimension", lambda self: None)
    assert SentenceTransformer().dim == FAKE_ST_DIM
