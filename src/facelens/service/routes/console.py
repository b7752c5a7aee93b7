"""The web console: static files mounted at ``/console`` by ``create_app``; ``/`` leads there."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/console/")
