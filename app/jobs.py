"""Background ingest jobs with progress, for uploads too large to wait on."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ingestion.errors import RagError
from ingestion.knowledge_base import ProgressFn


@dataclass(slots=True)
class Job:
    id: str
    kind: str
    kb: str
    status: str = "queued"
    stage: str = "queued"
    done: int = 0
    total: int = 0
    result: Any = None
    error: dict[str, Any] | None = None


class JobManager:
    def __init__(self, workers: int = 1, keep: int = 1000) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._keep = keep

    def submit(
        self,
        kind: str,
        kb: str,
        work: Callable[[ProgressFn], Any],
        on_error: Callable[[Exception], dict[str, Any]],
    ) -> Job:
        job = Job(uuid.uuid4().hex, kind, kb)
        with self._lock:
            self._jobs[job.id] = job
            for old in list(self._jobs)[: max(0, len(self._jobs) - self._keep)]:
                if self._jobs[old].status in ("succeeded", "failed"):
                    del self._jobs[old]

        def progress(stage: str, done: int, total: int) -> None:
            job.stage, job.done, job.total = stage, done, total

        def run() -> None:
            job.status = job.stage = "running"
            try:
                job.result = work(progress)
                job.status, job.stage = "succeeded", "done"
            except RagError as exc:
                job.status, job.error = "failed", on_error(exc)
            except Exception as exc:  # a job must always end in a visible state
                job.status, job.error = "failed", {"code": "internal_error", "message": repr(exc)}
                raise

        self._pool.submit(run)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
