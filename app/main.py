"""The FastAPI application: ``create_app(settings)``; heavy resources load once in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.errors import install_error_handlers
from app.limits import BodySizeLimit
from app.routes import health, ingest, jobs, kbs, query
from app.services import Services, build_services
from app.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, services_factory: Callable[[Settings], Services] | None = None
) -> FastAPI:
    settings = settings or Settings()
    factory = services_factory or build_services

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = factory(settings)
        app.state.services = services
        try:
            yield
        finally:
            services.close()

    app = FastAPI(
        title="RAG service",
        version="0.1.0",
        summary="Hybrid dense + BM25 retrieval, learning-to-rank, grounded answers with citations from a local LLM.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    install_error_handlers(app)
    for module in (health, ingest, jobs, kbs, query):
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory app.main:app_from_env``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(Settings())
