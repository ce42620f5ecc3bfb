"""A job's state and result, for `?async=true` requests and after a 504."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import JobsDep
from service.api.job_route import public_result
from service.core.errors import ApiError
from service.schemas.responses import ErrorPublic, JobErrorPublic, JobStatusPublic

router = APIRouter(tags=["jobs"])


@router.get(
    "/jobs/{job_id}",
    response_model=JobStatusPublic,
    responses={404: {"model": ErrorPublic, "description": "unknown or expired job"}},
)
async def read_job(job_id: str, jobs: JobsDep) -> JobStatusPublic:
    """A job's state (queued, running, succeeded, failed) with its result or error; results
    expire after the service's result TTL."""
    state = await jobs.state(job_id) if len(job_id) <= 64 else None
    if state is None:
        raise ApiError(404, f"no job {job_id[:64]!r} (unknown, or its result expired)")
    return JobStatusPublic(
        job_id=job_id,
        kind=state.record.kind,
        status=state.state,
        result=public_result(state.record.task, job_id, state.result) if state.result else None,
        error=JobErrorPublic(**vars(state.error)) if state.error else None,
    )
