from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app.deps import JobsDep
from app.schemas import JobResponse

router = APIRouter(tags=["ingest"])


@router.get("/jobs/{job_id}", response_model=JobResponse, summary="Status and progress of a background ingest")
def get_job(job_id: str, jobs: JobsDep) -> JobResponse:
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id!r} not found")
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
