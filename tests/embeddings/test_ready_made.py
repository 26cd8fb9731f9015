"""Every ready-made embedding function keeps the EmbeddingFunction contract,
and from_config rebuilds it from the config a collection stores; a config
it cannot rebuild is an error saying what to do. The package loads neither
the engine nor any embedding library until one is used."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from vecdb.embeddings import EmbeddingFunction, check_embedding_function, embed_batches, from_config
from vecdb.errors import InvalidArgumentError

from tests.embeddings.conftest import API_KEY

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Interest rates rose again.", "", "ünïcödé text 漢字"]


@pytest.fixture(params=["hashing", "wordllama", "sentence-transformers", "openai"])
def ready_made(request, monkeypatch) -> EmbeddingFunction:
    """Each ready-made function (sentence-transformers and OpenAI against the stand-ins of conftest.py)."""
    from vecdb.embeddings import Hashing, OpenAI, SentenceTransformer, WordLlama

    if request.param == "hashing":
        return Hashing(32)
    if request.param == "wordllama":
        pytest.importorskip("wordllama")
        return WordLlama(128)
    if request.param == "sentence-transformers":
        request.getfixturevalue("fake_sentence_transformers")
        return SentenceTransformer("BAAI/bge-small-en-v1.5")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)  # what a rebuilt one reads
    return OpenAI(base_url=request.getfixturevalue("openai_endpoint").url, batch_size=3)


def test_keeps_the_protocol(ready_made):
    assert isinstance(ready_made, EmbeddingFunction)
    assert check_embedding_function(ready_made) is ready_made
    vectors = ready_made(TEXTS)
    assert vectors.shape == (len(TEXTS), ready_made.dim) and vectors.dtype == np.float32
    assert vectors.flags.c_contiguous and np.isfinite(vectors).all()
    empty = ready_made([])
    assert empty.shape == (0, ready_made.dim) and empty.dtype == np.float32


def test_is_deterministic_and_batch_blind(ready_made):
    whole = ready_made(TEXTS)
    np.testing.assert_array_equal(ready_made(TEXTS), whole)
    np.testing.assert_allclose(embed_batches(ready_made, TEXTS, batch_size=1), whole, rtol=1e-5, atol=1e-6)


def test_is_rebuilt_from_its_config(ready_made):
    config = json.loads(json.dumps(ready_made.config()))  # as stored
    assert config["name"] == ready_made.name
    rebuilt = from_config(config)
    assert type(rebuilt) is type(ready_made) and rebuilt.config() == ready_made.config()
    np.testing.assert_allclose(rebuilt(TEXTS), ready_made(TEXTS), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", [{"name": "my-model"}, {"name": "my-model", "kind": "custom"},
                                    {"name": "my-model", "kind": None}])
def test_a_custom_functions_config_asks_for_the_function(config):
    with pytest.raises(InvalidArgumentError, match=r"'my-model' is not one vecdb ships .*embedding=<your function>"):
        from_config(config)


@pytest.mark.parametrize("config, message", [
    ({"kind": "hashing", "dim": 64}, "a dict with a 'name'"),
    ("hashing/64", "a dict with a 'name'"),
    ({"kind": "hashing", "name": "hashing/64", "dim": 64, "salt": 3}, "cannot rebuild .*'hashing/64'.*salt"),
    ({"kind": "hashing", "name": "hashing/32", "dim": 64}, "rebuilds a function named 'hashing/64', not 'hashing/32'"),
])
def test_a_damaged_config_is_refused(config, message):
    with pytest.raises(InvalidArgumentError, match=message):
        from_config(config)


def test_the_package_loads_no_engine_and_no_embedding_library():
    program = ("import json, sys, vecdb.embeddings; from vecdb.embeddings import Hashing; Hashing()(['a']); "
               "print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", program], check=True, capture_output=True,
                                       text=True).stdout)
    heavy = ("vecdb._core", "lmdb", "vecdb.storage", "vecdb.collection", "vecdb.database",
             "wordllama", "sentence_transformers", "torch", "httpx")
    assert [module for module in loaded if any(module == name or module.startswith(name + ".") for name in heavy)] == []
