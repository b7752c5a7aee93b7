"""Response schemas: the API contract in OpenAPI. Fields the library adds on request (liveness, analysis, calibrated
probabilities) pass through as extra fields, so the service never has to mirror every library result here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class DetectedFaceOut(_Open):
    """A face; with ``liveness=true`` also ``liveness: {score, is_live}``."""

    box: list[float] = Field(..., description="x1, y1, x2, y2 in pixels of the (EXIF-rotated) image")
    score: float
    landmarks: list[list[float]] = Field(..., description="right eye, left eye, nose, mouth right, mouth left")


class DetectResponse(BaseModel):
    width: int
    height: int
    faces: list[DetectedFaceOut]


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


class CandidateOut(BaseModel):
    name: str
    score: float
    face_id: int


class MatchOut(_Open):
    """One face: ``name`` is null for a stranger. With ``liveness``/``analyze`` the library's fields are added."""

    box: list[float]
    name: str | None
    label: str
    score: float
    threshold: float
    candidates: list[CandidateOut]


class IdentifyResponse(BaseModel):
    width: int
    height: int
    gallery: str
    faces: list[MatchOut]


class AnalyzeResponse(BaseModel):
    width: int
    height: int
    faces: list[dict[str, Any]] = Field(..., description="box, landmarks, expression, age, gender, quality per face")


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
