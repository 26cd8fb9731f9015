"""LangChain's own standard suite for vector stores (langchain-tests),
sync and async, on both databases (tests/integrations/conftest.py)."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("langchain_tests")

from langchain_tests.integration_tests.vectorstores import EMBEDDING_SIZE, VectorStoreIntegrationTests  # noqa: E402

from vecdb.integrations.langchain import VecdbVectorStore  # noqa: E402


# The suite's async tests are plain coroutines (LangChain runs pytest-asyncio
# in auto mode): the class's mark runs them, and pytest-asyncio's warning that
# it also marks the sync ones is silenced.
@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The test <Function .* is marked with '@pytest.mark.asyncio' but it is not an async")
class TestVecdbVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, database):
        collection = database.create_collection(f"lc-{uuid.uuid4().hex[:12]}", dim=EMBEDDING_SIZE)
        yield VecdbVectorStore(collection, self.get_embeddings())
