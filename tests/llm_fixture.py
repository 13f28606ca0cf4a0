"""Session-scoped fixture running the real local LLM server (SmolLM2-135M via llama.cpp).

Import it from ``tests/conftest.py``: ``from tests.llm_fixture import llm_server``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from generation.llm_server import LlamaServer, free_port


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    log_path = tmp_path_factory.mktemp("llm") / "llama-server.log"
    with LlamaServer(port=free_port(), log_path=log_path, startup_timeout_s=180) as server:
        yield server
