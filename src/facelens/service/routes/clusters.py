"""Clustering a gallery's photo library and correcting it over HTTP: the same verbs as ``facelens cluster``.

Photos enter the library through ``facelens cluster DIR -g GALLERY`` (or :func:`facelens.cluster.cluster_photos`)
on the machine that holds them; ``POST .../cluster`` clusters the faces stored and waiting (running no model), and
the correction endpoints change people the way the CLI's ``name/merge/split/remove/not/different`` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from facelens.service import schemas as S
from facelens.service.deps import Admin, PathGallery, Reader, State

router = APIRouter(tags=["clusters"])


class ClusterRequest(BaseModel):
    method: str = Field("hdbscan", description="hdbscan or incremental (Immich's rule).")
    min_size: int | None = Field(None, ge=2, description="Smallest cluster that becomes a person.")
    fpir: float = Field(0.01, gt=0, lt=1, description="Open-set rate for joining existing people.")
    threshold: float | None = Field(None, description="Fixed similarity for joining existing people.")


class NameRequest(BaseModel):
    person: str
    name: str


class MergeRequest(BaseModel):
    source: str
    target: str


class SplitRequest(BaseModel):
    person: str
    detections: list[int] = Field(..., min_length=1)
    into: str | None = None


class RemoveRequest(BaseModel):
    detections: list[int] = Field(..., min_length=1)


class NotPersonRequest(BaseModel):
    person: str
    detections: list[int] = Field(..., min_length=1)


class DifferentRequest(BaseModel):
    a: str
    b: str


def _face(record: dict[str, Any]) -> dict[str, Any]:
    """A library face as clients see it: its photo by file name only (never a path on the server)."""
    return {**record, "path": Path(str(record["path"])).name}


@router.post("/v1/galleries/{gallery}/cluster", responses=S.ERRORS)
async def cluster(body: ClusterRequest, key: Admin, store: PathGallery, state: State) -> dict[str, Any]:
    """Cluster the library's waiting faces: those the open-set decision gives to a person join them, the rest form
    new anonymous people ``unknown-N``; faces that already have a person are never moved."""
    from facelens.cluster import METHODS
    from facelens.service.uploads import ApiError

    if body.method not in METHODS:
        raise ApiError(400, "bad_request", f"unknown method {body.method!r}; choose one of {', '.join(METHODS)}")
    report = await state.work(store.cluster, method=body.method, min_size=body.min_size, fpir=body.fpir,
                              threshold=body.threshold)
    state.audit.record(key.key_id, "cluster", store.collection, f"{report.clustered} faces")
    return report.to_dict()


@router.get("/v1/galleries/{gallery}/cluster/faces", responses=S.ERRORS)
async def cluster_faces(key: Reader, store: PathGallery, state: State,
                        person: str | None = Query(None, description="Only this person's faces.")) -> dict[str, Any]:
    """The library's faces: detection id, photo, box, state, person."""
    faces = await state.work(store.detections, person=person)
    return {"faces": [_face(d.to_dict()) for d in faces]}


#: Side of a face thumbnail in pixels, and the margin around the box (share of its size).
THUMBNAIL, THUMBNAIL_MARGIN = 96, 0.25


def face_thumbnail(store: Any, detection_id: int) -> bytes:
    """A JPEG of one library face, cut from its photo with a margin and scaled to THUMBNAIL pixels."""
    import cv2
    import numpy as np

    from facelens.errors import NotFoundError
    from facelens.io.image import decode_image, encode_jpeg

    found = store.detections(ids=[detection_id])
    if not found:
        raise NotFoundError(f"no detection with id {detection_id} in gallery {store.collection!r}")
    face = found[0]
    image = decode_image(face.path)
    x1, y1, x2, y2 = face.box
    pad = THUMBNAIL_MARGIN * max(x2 - x1, y2 - y1)
    h, w = image.shape[:2]
    left, top = int(max(0, x1 - pad)), int(max(0, y1 - pad))
    right, bottom = int(min(w, x2 + pad)), int(min(h, y2 + pad))
    crop = np.ascontiguousarray(image[top:bottom, left:right])
    return encode_jpeg(cv2.resize(crop, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA), quality=85)


@router.get("/v1/galleries/{gallery}/cluster/faces/{detection}/thumbnail", responses=S.ERRORS,
            response_class=Response)
async def thumbnail(detection: int, key: Reader, store: PathGallery, state: State) -> Response:
    """One library face as a small JPEG (for the console's people page)."""
    return Response(await state.work(face_thumbnail, store, detection), media_type="image/jpeg")


async def _correct(key: Any, store: Any, state: Any, action: str, fn: Any, *args: Any) -> dict[str, Any]:
    result = await state.work(fn, store, *args)
    state.audit.record(key.key_id, f"cluster_{action}", store.collection, str(args[0]))
    return {"action": action, "result": result}


@router.post("/v1/galleries/{gallery}/cluster/name", responses=S.ERRORS)
async def name(body: NameRequest, key: Admin, store: PathGallery, state: State) -> dict[str, Any]:
    """Name a person (a cluster): every face in it is enrolled under the name (merged if the name exists)."""
    from facelens.cluster import name_person

    return await _correct(key, store, state, "name", name_person, body.person, body.name)


@router.post("/v1/galleries/{gallery}/cluster/merge", responses=S.ERRORS)
async def merge(body: MergeRequest, key: Admin, store: PathGallery, state: State) -> dict[str, Any]:
    """Move every face of ``source`` to ``target`` (refused if they were marked different)."""
    from facelens.cluster import merge_people

    return await _correct(key, store, state, "merge", merge_people, body.source, body.target)


@router.post("/v1/galleries/{gallery}/cluster/split", responses=S.ERRORS)
async def split(body: SplitRequest, key: Admin, store: PathGallery, state: State) -> dict[str, Any]:
    """Move some faces of a person to another (default: a new cluster); they are marked not that person."""
    from facelens.cluster import split_person

    return await _correct(key, store, state, "split", split_person, body.person, body.detections, body.into)


@router.post("/v1/galleries/{gallery}/cluster/remove", responses=S.ERRORS)
async def remove(body: RemoveRequest, key: Admin, store: PathGallery, state: State) -> dict[str, Any]:
    """Dismiss faces: they leave their person and never come back."""
    from facelens.cluster import remove_faces

    return await _correct(key, store, state, "remove", remove_faces, body.detections)


@router.post("/v1/galleries/{gallery}/cluster/not", responses=S.ERRORS)
async def not_this_person(body: NotPersonRequest, key: Admin, store: PathGallery, state: State) -> dict[str, Any]:
    """These faces are not this person: never clustered into or identified as them again."""
    from facelens.cluster import not_person

    return await _correct(key, store, state, "not", lambda g, *a: not_person(g, body.detections, body.person),
                          body.person)


@router.post("/v1/galleries/{gallery}/cluster/different", responses=S.ERRORS)
async def different(body: DifferentRequest, key: Admin, store: PathGallery, state: State) -> dict[str, Any]:
    """Two people are different: a merge of them is refused from now on."""
    from facelens.cluster import different_people

    return await _correct(key, store, state, "different", different_people, body.a, body.b)
