"""Coarse recall: dense (FAISS) and BM25 (tantivy) candidates, fused by reciprocal rank fusion."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from ingestion.embedder import Embedder
from ingestion.knowledge_base import KnowledgeBase
from retrieval.candidates import Candidate
from retrieval.fusion import reciprocal_rank_fusion


class RetrievalMode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    BM25 = "bm25"


@dataclass(slots=True)
class Retrieved:
    candidates: list[Candidate]  # best first by fused score
    query_terms: list[str]
    query_vector: np.ndarray | None
    timings_ms: dict[str, float] = field(default_factory=dict)


class HybridRetriever:
    def __init__(self, embedder: Embedder, candidates_per_retriever: int = 100, rrf_k: int = 60) -> None:
        self.embedder = embedder
        self.depth = candidates_per_retriever
        self.rrf_k = rrf_k

    def retrieve(self, kb: KnowledgeBase, query: str, mode: RetrievalMode = RetrievalMode.HYBRID) -> Retrieved:
        timings: dict[str, float] = {}
        dense_keys = np.empty(0, np.int64)
        dense_scores = np.empty(0, np.float32)
        sparse_keys, sparse_scores = dense_keys, dense_scores
        qvec = None
        t = time.perf_counter()
        terms = kb.sparse.analyze_query(query)
        if mode is not RetrievalMode.DENSE:
            sparse_keys, sparse_scores = kb.sparse.search_terms(terms, self.depth)
        timings["sparse"] = (time.perf_counter() - t) * 1000
        if mode is not RetrievalMode.BM25:
            t = time.perf_counter()
            qvec = self.embedder.embed_query(query)
            timings["encode"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            dense_keys, dense_scores = kb.search_dense(qvec, self.depth)
            timings["dense"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        fused = reciprocal_rank_fusion([dense_keys, sparse_keys], self.rrf_k)
        by_key: dict[int, Candidate] = {}
        chunks = kb.chunks
        for rank, (key, score) in enumerate(zip(dense_keys.tolist(), dense_scores.tolist(), strict=True), 1):
            chunk = chunks.get(key)
            if chunk is not None:  # a chunk deleted while this query ran is dropped
                by_key[key] = Candidate(chunk, dense_score=score, dense_rank=rank)
        for rank, (key, score) in enumerate(zip(sparse_keys.tolist(), sparse_scores.tolist(), strict=True), 1):
            cand = by_key.get(key)
            if cand is None:
                chunk = chunks.get(key)
                if chunk is None:
                    continue
                cand = by_key[key] = Candidate(chunk)
            cand.sparse_score, cand.sparse_rank = score, rank
        ordered = sorted(by_key.values(), key=lambda c: (-fused[c.chunk.key], c.chunk.key))
        for rank, cand in enumerate(ordered, 1):
            cand.fused_score, cand.fused_rank = fused[cand.chunk.key], rank
        timings["fuse"] = (time.perf_counter() - t) * 1000
        return Retrieved(ordered, terms, qvec, timings)
