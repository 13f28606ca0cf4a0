"""One query, straight down: retrieve (dense + BM25) → fuse (RRF) → rerank (LTR) → generate (LLM)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from generation.answer import Answer, AnswerGenerator, AnswerStream, Passage
from ingestion.errors import GenerationError, InvalidInputError
from ingestion.knowledge_base import KnowledgeBase
from ingestion.registry import KnowledgeBaseRegistry
from retrieval.candidates import Candidate
from retrieval.hybrid import HybridRetriever, RetrievalMode, Retrieved


class Reranker(Protocol):
    name: str

    def rerank(self, query: str, retrieved: Retrieved, kb: KnowledgeBase) -> list[Candidate]: ...


class RerankerProvider(Protocol):
    def for_kb(self, kb: KnowledgeBase) -> Reranker | None: ...


@dataclass(slots=True)
class QueryOptions:
    kb: str
    query: str
    top_k: int = 10
    generate: bool = True
    rerank: bool | None = None  # None: rerank when a model is available
    mode: RetrievalMode = RetrievalMode.HYBRID


@dataclass(slots=True)
class Retrieval:
    """Everything up to generation: the ranked results and what each stage did."""

    options: QueryOptions
    results: list[Candidate]
    trace: dict[str, Any]


@dataclass(slots=True)
class PipelineResult:
    retrieval: Retrieval
    answer: Answer | None = None
    generation_error: GenerationError | None = None
    trace: dict[str, Any] = field(default_factory=dict)


def to_passages(results: list[Candidate], n: int) -> list[Passage]:
    return [
        Passage(i, c.chunk.chunk_id, c.chunk.doc_id, c.chunk.title, c.chunk.text)
        for i, c in enumerate(results[:n], start=1)
    ]


class RagPipeline:
    def __init__(
        self,
        registry: KnowledgeBaseRegistry,
        retriever: HybridRetriever,
        rerankers: RerankerProvider | None = None,
        generator: AnswerGenerator | None = None,
        max_query_chars: int = 2000,
        max_top_k: int = 100,
        passages_for_llm: int = 5,
    ) -> None:
        self.registry = registry
        self.retriever = retriever
        self.rerankers = rerankers
        self.generator = generator
        self.max_query_chars = max_query_chars
        self.max_top_k = max_top_k
        self.passages_for_llm = passages_for_llm

    def _validate(self, options: QueryOptions) -> None:
        query = options.query.strip()
        if not query:
            raise InvalidInputError("query is empty")
        if len(options.query) > self.max_query_chars:
            raise InvalidInputError(f"query is {len(options.query)} characters; the limit is {self.max_query_chars}")
        if not 1 <= options.top_k <= self.max_top_k:
            raise InvalidInputError(f"top_k must be between 1 and {self.max_top_k}, got {options.top_k}")

    def retrieve(self, options: QueryOptions) -> Retrieval:
        t_start = time.perf_counter()
        self._validate(options)
        kb = self.registry.get(options.kb)
        retrieved = self.retriever.retrieve(kb, options.query, options.mode)
        timings = dict(retrieved.timings_ms)
        ranked, reranker_name = retrieved.candidates, None
        reranker = self.rerankers.for_kb(kb) if self.rerankers and options.rerank is not False else None
        if options.rerank and reranker is None:
            raise InvalidInputError(f"rerank requested but no reranker model is available for {options.kb!r}")
        if reranker is not None and ranked:
            t = time.perf_counter()
            ranked = reranker.rerank(options.query, retrieved, kb)
            timings["rerank"] = (time.perf_counter() - t) * 1000
            reranker_name = reranker.name
        results = ranked[: options.top_k]
        timings["retrieval_total"] = (time.perf_counter() - t_start) * 1000
        trace: dict[str, Any] = {
            "mode": str(options.mode),
            "reranker": reranker_name,
            "query_terms": retrieved.query_terms,
            "candidates": len(retrieved.candidates),
            "timings_ms": {k: round(v, 3) for k, v in timings.items()},
            "ranks": [
                {
                    "chunk_id": c.chunk.chunk_id,
                    "dense_rank": c.dense_rank,
                    "sparse_rank": c.sparse_rank,
                    "fused_rank": c.fused_rank,
                    "rerank_rank": c.rerank_rank,
                }
                for c in results
            ],
        }
        return Retrieval(options, results, trace)

    def run(self, options: QueryOptions) -> PipelineResult:
        retrieval = self.retrieve(options)
        out = PipelineResult(retrieval, trace=retrieval.trace)
        if not options.generate:
            return out
        if self.generator is None:
            out.generation_error = GenerationError("no LLM is configured for this service")
            return out
        t = time.perf_counter()
        try:
            out.answer = self.generator.generate(options.query, to_passages(retrieval.results, self.passages_for_llm))
        except GenerationError as exc:  # retrieval still answers; the error is reported beside it
            out.generation_error = exc
        out.trace["timings_ms"]["generate"] = round((time.perf_counter() - t) * 1000, 3)
        return out

    def stream_answer(self, retrieval: Retrieval) -> AnswerStream:
        if self.generator is None:
            raise GenerationError("no LLM is configured for this service")
        return self.generator.stream(retrieval.options.query, to_passages(retrieval.results, self.passages_for_llm))
