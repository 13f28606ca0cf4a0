"""Typed dependencies: the resources built in the lifespan, injected into routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.jobs import JobManager
from app.services import Services
from ingestion.registry import KnowledgeBaseRegistry
from retrieval.pipeline import RagPipeline


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_registry(request: Request) -> KnowledgeBaseRegistry:
    return get_services(request).registry


def get_pipeline(request: Request) -> RagPipeline:
    return get_services(request).pipeline


def get_jobs(request: Request) -> JobManager:
    return get_services(request).jobs


ServicesDep = Annotated[Services, Depends(get_services)]
RegistryDep = Annotated[KnowledgeBaseRegistry, Depends(get_registry)]
PipelineDep = Annotated[RagPipeline, Depends(get_pipeline)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
