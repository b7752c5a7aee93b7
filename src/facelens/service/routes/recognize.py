"""Endpoints that look at images: detect, verify, identify, analyze (the engine does the work, in the pool)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

import facelens
from facelens.analyze.api import HEADS
from facelens.embed import EMBEDDERS
from facelens.engine import FaceAnalyzer
from facelens.gallery.base import parse_key_values
from facelens.result import ImageResult
from facelens.service import schemas as S
from facelens.service.deps import QueryGallery, Reader, State
from facelens.service.uploads import ApiError, image_body

router = APIRouter(tags=["faces"])


#: The embedders a request may name (the library's names, nothing else).
EMBEDDER_PATTERN = "^(" + "|".join(name.replace("+", r"\+") for name in EMBEDDERS) + ")$"


def image_answer(found: ImageResult) -> dict[str, Any]:
    """An image's result as every image endpoint answers it: the library's one JSON form, without the source (the
    client knows what it sent) and with errors raised as HTTP errors."""
    record = found.raise_for_error().to_dict()
    return {"width": record["width"], "height": record["height"], "faces": record["faces"]}


@router.post("/v1/detect", openapi_extra=image_body(("image",)), response_model=S.DetectResponse,
             responses=S.ERRORS)
async def detect(
    request: Request,
    key: Reader,
    state: State,
    liveness: bool = Query(False, description="Add a liveness score and decision per face."),
) -> dict[str, Any]:
    """Faces in the image, largest first: box (x1, y1, x2, y2), score and 5 landmarks."""
    upload = (await state.payload(request, ("image",))).one("image")

    def run() -> dict[str, Any]:
        engine = FaceAnalyzer(detector=state.settings.detector,
                              tasks=("detect", "liveness") if liveness else ("detect",))
        return image_answer(engine.run_one(state.decode(upload)))

    result = await state.work(run)
    if state.audit.images_dir is not None:
        state.audit.record(key.key_id, "detect", image=state.keep(upload), faces=len(result["faces"]))
    return result


@router.post("/v1/verify", openapi_extra=image_body(("image_a", "image_b")), response_model=S.VerifyResponse,
             responses=S.ERRORS)
async def verify(
    request: Request,
    key: Reader,
    state: State,
    threshold: float | None = Query(None, description="Cosine-similarity threshold (default: the model's)."),
    fmr: float | None = Query(None, gt=0, lt=1, description="Threshold as a target false-match rate instead."),
    select: str = Query("largest", pattern="^(largest|best|only|centre)$"),
    liveness: bool = Query(False, description="A face judged a presentation attack never matches."),
    embedder: str | None = Query(None, pattern=EMBEDDER_PATTERN,
                                 description="Embedding model compared (default: the library's, SFace)."),
) -> dict[str, Any]:
    """Are the faces in ``image_a`` and ``image_b`` the same person?"""
    body = await state.payload(request, ("image_a", "image_b"))
    a, b = body.one("image_a"), body.one("image_b")

    def run() -> dict[str, Any]:
        image_a, image_b = state.decode(a), state.decode(b)
        return facelens.verify(image_a, image_b, threshold=threshold, select=select,
                               detector=state.settings.detector, liveness=liveness, fmr=fmr,
                               embedder=embedder).to_dict()

    result = await state.work(run)
    state.audit.record(key.key_id, "verify", is_match=result["is_match"], similarity=result["similarity"],
                       images=[state.keep(a), state.keep(b)] if state.audit.images_dir else None)
    return result


@router.post("/v1/identify", openapi_extra=image_body(("image",)), response_model=S.IdentifyResponse,
             responses=S.ERRORS)
async def identify(
    request: Request,
    key: Reader,
    state: State,
    store: QueryGallery,
    k: int = Query(3, ge=1, le=50, description="Candidates per face."),
    threshold: float | None = Query(None, description="Cosine similarity to name a face (overrides fpir)."),
    fpir: float = Query(0.01, gt=0, lt=1, description="Open-set false-positive identification rate."),
    liveness: bool = Query(False, description="Score liveness per face; spoofs are never named."),
    analyze: bool = Query(False, description="Add expression, age/gender and quality per face."),
    where: list[str] | None = Query(None, description="Only people whose metadata has KEY=VALUE (repeat a key "
                                                      "for any of its values; values parse as JSON)."),
    min_quality: float | None = Query(None, ge=0, le=1, description="Leave faces whose quality score is below "
                                                                    "this unknown."),
) -> dict[str, Any]:
    """Name every face in the image against a gallery (``identity.name`` is null for strangers)."""
    filters = parse_key_values(where, "where")
    upload = (await state.payload(request, ("image",))).one("image")

    def run() -> dict[str, Any]:
        found = facelens.identify(state.decode(upload), store, k=k, threshold=threshold, fpir=fpir, where=filters,
                                  detector=state.settings.detector, liveness=liveness, analyze=analyze,
                                  min_quality=min_quality)
        return {**image_answer(found), "gallery": store.collection}

    result = await state.work(run)
    state.audit.record(key.key_id, "identify", store.collection, faces=len(result["faces"]),
                       names=[f["identity"]["name"] for f in result["faces"]], image=state.keep(upload))
    return result


@router.post("/v1/analyze", openapi_extra=image_body(("image",)), response_model=S.AnalyzeResponse,
             responses=S.ERRORS)
async def analyze(
    request: Request,
    key: Reader,
    state: State,
    heads: str = Query(",".join(HEADS), description=f"Comma-separated built-in heads: {', '.join(HEADS)}."),
    head: str | None = Query(None, description="A custom head (from `facelens analyze fit`) by name: the file "
                                               "NAME.joblib in the server's heads folder (FACELENS_HEADS_DIR)."),
    face_crops: bool = Query(False, description="The image is already one face crop (FER2013/CK+ style): "
                                                "no detection."),
    expression_model: str | None = Query(None, description="Expression model by name (default: the library's; "
                                                            "`facelens analyze models` lists them)."),
) -> dict[str, Any]:
    """Expression, age/gender and quality of every face (the heads chosen), and a custom head's answer under
    ``head``. A head whose model is missing reports it in the face's ``errors`` while the others answer."""
    chosen = tuple(h for h in heads.split(",") if h)
    unknown = sorted(set(chosen) - set(HEADS))
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown analysis heads {unknown}; choose from {', '.join(HEADS)}")
    if expression_model is not None:
        from facelens.analyze.expression import expression_model_names

        if expression_model not in expression_model_names():
            raise ApiError(422, "invalid_request", f"unknown expression model {expression_model!r}; choose from "
                                                   f"{', '.join(expression_model_names())}")
    custom = await state.work(state.custom_head, head) if head else None
    upload = (await state.payload(request, ("image",))).one("image")

    def run() -> dict[str, Any]:
        engine = FaceAnalyzer(detector=state.settings.detector, tasks=("detect", "analyze"), heads=chosen,
                              custom_head=custom, face_crops=face_crops, expression_model=expression_model)
        return image_answer(engine.run_one(state.decode(upload)))

    result = await state.work(run)
    if state.audit.images_dir is not None:
        state.audit.record(key.key_id, "analyze", image=state.keep(upload), faces=len(result["faces"]))
    return result
