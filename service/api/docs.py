"""OpenAPI descriptions shared by the job routes: the error contract and the PNG answers."""

from __future__ import annotations

from service.schemas.responses import ErrorPublic, JobAccepted

_ERRORS = {
    400: "undecodable or truncated image, malformed multipart body",
    401: "missing or wrong X-API-Key (only when the service has a key)",
    404: "unknown model",
    413: "a file, field or body over its size limit, too many files, or too many pixels",
    415: "an image format outside PNG, JPEG, WebP, BMP and GIF, or not multipart/form-data",
    422: "missing or out-of-range fields",
    503: "Redis or the workers unavailable, or the queue full; see Retry-After",
    504: "the job outlived its time limit",
}


def job_responses(png: str | None, uploads: bool = True) -> dict:
    skip = set() if uploads else {400, 413, 415}
    responses: dict = {
        status: {"model": ErrorPublic, "description": text}
        for status, text in _ERRORS.items()
        if status not in skip
    }
    responses[202] = {"model": JobAccepted, "description": "with ?async=true: the job id"}
    if png:
        responses[200] = {
            "description": f"{png}; JSON with `Accept: application/json`. Headers X-Model, "
            "X-Checkpoint-SHA256, X-Seed (when sampled), X-Job-Id, X-Elapsed-Ms",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        }
    return responses
