"""The candidate record that flows from retrieval through fusion and reranking."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingestion.models import Chunk


@dataclass(slots=True)
class Candidate:
    """One chunk proposed for a query, with what each retriever said about it.

    Ranks are 1-based; ``None`` means that retriever did not return the chunk in its top list.
    """

    chunk: Chunk
    dense_score: float | None = None
    dense_rank: int | None = None
    sparse_score: float | None = None
    sparse_rank: int | None = None
    fused_score: float = 0.0
    fused_rank: int = 0
    variant_hits: int = 1  # number of query variants (multi-query / RAG-Fusion) that retrieved it
    rerank_score: float | None = None
    rerank_rank: int | None = None
    extra: dict[str, float] = field(default_factory=dict)
