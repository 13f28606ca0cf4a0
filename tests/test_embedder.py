"""Embedders: the real packaged all-MiniLM-L6-v2 on torch and ONNX int8, plus the hashing stand-in."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ingestion.embedder import (
    Embedder,
    EmbeddingBackend,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    default_backend,
)
from ingestion.errors import InvalidInputError
from ingestion.onnx_export import _remove_dead_exports

DOCS = [
    "The cat sat on the mat and purred.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Interest rates were raised by the central bank to fight inflation.",
    "A kitten is resting on a rug.",
    "x",
]
QUERY = "How do plants turn sunlight into energy?"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embed-cache")


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend=EmbeddingBackend.TORCH, batch_size=2)


@pytest.fixture(scope="module")
def onnx_embedder(export_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(backend=EmbeddingBackend.ONNX, cache_dir=export_dir, batch_size=2)


@pytest.fixture(scope="module")
def int8_embedder(export_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(backend=EmbeddingBackend.ONNX_INT8, cache_dir=export_dir, batch_size=2)


def _check_matrix(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (n, dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("which", ["torch_embedder", "int8_embedder"])
def test_shapes_normalization_and_semantics(which: str, request: pytest.FixtureRequest) -> None:
    emb: SentenceTransformerEmbedder = request.getfixturevalue(which)
    assert isinstance(emb, Embedder)
    assert emb.dim == 384 and emb.name == "all-MiniLM-L6-v2"
    done: list[int] = []
    docs = emb.embed_documents(DOCS, progress=done.append)
    _check_matrix(docs, len(DOCS), 384)
    assert done == [2, 2, 1]  # batch_size=2 -> one call per batch, with that batch's size
    q = emb.embed_query(QUERY)
    assert q.dtype == np.float32 and q.shape == (384,)
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5
    # paraphrase closer than unrelated sentences; the query finds the photosynthesis document
    assert docs[0] @ docs[3] > docs[0] @ docs[2] + 0.2
    assert int(np.argmax(docs @ q)) == 1
    # order of the input is kept even though batches are built longest-first
    np.testing.assert_allclose(emb.embed_documents([DOCS[3], DOCS[0]]), docs[[3, 0]], atol=1e-4)
    assert emb.embed_documents([]).shape == (0, 384)


@pytest.mark.parametrize("which", ["torch_embedder", "onnx_embedder", "int8_embedder"])
def test_single_query_path_equals_batch_path(which: str, request: pytest.FixtureRequest) -> None:
    emb: SentenceTransformerEmbedder = request.getfixturevalue(which)
    long_text = "word " * 400  # truncated to max_seq_length on both paths
    texts = [QUERY, "a", long_text]
    for text in texts:
        np.testing.assert_allclose(emb.embed_query(text), emb.embed_documents([text])[0], atol=1e-5)
    batch = emb.embed_documents(texts, batch_size=3)  # the short ones are padded to the long one
    single = np.stack([emb.embed_query(t) for t in texts])
    if emb.backend is EmbeddingBackend.ONNX_INT8:
        # dynamic int8 quantizes activations with one scale per batch, so batch-mates shift a vector a bit
        assert np.sum(batch * single, axis=1).min() > 0.97  # "a" padded to 256 tokens: the worst case
    else:
        np.testing.assert_allclose(single, batch, atol=1e-5)
    assert emb.count_tokens(long_text) == 400 > emb.max_seq_length


def test_onnx_fp32_export_matches_torch(
    torch_embedder: SentenceTransformerEmbedder, onnx_embedder: SentenceTransformerEmbedder
) -> None:
    assert onnx_embedder.dim == 384 and onnx_embedder.exports == 1
    expected = torch_embedder.embed_documents(DOCS)
    np.testing.assert_allclose(onnx_embedder.embed_documents(DOCS), expected, atol=1e-4)
    np.testing.assert_allclose(onnx_embedder.embed_query(QUERY), torch_embedder.embed_query(QUERY), atol=1e-4)


def test_int8_vectors_agree_with_fp32(
    torch_embedder: SentenceTransformerEmbedder, int8_embedder: SentenceTransformerEmbedder
) -> None:
    cos = np.sum(torch_embedder.embed_documents(DOCS) * int8_embedder.embed_documents(DOCS), axis=1)
    assert cos.min() > 0.95


def test_export_is_cached_and_reused(export_dir: Path, int8_embedder: SentenceTransformerEmbedder) -> None:
    assert int8_embedder.exports == 1
    assert int8_embedder.model_path.parent.parent == export_dir
    onnx_files = sorted(int8_embedder.model_path.rglob("*.onnx"))
    assert [f.name for f in onnx_files] == ["model.onnx"]
    assert onnx_files[0].stat().st_size < 40e6  # int8 weights: about a quarter of the fp32 model's 90 MB
    mtimes = {f: f.stat().st_mtime_ns for f in onnx_files}
    again = SentenceTransformerEmbedder(backend=EmbeddingBackend.ONNX_INT8, cache_dir=export_dir)
    assert again.exports == 0 and again.model_path == int8_embedder.model_path
    assert {f: f.stat().st_mtime_ns for f in onnx_files} == mtimes
    assert not [p for p in export_dir.rglob("*") if ".tmp-" in p.name]  # no temp dir left behind
    np.testing.assert_allclose(again.embed_query(QUERY), int8_embedder.embed_query(QUERY), atol=1e-6)


def test_count_tokens(torch_embedder: SentenceTransformerEmbedder) -> None:
    assert torch_embedder.count_tokens("hello world") == 2
    assert torch_embedder.count_tokens("") == 0
    long_text = "tokenization " * 1000  # longer than max_seq_length: counted, not truncated
    assert torch_embedder.count_tokens(long_text) == 1000 * torch_embedder.count_tokens("tokenization")
    ids = torch_embedder._st.tokenizer(QUERY, add_special_tokens=False)["input_ids"]
    assert torch_embedder.count_tokens(QUERY) == len(ids)


def test_hub_names_and_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="local"):
        SentenceTransformerEmbedder("BAAI/bge-small-en-v1.5", backend=EmbeddingBackend.TORCH)
    with pytest.raises(InvalidInputError, match="cache_dir"):
        SentenceTransformerEmbedder(backend=EmbeddingBackend.ONNX, cache_dir=None)
    with pytest.raises(ValueError):
        SentenceTransformerEmbedder(backend="tensorflow", cache_dir=tmp_path)  # type: ignore[arg-type]


def test_default_backend_is_an_enum_member() -> None:
    assert default_backend() in set(EmbeddingBackend)


def test_hashing_embedder_is_deterministic() -> None:
    a, b = HashingEmbedder(dim=32), HashingEmbedder(dim=32)
    assert isinstance(a, Embedder) and a.dim == 32
    done: list[int] = []
    va = a.embed_documents(DOCS, batch_size=3, progress=done.append)
    assert done == [3, 2]
    _check_matrix(va, len(DOCS), 32)
    np.testing.assert_array_equal(va, b.embed_documents(DOCS))
    np.testing.assert_array_equal(a.embed_query("The CAT sat"), a.embed_query("the cat sat"))
    assert a.embed_query("cat mat") @ a.embed_query("mat cat") == pytest.approx(1.0)
    assert not np.allclose(a.embed_query("cat"), a.embed_query("inflation"))
    assert a.count_tokens("one two  three\nfour") == 4


def test_leftovers_of_killed_exports_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / ".m.tmp-999999999-ab"  # above any pid_max: no such process
    alive = tmp_path / f".m.tmp-{os.getpid()}-cd"  # an export in progress in this very process
    other = tmp_path / ".other.tmp-999999999-ef"  # another model's key: not ours to judge
    for d in (dead, alive, other):
        d.mkdir()
    _remove_dead_exports(tmp_path, "m")
    assert not dead.exists() and alive.exists() and other.exists()
