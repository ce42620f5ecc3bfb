"""The service's one error type: an HTTP status, a JSON `detail`, and optional headers."""

from __future__ import annotations

from fastapi import HTTPException


class ApiError(HTTPException):
    """Rendered by FastAPI's handler as `{"detail": ...}`; also passes through body parsing,
    which turns any other exception into a generic 400."""

    def __init__(self, status: int, detail: object, headers: dict[str, str] | None = None):
        super().__init__(status_code=status, detail=detail, headers=headers)


class Unavailable(ApiError):
    """Redis, the workers or the queue cannot take the job now: 503 with Retry-After."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(503, detail, headers={"Retry-After": str(retry_after_s)})
