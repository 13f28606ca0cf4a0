"""POST /ingest: JSON documents or multipart file uploads into a knowledge base (created on first ingest)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from app.deps import JobsDep, RegistryDep, ServicesDep
from app.errors import error_body, status_for
from app.schemas import IngestRequest, IngestResponse, JobResponse, job_response
from ingestion.errors import InvalidInputError, RagError
from ingestion.knowledge_base import IngestReport, ProgressFn
from ingestion.loaders import SUPPORTED_EXTENSIONS, content_id, load_file
from ingestion.models import Document
from ingestion.registry import validate_kb_name

router = APIRouter(tags=["ingest"])

_MULTIPART_DOC = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": IngestRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["kb", "files"],
                    "properties": {
                        "kb": {"type": "string"},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "metadata": {
                            "type": "string",
                            "description": "JSON object added to every file's metadata",
                        },
                    },
                }
            },
        },
        "required": True,
    }
}


def _response(kb: str, report: IngestReport, ids: list[str]) -> IngestResponse:
    return IngestResponse(
        kb=kb,
        documents_received=report.documents_received,
        documents_added=report.documents_added,
        documents_updated=report.documents_updated,
        documents_unchanged=report.documents_unchanged,
        chunks_added=report.chunks_added,
        chunks_deleted=report.chunks_deleted,
        generation=report.generation,
        document_ids=ids,
        timings_ms={k: round(v, 2) for k, v in report.timings_ms.items()},
    )


async def _parse_json(request: Request) -> tuple[str, list[Document]]:
    try:
        body = IngestRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    docs = [Document(id=d.id or "", title=d.title, text=d.text, metadata=d.metadata) for d in body.documents]
    docs = [d if d.id else Document(content_id(d.title + "\n" + d.text), d.text, d.title, d.metadata) for d in docs]
    return body.kb, docs


async def _parse_multipart(request: Request, max_files: int) -> tuple[str, list[Document]]:
    form = await request.form(max_files=max_files, max_fields=100)
    kb = form.get("kb")
    if not isinstance(kb, str) or not kb:
        raise InvalidInputError("multipart upload needs a 'kb' form field")
    extra: dict[str, Any] = {}
    raw_meta = form.get("metadata")
    if isinstance(raw_meta, str) and raw_meta.strip():
        try:
            extra = json.loads(raw_meta)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"'metadata' form field is not valid JSON: {exc}") from exc
        if not isinstance(extra, dict):
            raise InvalidInputError("'metadata' form field must be a JSON object")
    uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    if not uploads:
        raise InvalidInputError(f"no files uploaded; send files of types {', '.join(SUPPORTED_EXTENSIONS)}")
    docs = [load_file(u.filename or "upload", await u.read(), metadata=dict(extra)) for u in uploads]
    return kb, docs


@router.post(
    "/ingest",
    summary="Add or replace documents (JSON) or files (multipart: txt, md, html, pdf)",
    response_model=IngestResponse,
    responses={202: {"model": JobResponse, "description": "wait=false: the job to poll at /jobs/{id}"}},
    openapi_extra=_MULTIPART_DOC,
)
async def ingest(
    request: Request,
    registry: RegistryDep,
    jobs: JobsDep,
    services: ServicesDep,
    wait: bool = Query(True, description="false: return 202 with a job id at once and ingest in the background"),
) -> Any:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        kb_name, docs = await _parse_multipart(request, services.settings.max_documents_per_request)
    elif content_type.startswith("application/json") or not content_type:
        kb_name, docs = await _parse_json(request)
    else:
        raise InvalidInputError(
            f"unsupported content type {content_type!r}: send application/json or multipart/form-data"
        )
    validate_kb_name(kb_name)
    if len(docs) > services.settings.max_documents_per_request:
        raise InvalidInputError(
            f"{len(docs)} documents in one request; the limit is {services.settings.max_documents_per_request}"
        )
    ids = list(dict.fromkeys(d.id for d in docs))
    kb = registry.get_or_create(kb_name)

    def work(progress: ProgressFn | None = None) -> IngestResponse:
        return _response(kb_name, kb.ingest(docs, progress), ids)

    if wait:
        return await run_in_threadpool(work)

    def on_error(exc: Exception) -> dict[str, Any]:
        assert isinstance(exc, RagError)
        return error_body(exc.code, exc.message, status=status_for(exc))["error"]  # type: ignore[return-value]

    job = jobs.submit("ingest", kb_name, work, on_error)
    return JSONResponse(job_response(job).model_dump(), status_code=202)
