"""Enrolled faces by id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam

from facelens.service import schemas as S
from facelens.service.deps import Admin, PathGallery, State

router = APIRouter(tags=["people"])


@router.delete("/v1/galleries/{gallery}/faces/{face_id}", response_model=S.FaceRemoved, responses=S.ERRORS)
async def delete_face(face_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)], key: Admin, store: PathGallery,
                      state: State) -> dict[str, Any]:
    """Remove one enrolled face (the person stays, even with no faces left)."""
    await state.work(store.remove_face, face_id)
    state.audit.record(key.key_id, "delete_face", store.collection, face_id=face_id)
    return {"face_id": face_id, "removed": True}
