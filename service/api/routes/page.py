"""The web page at `/`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parents[2] / "static"

router = APIRouter(tags=["page"])


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The web page: the default model's example images (or files dropped) in two slots, and
    transfer, sampling, neutralising and interpolation between them."""
    return FileResponse(STATIC / "index.html", media_type="text/html")
