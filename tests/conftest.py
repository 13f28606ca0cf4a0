"""Shared fixtures: the real packaged MiniLM (ONNX int8, exported once per session), the real llama.cpp
server (tests/llm_fixture.py), and a deterministic hashing embedder for fast control-flow tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingestion.embedder import EmbeddingBackend, HashingEmbedder, SentenceTransformerEmbedder
from tests.llm_fixture import llm_server  # noqa: F401  (session fixture)

REPO = Path(__file__).resolve().parent.parent
SCIFACT = Path(os.environ.get("RAG_SCIFACT_DIR", REPO.parent / "shared" / "datasets" / "scifact"))
HOTPOTQA = Path(os.environ.get("RAG_HOTPOTQA_DIR", REPO.parent / "shared" / "datasets" / "hotpotqa_dev200"))
MODEL_CACHE = REPO / ".cache" / "test-models"  # ONNX exports survive between runs (gitignored)


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend=EmbeddingBackend.ONNX_INT8, cache_dir=MODEL_CACHE)


@pytest.fixture
def hashing_embedder() -> HashingEmbedder:
    return HashingEmbedder(64)


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    assert (SCIFACT / "corpus.jsonl").exists(), f"SciFact not found at {SCIFACT} (set RAG_SCIFACT_DIR)"
    return SCIFACT
