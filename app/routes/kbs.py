from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.deps import PipelineDep, RegistryDep
from app.schemas import DeleteResponse, KnowledgeBaseOut
from ingestion.errors import DocumentNotFound
from ingestion.knowledge_base import KnowledgeBase
from retrieval.pipeline import RagPipeline

router = APIRouter(tags=["knowledge bases"])


def _describe(kb: KnowledgeBase, pipeline: RagPipeline) -> KnowledgeBaseOut:
    reranker = pipeline.rerankers.for_kb(kb) if pipeline.rerankers else None
    return KnowledgeBaseOut(**kb.stats(), reranker=reranker.name if reranker else None)


@router.get("/kbs", response_model=list[KnowledgeBaseOut], summary="All knowledge bases")
def list_kbs(registry: RegistryDep, pipeline: PipelineDep) -> list[KnowledgeBaseOut]:
    return [_describe(registry.get(n), pipeline) for n in registry.names()]


@router.get("/kbs/{kb}", response_model=KnowledgeBaseOut, summary="One knowledge base")
def get_kb(kb: str, registry: RegistryDep, pipeline: PipelineDep) -> KnowledgeBaseOut:
    return _describe(registry.get(kb), pipeline)


@router.get("/kbs/{kb}/documents/{doc_id}", summary="A stored document's metadata and chunk count")
def get_document(kb: str, doc_id: str, registry: RegistryDep) -> dict[str, Any]:
    knowledge_base = registry.get(kb)
    doc = knowledge_base.store.get_document(doc_id)
    if doc is None:
        raise DocumentNotFound(f"document {doc_id!r} not found in knowledge base {kb!r}")
    return doc


@router.delete("/kbs/{kb}/documents/{doc_id}", response_model=DeleteResponse, summary="Delete a document")
async def delete_document(kb: str, doc_id: str, registry: RegistryDep) -> DeleteResponse:
    knowledge_base = registry.get(kb)
    report = await run_in_threadpool(knowledge_base.delete_document, doc_id)
    return DeleteResponse(kb=kb, doc_id=doc_id, chunks_deleted=report.chunks_deleted, generation=report.generation)


@router.delete("/kbs/{kb}", status_code=204, summary="Delete a knowledge base and everything in it")
async def delete_kb(kb: str, registry: RegistryDep) -> None:
    await run_in_threadpool(registry.drop, kb)
