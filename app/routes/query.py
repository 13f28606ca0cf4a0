"""POST /query: retrieval (+ LTR) and, unless generate is false, a grounded answer with citations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app.deps import PipelineDep
from app.errors import status_for
from app.schemas import CitationOut, GenerationErrorOut, QueryRequest, QueryResponse, ResultOut
from generation.answer import Answer
from ingestion.errors import GenerationError, RagError
from retrieval.pipeline import QueryOptions, RagPipeline, Retrieval

router = APIRouter(tags=["query"])


def _results(retrieval: Retrieval) -> list[ResultOut]:
    out = []
    for c in retrieval.results:
        score = c.rerank_score if c.rerank_score is not None else c.fused_score
        out.append(
            ResultOut(
                doc_id=c.chunk.doc_id,
                chunk_id=c.chunk.chunk_id,
                title=c.chunk.title,
                text=c.chunk.text,
                score=float(score),
                section=c.chunk.section,
                metadata={k: v for k, v in c.chunk.metadata.items() if k != "headings"},  # sections say it per chunk
            )
        )
    return out


def _citations(answer: Answer | None) -> list[CitationOut]:
    if answer is None:
        return []
    return [
        CitationOut(number=c.number, doc_id=c.doc_id, chunk_id=c.chunk_id, title=c.title, inferred=c.inferred)
        for c in answer.citations
    ]


def _gen_error(exc: GenerationError | None) -> GenerationErrorOut | None:
    if exc is None:
        return None
    return GenerationErrorOut(code=exc.code, status=status_for(exc), message=exc.message)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _stream(pipeline: RagPipeline, retrieval: Retrieval) -> Iterator[str]:
    yield _sse("results", {"results": [r.model_dump() for r in _results(retrieval)], "trace": retrieval.trace})
    try:
        stream = pipeline.stream_answer(retrieval)
        for delta in stream:
            yield _sse("delta", {"text": delta})
        answer = stream.answer
        yield _sse(
            "answer",
            {
                "answer": answer.text,
                "citations": [c.model_dump() for c in _citations(answer)],
                "invalid_citations": answer.invalid_citations,
            },
        )
    except RagError as exc:
        yield _sse("error", {"code": exc.code, "status": status_for(exc), "message": exc.message})
    yield _sse("done", {})


@router.post(
    "/query",
    response_model=QueryResponse,
    summary="Retrieve (dense + BM25, RRF, LTR) and answer with citations",
    responses={
        200: {
            "description": "JSON, or text/event-stream when stream is true (events: results, delta, "
            "answer, error, done)"
        }
    },
)
async def query(body: QueryRequest, pipeline: PipelineDep) -> Any:
    options = QueryOptions(
        kb=body.kb,
        query=body.query,
        top_k=body.top_k,
        generate=body.generate,
        rerank=body.rerank,
        mode=body.mode,
    )
    if body.stream and body.generate:
        retrieval = await run_in_threadpool(pipeline.retrieve, options)
        return StreamingResponse(_stream(pipeline, retrieval), media_type="text/event-stream")
    result = await run_in_threadpool(pipeline.run, options)
    answer = result.answer
    return QueryResponse(
        answer=answer.text if answer else None,
        citations=_citations(answer),
        results=_results(result.retrieval),
        generation_error=_gen_error(result.generation_error),
        trace=result.trace,
    )
