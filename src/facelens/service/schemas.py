"""Response schemas: the API contract in OpenAPI. A face is the library's own record (``facelens.result.FaceRecord``,
the one JSON form every door writes), so the schema of faces is generated from the result type, never restated."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from facelens.result import FaceRecord


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    code: str = Field(..., examples=["not_found"])
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class Status(BaseModel):
    status: str


class WhoAmI(BaseModel):
    key_id: str
    name: str
    scope: str = Field(..., description="identify (read-only) or admin")


class DetectResponse(BaseModel):
    """Faces, largest first: box, detector score, 5 landmarks; with ``liveness=true`` also ``liveness``."""

    width: int
    height: int
    faces: list[FaceRecord]


class VerifyResponse(_Open):
    """Also ``probability``/likelihood-ratio fields when a calibration is stored for the model."""

    similarity: float
    distance: float
    threshold: float
    is_match: bool
    face_a: dict[str, Any]
    face_b: dict[str, Any]
    faces_in_a: int
    faces_in_b: int
    model_id: str


class IdentifyResponse(BaseModel):
    """One record per face; ``identity.name`` is null for a stranger. With ``liveness``/``analyze`` the faces also
    carry those fields."""

    width: int
    height: int
    gallery: str
    faces: list[FaceRecord]


class AnalyzeResponse(BaseModel):
    width: int
    height: int
    faces: list[FaceRecord] = Field(..., description="box, landmarks, expression, age, gender, quality per face")


class GalleryName(BaseModel):
    name: str


class GalleryList(BaseModel):
    galleries: list[GalleryName]


class GalleryStats(_Open):
    name: str
    model_id: str
    people: int
    faces: int
    open_set_threshold: float | None
    fpir: float


class GalleryRemoved(BaseModel):
    name: str
    faces_removed: int


class PersonOut(BaseModel):
    name: str
    face_count: int
    metadata: dict[str, Any]
    created_at: float


class FaceOut(BaseModel):
    face_id: int
    name: str
    source: str
    content_hash: str
    box: list[float]
    score: float
    added_at: float


class PersonDetail(PersonOut):
    faces: list[FaceOut]


class PeopleList(BaseModel):
    total: int
    people: list[PersonOut]


class PersonRemoved(BaseModel):
    name: str
    faces_removed: int
    erased: bool = Field(False, description="true when erased everywhere (?erase=true), not only removed")


class Skipped(BaseModel):
    source: str = Field(..., description="the uploaded file's name (or field[index])")
    reason: str


class EnrollResponse(BaseModel):
    name: str
    added: list[int] = Field(..., description="ids of the faces added")
    skipped: list[Skipped]


class FaceRemoved(BaseModel):
    face_id: int
    removed: bool


#: Error answers every endpoint may give, documented once for the whole API.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in [
        (400, "bad request (invalid name, malformed body)"),
        (401, "missing or invalid API key"),
        (403, "the key's scope does not allow this"),
        (404, "unknown gallery, person or face"),
        (409, "name already taken, or model mismatch"),
        (413, "request body over the size limit"),
        (415, "not an image (judged from its content)"),
        (422, "unreadable image, over the pixel limit, no face, or invalid parameters"),
        (429, "rate limited (see Retry-After)"),
    ]
}
