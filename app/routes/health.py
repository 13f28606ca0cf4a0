from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health", summary="The process is up")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="200 once retrieval can be served; says separately whether the LLM answers")
async def ready(request: Request) -> JSONResponse:
    services = getattr(request.app.state, "services", None)
    if services is None:
        return JSONResponse({"status": "starting", "retrieval": False, "llm": {"reachable": False}}, 503)
    llm: dict[str, Any] = {"base_url": services.settings.llm_base_url, "reachable": False}
    if services.chat is not None:
        llm["reachable"] = await run_in_threadpool(services.chat.health)
    return JSONResponse(
        {"status": "ready", "retrieval": True, "knowledge_bases": services.registry.names(), "llm": llm}
    )
