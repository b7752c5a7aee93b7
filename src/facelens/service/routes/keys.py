"""Who the caller is (keys themselves are managed with ``facelens keys``, never over HTTP)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from facelens.service import schemas as S
from facelens.service.deps import Reader

router = APIRouter(tags=["keys"])


@router.get("/v1/whoami", response_model=S.WhoAmI, responses=S.ERRORS)
async def whoami(key: Reader) -> dict[str, Any]:
    """The key's id, name and scope (the console uses it to sign in)."""
    return {"key_id": key.key_id, "name": key.name, "scope": key.scope}
