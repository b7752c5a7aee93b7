"""People of a gallery and their enrolment (one face per photo, all of a request's photos in one transaction)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

import facelens
from facelens.errors import ImageDecodeError, NotFoundError
from facelens.gallery.base import check_metadata
from facelens.service import schemas as S
from facelens.service.deps import Admin, PathGallery, Reader, State
from facelens.service.uploads import ApiError, image_body

router = APIRouter(tags=["people"])


class PersonCreate(BaseModel):
    name: str = Field(..., examples=["ada"])
    metadata: dict[str, Any] | None = Field(None, examples=[{"team": "blue"}])


class PersonUpdate(BaseModel):
    name: str | None = Field(None, description="New name (rename).")
    metadata: dict[str, Any] | None = Field(None, description="Replaces the person's metadata.")


def client_face(face: dict[str, Any]) -> dict[str, Any]:
    """A stored face as clients see it: its source by file name only (never a path on the server)."""
    source = str(face.get("source") or "")
    return {**face, "source": Path(source.replace("\\", "/")).name if source else source}


@router.get("/v1/galleries/{gallery}/people", response_model=S.PeopleList, responses=S.ERRORS)
async def people(
    key: Reader,
    store: PathGallery,
    state: State,
    offset: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=10000),
) -> dict[str, Any]:
    """People in the gallery (name, face count, metadata), by name."""

    def run() -> dict[str, Any]:
        everyone = sorted(store.people(), key=lambda p: p.name)
        return {"total": len(everyone), "people": [p.to_dict() for p in everyone[offset : offset + limit]]}

    return await state.work(run)


@router.post("/v1/galleries/{gallery}/people", status_code=201, response_model=S.PersonOut, responses=S.ERRORS)
async def create_person(body: PersonCreate, key: Admin, store: PathGallery, state: State) -> dict[str, Any]:
    """Add a person with no faces yet (409 if the name is taken)."""

    def run() -> dict[str, Any]:
        try:
            store.person(body.name.strip())
        except NotFoundError:
            return store.add_person(body.name, body.metadata).to_dict()
        raise ApiError(409, "exists", f"{body.name!r} is already in gallery {store.collection!r}")

    result = await state.work(run)
    state.audit.record(key.key_id, "create_person", store.collection, result["name"])
    return result


@router.get("/v1/galleries/{gallery}/people/{name:path}", response_model=S.PersonDetail, responses=S.ERRORS)
async def get_person(name: str, key: Reader, store: PathGallery, state: State) -> dict[str, Any]:
    """One person and their enrolled faces."""

    def run() -> dict[str, Any]:
        person = store.person(name).to_dict()
        return {**person, "faces": [client_face(f.to_dict()) for f in store.faces(name)]}

    return await state.work(run)


@router.patch("/v1/galleries/{gallery}/people/{name:path}", response_model=S.PersonOut, responses=S.ERRORS)
async def update_person(name: str, body: PersonUpdate, key: Admin, store: PathGallery,
                        state: State) -> dict[str, Any]:
    """Replace a person's metadata and/or rename them."""

    def run() -> dict[str, Any]:
        current = store.person(name)
        if body.metadata is not None:
            store.update_person(name, body.metadata)
        if body.name is not None and body.name.strip() != current.name:
            store.rename(name, body.name)
            return store.person(body.name.strip()).to_dict()
        return store.person(name).to_dict()

    result = await state.work(run)
    state.audit.record(key.key_id, "update_person", store.collection, name, renamed_to=body.name)
    return result


@router.delete("/v1/galleries/{gallery}/people/{name:path}", response_model=S.PersonRemoved, responses=S.ERRORS)
async def delete_person(
    name: str, key: Admin, store: PathGallery, state: State,
    erase: bool = Query(False, description="Erase everywhere: vectors compacted out of the storage, probe images "
                                           "and the name removed from the audit log (which keeps the fact)."),
) -> dict[str, Any]:
    """Remove a person and all their faces (``?erase=true``: leave nothing of them behind)."""
    if not erase:
        removed = await state.work(store.remove, name)
        state.audit.record(key.key_id, "delete_person", store.collection, name, faces_removed=removed)
        return {"name": name, "faces_removed": removed, "erased": False}
    result = await state.work(store.erase, name)
    await state.work(lambda: state.audit.erase(key.key_id, store.collection, name,
                                               faces_removed=result["faces_removed"]))
    return {"name": name, "faces_removed": result["faces_removed"], "erased": True}


@router.post(
    "/v1/galleries/{gallery}/people/{name:path}/faces",
    response_model=S.EnrollResponse,
    responses=S.ERRORS,
    openapi_extra=image_body(("image",), repeated=True,
                             extra={"metadata": {"type": "object", "description": "metadata for a new person"}}),
)
async def enroll(
    request: Request,
    name: Annotated[str, PathParam(description="Created if not yet in the gallery.")],
    key: Admin,
    store: PathGallery,
    state: State,
    select: str = Query("single", pattern="^(single|largest|best|only|centre)$",
                        description="Which face of a photo: single refuses photos of several people of similar "
                                    "size; largest, best (detector score) or only."),
    min_quality: float | None = Query(None, ge=0, le=1, description="Refuse faces whose quality score is below."),
) -> dict[str, Any]:
    """Enrol one face per image for a person, all in one transaction; unusable images are skipped with a reason."""
    body = await state.payload(request, ("image", "images"))
    uploads = body.images.get("image", []) + body.images.get("images", [])
    if not uploads:
        raise ApiError(422, "missing_image", "send one or more images (multipart field 'image' or JSON 'images')")
    metadata = body.fields.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            raise ApiError(422, "bad_request", "metadata is not valid JSON") from None
    metadata = check_metadata(metadata) or None  # before any image is looked at

    def run() -> dict[str, Any]:
        images, labels, skipped = [], [], []
        for upload in uploads:
            try:
                images.append(state.decode(upload))
                labels.append(upload.label)
            except ImageDecodeError as exc:
                skipped.append({"source": upload.label, "reason": str(exc).removeprefix(f"{upload.label}: ")})
        # one library call for every photo: its faces are written in one transaction (all of them or none,
        # whatever happens to this process), and each skip is reported under the client's own file name
        result = facelens.enroll(store, name, images, metadata=metadata, detector=state.settings.detector,
                                 select=select, min_quality=min_quality, sources=labels, workers=1)
        return {"name": result.name, "added": result.added,
                "skipped": skipped + [{"source": s["source"], "reason": s["reason"].removeprefix(f"{s['source']}: ")}
                                      for s in result.skipped]}

    result = await state.work(run)
    state.audit.record(key.key_id, "enroll", store.collection, name, added=len(result["added"]),
                       skipped=len(result["skipped"]))
    return result
