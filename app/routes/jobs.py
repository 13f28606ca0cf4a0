from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app.deps import JobsDep
from app.schemas import JobResponse, job_response

router = APIRouter(tags=["ingest"])


@router.get("/jobs/{job_id}", response_model=JobResponse, summary="Status and progress of a background ingest")
def get_job(job_id: str, jobs: JobsDep) -> JobResponse:
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id!r} not found")
    return job_response(job)
