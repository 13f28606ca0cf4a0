"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.jobs import Job
from retrieval.hybrid import RetrievalMode


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=512, description="Document id; derived from a content hash if absent")
    title: str = Field("", max_length=10_000)
    text: str = Field(..., description="The document text (any language)")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is empty")
        return v

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("id is blank; omit it to derive one from the content")
        return v


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kb: str = Field(..., min_length=1, max_length=64, description="Knowledge base name; created on first ingest")
    documents: list[DocumentIn] = Field(..., min_length=1)


class IngestResponse(BaseModel):
    kb: str
    documents_received: int
    documents_added: int
    documents_updated: int
    documents_unchanged: int = Field(description="Identical content already stored: skipped")
    chunks_added: int
    chunks_deleted: int
    generation: int
    document_ids: list[str]
    timings_ms: dict[str, float]


class JobResponse(BaseModel):
    """A background job; ``done``/``total`` count the chunks embedded so far and to embed."""

    job_id: str
    kind: str
    kb: str
    status: str = Field(description="queued, running, succeeded or failed")
    stage: str
    done: int
    total: int
    result: IngestResponse | None = None
    error: dict[str, Any] | None = None


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kb: str = Field(..., min_length=1, max_length=64)
    query: str = Field(..., description="The question; 1 to max_query_chars characters")
    top_k: int = Field(10, ge=1, description="How many results to return (at most max_top_k)")
    generate: bool = Field(True, description="Ask the LLM for a grounded answer; false for retrieval only")
    rerank: bool | None = Field(None, description="Use the LTR reranker; default: when a model is available")
    mode: RetrievalMode = Field(RetrievalMode.HYBRID, description="hybrid, dense or bm25")
    stream: bool = Field(False, description="Stream the answer as server-sent events")


class ResultOut(BaseModel):
    doc_id: str
    chunk_id: str
    title: str
    text: str
    score: float = Field(description="Reranker score when reranked, else the RRF (or single retriever) score")
    section: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class CitationOut(BaseModel):
    number: int
    doc_id: str
    chunk_id: str
    title: str
    inferred: bool = Field(False, description="The model cited nothing; attributed by word overlap")


class GenerationErrorOut(BaseModel):
    code: str
    status: int = Field(description="What the generation part would have returned alone: 502 or 504")
    message: str


class QueryResponse(BaseModel):
    answer: str | None
    citations: list[CitationOut]
    results: list[ResultOut]
    generation_error: GenerationErrorOut | None = None
    trace: dict[str, Any]


class KnowledgeBaseOut(BaseModel):
    name: str
    documents: int
    chunks: int
    generation: int
    embedding_model: str | None
    reranker: str | None = None


class DeleteResponse(BaseModel):
    kb: str
    doc_id: str
    chunks_deleted: int
    generation: int


def job_response(job: Job) -> JobResponse:
    return JobResponse(
        job_id=job.id,
        kind=job.kind,
        kb=job.kb,
        status=job.status,
        stage=job.stage,
        done=job.done,
        total=job.total,
        result=job.result,
        error=job.error,
    )
