"""The heavy resources of the service, built once from settings in the lifespan."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import faiss

from app.jobs import JobManager
from app.settings import Settings
from generation.answer import AnswerGenerator
from generation.client import OpenAIChatClient
from ingestion.chunking import RecursiveChunker
from ingestion.embedder import Embedder, SentenceTransformerEmbedder
from ingestion.registry import KnowledgeBaseRegistry
from retrieval.hybrid import HybridRetriever
from retrieval.pipeline import RagPipeline
from retrieval.reranking import LtrRerankerProvider

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Services:
    settings: Settings
    embedder: Embedder
    registry: KnowledgeBaseRegistry
    pipeline: RagPipeline
    chat: OpenAIChatClient | None
    jobs: JobManager

    def close(self) -> None:
        self.jobs.shutdown()
        self.registry.close()
        if self.chat is not None:
            self.chat.close()


def build_embedder(settings: Settings) -> Embedder:
    return SentenceTransformerEmbedder(
        settings.embedding_model,
        backend=settings.embedding_backend,
        cache_dir=settings.models_dir,
        batch_size=settings.embedding_batch_size,
    )


def build_services(settings: Settings, embedder: Embedder | None = None) -> Services:
    faiss.omp_set_num_threads(settings.faiss_threads)
    embedder = embedder or build_embedder(settings)

    def chunker() -> RecursiveChunker:
        return RecursiveChunker(settings.chunk_size, settings.chunk_overlap, count_tokens=embedder.count_tokens)

    registry = KnowledgeBaseRegistry(settings.kbs_dir, embedder, chunker)
    registry.open_all()
    chat = OpenAIChatClient(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
        connect_timeout_s=settings.llm_connect_timeout_s,
    )
    generator = AnswerGenerator(chat, max_tokens=settings.llm_max_tokens, context_chars=settings.llm_context_chars)
    pipeline = RagPipeline(
        registry,
        HybridRetriever(embedder, settings.candidates_per_retriever, settings.rrf_k),
        rerankers=LtrRerankerProvider(settings.reranker_model_dir, settings.rerank_threads, settings.rerank_depth),
        generator=generator,
        max_query_chars=settings.max_query_chars,
        max_top_k=settings.max_top_k,
        passages_for_llm=settings.llm_passages,
    )
    log.info("opened %d knowledge base(s) under %s", len(registry.names()), settings.kbs_dir)
    return Services(settings, embedder, registry, pipeline, chat, JobManager())
