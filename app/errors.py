"""The one place where exceptions become HTTP responses. Every error body is JSON:

{"error": {"code": "<machine code>", "message": "<what is wrong>"}}
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingestion.errors import (
    DocumentNotFound,
    GenerationError,
    GenerationTimeout,
    InvalidInputError,
    KnowledgeBaseNotFound,
    ModelSchemaMismatch,
    PayloadTooLarge,
    RagError,
    StorageError,
    UnsupportedFileType,
)

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: list[tuple[type[RagError], int]] = [
    (KnowledgeBaseNotFound, 404),
    (DocumentNotFound, 404),
    (UnsupportedFileType, 415),
    (PayloadTooLarge, 413),
    (InvalidInputError, 422),
    (ModelSchemaMismatch, 409),
    (GenerationTimeout, 504),
    (GenerationError, 502),
    (StorageError, 500),
    (RagError, 500),
]


def status_for(exc: RagError) -> int:
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(exc, cls))


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.message)
        return JSONResponse(error_body(exc.code, exc.message), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details)
        return JSONResponse(
            error_body("invalid_request", f"invalid request: {summary}", details=details), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)
