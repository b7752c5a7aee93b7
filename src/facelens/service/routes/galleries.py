"""Galleries: named collections of the one store (list, create, inspect, delete)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from facelens.gallery import Gallery, drop_collection, list_collections
from facelens.service import schemas as S
from facelens.service.deps import Admin, PathGallery, Reader, State
from facelens.service.state import DEFAULT_GALLERY
from facelens.service.uploads import ApiError

router = APIRouter(tags=["galleries"])


class GalleryCreate(BaseModel):
    name: str = Field(..., description="Letters, digits, '_', '.', '-' (up to 64).", examples=["staff"])


def gallery_stats(store: Gallery) -> dict[str, Any]:
    stats = store.stats()
    stats.pop("location", None)
    stats.pop("collection", None)
    return {"name": store.collection, **stats}


@router.get("/v1/galleries", response_model=S.GalleryList, responses=S.ERRORS)
async def galleries(key: Reader, state: State) -> dict[str, Any]:
    """Names of the galleries (collections) in the store."""
    names = await state.work(list_collections, state.settings.gallery)
    return {"galleries": [{"name": n} for n in names]}


@router.post("/v1/galleries", status_code=201, response_model=S.GalleryStats, responses=S.ERRORS)
async def create_gallery(body: GalleryCreate, key: Admin, state: State) -> dict[str, Any]:
    """Create an empty gallery (409 if it exists)."""
    if body.name in await state.work(list_collections, state.settings.gallery):
        raise ApiError(409, "exists", f"gallery {body.name!r} already exists")
    state.forget(body.name)  # a handle left from a same-named gallery another replica deleted
    store = await state.work(state.gallery, body.name, True)
    state.audit.record(key.key_id, "create_gallery", body.name)
    return await state.work(gallery_stats, store)


@router.get("/v1/galleries/{gallery}", response_model=S.GalleryStats, responses=S.ERRORS)
async def get_gallery(key: Reader, store: PathGallery, state: State) -> dict[str, Any]:
    """A gallery's size, model and open-set threshold."""
    return await state.work(gallery_stats, store)


@router.delete("/v1/galleries/{gallery}", response_model=S.GalleryRemoved, responses=S.ERRORS)
async def delete_gallery(gallery: str, key: Admin, state: State) -> dict[str, Any]:
    """Delete a gallery with all its people and faces (the default gallery always exists: 409)."""
    if gallery == DEFAULT_GALLERY:
        raise ApiError(409, "default_gallery", f"the {DEFAULT_GALLERY!r} gallery always exists; "
                                               "remove its people instead")
    await state.work(state.gallery, gallery)  # 400 for a bad name, 404 for an unknown gallery
    state.forget(gallery)
    removed = await state.work(drop_collection, state.settings.gallery, gallery)
    state.audit.record(key.key_id, "delete_gallery", gallery, faces_removed=removed)
    return {"name": gallery, "faces_removed": removed}
