"""The LangChain baseline (BM25 + FAISS EnsembleRetriever) and the synthetic at-scale corpus."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bench.langchain_baseline import EmbeddingMode, build_ensemble, evaluate_langchain
from bench.scale_corpus import build_scale_corpus, split_sentences
from ingestion.embedder import EmbeddingBackend, SentenceTransformerEmbedder
from ingestion.errors import InvalidInputError
from ingestion.models import Document

TOPICS = [
    "protein folding chaperones misfolded aggregates",
    "insulin resistance obesity glucose metabolism",
    "tumour suppressor gene p53 mutation cancer",
    "malaria parasite mosquito transmission vaccine",
    "gut microbiome bacteria antibiotic diversity",
    "telomere shortening ageing cell senescence",
    "influenza virus hemagglutinin antibody response",
    "stem cell differentiation bone marrow niche",
    "blood pressure hypertension sodium intake",
    "neuronal plasticity synapse memory hippocampus",
    "vitamin d deficiency fracture elderly women",
    "tuberculosis drug resistance rifampicin treatment",
    "cholesterol statin cardiovascular events trial",
    "dopamine reward addiction striatum signalling",
    "asthma airway inflammation eosinophils children",
    "zinc finger transcription factor chromatin binding",
    "kidney dialysis mortality chronic disease",
    "photosynthesis chloroplast light harvesting plants",
    "sleep deprivation circadian rhythm melatonin",
    "hiv antiretroviral therapy viral load suppression",
]


def tiny_corpus() -> list[Document]:
    return [
        Document(id=f"d{i}", title=f"Study {i}", text=f"We report findings on {topic}. Results were significant.")
        for i, topic in enumerate(TOPICS)
    ]


class BagOfWordsVectors:
    """Deterministic stand-in encoder: normalised term counts over a fixed vocabulary."""

    def __init__(self, texts: list[str]) -> None:
        words = sorted({w for t in texts for w in re.findall(r"\w+", t.lower())})
        self.index = {w: i for i, w in enumerate(words)}

    def embed_query(self, text: str) -> np.ndarray:
        v = np.zeros(len(self.index), dtype=np.float32)
        for w in re.findall(r"\w+", text.lower()):
            if w in self.index:
                v[self.index[w]] += 1.0
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.embed_query(t) for t in texts])


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    return tiny_corpus()


@pytest.fixture(scope="module")
def bow(corpus: list[Document]) -> BagOfWordsVectors:
    return BagOfWordsVectors([f"{d.title}\n{d.text}" for d in corpus])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("telomere shortening in ageing", "d5"),
        ("Does rifampicin resistance affect tuberculosis treatment?", "d11"),
    ],
)
def test_ensemble_ranks_the_matching_document_first(
    corpus: list[Document], bow: BagOfWordsVectors, query: str, expected: str
) -> None:
    vectors = bow.embed_documents([f"{d.title}\n{d.text}" for d in corpus])
    ensemble = build_ensemble(corpus, vectors, bow.embed_query, k=5)
    hits = ensemble.search(query)
    assert hits[0] == expected
    assert len(hits) == 5
    assert len(set(hits)) == len(hits)


def test_end_to_end_mode_embeds_documents_through_langchain(corpus: list[Document], bow: BagOfWordsVectors) -> None:
    calls: list[int] = []

    def embed_texts(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return bow.embed_documents(texts)

    ensemble = build_ensemble(corpus, None, bow.embed_query, k=3, embed_texts=embed_texts)
    assert sum(calls) == len(corpus)
    assert ensemble.search("malaria mosquito vaccine")[0] == "d3"


def test_mismatched_embeddings_are_rejected(corpus: list[Document], bow: BagOfWordsVectors) -> None:
    with pytest.raises(InvalidInputError):
        build_ensemble(corpus, np.zeros((3, 8), dtype=np.float32), bow.embed_query)
    with pytest.raises(InvalidInputError):
        build_ensemble(corpus, None, bow.embed_query)


def test_ensemble_with_real_minilm(corpus: list[Document]) -> None:
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend=EmbeddingBackend.TORCH)
    vectors = model.embed_documents([f"{d.title}\n{d.text}" for d in corpus])
    ensemble = build_ensemble(corpus, vectors, model.embed_query, k=5)
    # No shared term with d17 besides "plants": the dense side must carry it.
    assert ensemble.search("How do leaves capture sunlight to make sugar?")[0] == "d17"
    assert ensemble.search("p53 mutations in cancer")[0] == "d2"


def _write_beir(root: Path, corpus: list[Document], bow: BagOfWordsVectors) -> tuple[Path, Path]:
    data, emb = root / "data", root / "emb"
    (data / "qrels").mkdir(parents=True)
    emb.mkdir()
    with (data / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for d in corpus:
            fh.write(json.dumps({"_id": d.id, "title": d.title, "text": d.text}) + "\n")
    queries = {"q1": "telomere ageing senescence", "q2": "statin cholesterol trial"}
    with (data / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid, text in queries.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td5\t1\nq2\td12\t1\n", encoding="utf-8")
    # Stored in reverse order: loaders must map rows by id, not position.
    (emb / "doc_ids.json").write_text(json.dumps([d.id for d in reversed(corpus)]), encoding="utf-8")
    np.save(emb / "docs.npy", bow.embed_documents([f"{d.title}\n{d.text}" for d in reversed(corpus)]))
    (emb / "query_ids.json").write_text(json.dumps(list(queries)), encoding="utf-8")
    np.save(emb / "queries.npy", bow.embed_documents(list(queries.values())))
    return data, emb


def test_evaluate_langchain_on_a_tiny_beir_split(
    tmp_path: Path, corpus: list[Document], bow: BagOfWordsVectors
) -> None:
    data, emb = _write_beir(tmp_path, corpus, bow)
    result = evaluate_langchain(data, "test", k=5, mode=EmbeddingMode.PRECOMPUTED, embeddings_dir=emb)
    assert result.n_queries == 2 and result.n_docs == len(corpus)
    assert result.metrics["ndcg@10"] == pytest.approx(1.0)
    assert 0 < result.p50_ms <= result.p95_ms


def test_scale_corpus_is_deterministic_and_realistic(
    tmp_path: Path, corpus: list[Document], bow: BagOfWordsVectors
) -> None:
    data, emb = _write_beir(tmp_path, corpus, bow)
    docs, vectors = build_scale_corpus(120, seed=7, cache_dir=tmp_path / "a", dataset_dir=data, embeddings_dir=emb)
    again, vectors_again = build_scale_corpus(
        120, seed=7, cache_dir=tmp_path / "b", dataset_dir=data, embeddings_dir=emb
    )
    other, _ = build_scale_corpus(120, seed=8, cache_dir=tmp_path / "c", dataset_dir=data, embeddings_dir=emb)
    assert len(docs) == vectors.shape[0] == 120
    assert [d.id for d in docs[:20]] == [d.id for d in corpus]
    assert len({d.id for d in docs}) == 120
    assert [d.text for d in docs] == [d.text for d in again]
    np.testing.assert_array_equal(vectors, vectors_again)
    assert [d.text for d in docs[20:]] != [d.text for d in other[20:]]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # The real documents keep their real vectors (looked up by id despite the reversed storage order).
    np.testing.assert_allclose(vectors[5], bow.embed_query(f"{corpus[5].title}\n{corpus[5].text}"), rtol=1e-6)
    source_sentences = {s for d in corpus for s in split_sentences(d.text)}
    for d in docs[20:]:
        assert set(split_sentences(d.text)) <= source_sentences
        assert d.title in {c.title for c in corpus}
    # A synthetic vector sits near the real vector of the document its title came from.
    title_row = {c.title: i for i, c in enumerate(corpus)}
    cos = [float(vectors[i] @ vectors[title_row[docs[i].title]]) for i in range(20, 120)]
    assert np.mean(cos) > 0.5
    # The cache is reused: the sources are not read again.
    cached, cached_vectors = build_scale_corpus(
        120, seed=7, cache_dir=tmp_path / "a", dataset_dir=tmp_path / "gone", embeddings_dir=tmp_path / "gone"
    )
    assert [d.text for d in cached] == [d.text for d in docs]
    np.testing.assert_array_equal(cached_vectors, vectors)
