"""Liveness and readiness probes (no key needed; HEAD too, for load balancers)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from facelens.service import schemas as S
from facelens.service.deps import State

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=S.Status)
async def healthz() -> dict[str, str]:
    """The process is up (no key needed)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "models still loading or unavailable"}})
async def readyz(state: State) -> JSONResponse:
    """Models are loaded and requests will be served without a loading delay (no key needed)."""
    if state.ready:
        return JSONResponse({"status": "ready"})
    body = {"status": "failed" if state.load_error else "loading"}
    if state.load_error:
        body["error"] = state.load_error
    return JSONResponse(body, status_code=503)


for _path, _probe in (("/healthz", healthz), ("/readyz", readyz)):
    router.add_api_route(_path, _probe, methods=["HEAD"], include_in_schema=False)
