"""``POST /v1/anonymize``: an image back with its faces covered (JPEG, no metadata), everyone or per a gallery's
keep-/target-list; what was done in the ``X-Faces``/``X-Covered``/``X-Kept`` headers."""

from __future__ import annotations

import io
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from facelens.privacy import METHODS, Anonymizer, Cover, People
from facelens.privacy.methods import DEFAULT_MARGIN
from facelens.service.deps import Reader, State
from facelens.service.state import DEFAULT_GALLERY
from facelens.service.uploads import ApiError, image_body

router = APIRouter(tags=["faces"])


@router.post("/v1/anonymize", openapi_extra=image_body(("image",)), response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}, "description": "the anonymised image"}})
async def anonymize(
    request: Request,
    key: Reader,
    state: State,
    method: str = Query("blur", description="How to cover faces: " + ", ".join(m for m in METHODS if m != "replace")),
    strength: float | None = Query(None, gt=0, description="Per method (default: measured, re-identification <= 1 %)."),
    margin: float = Query(DEFAULT_MARGIN, ge=0, le=2, description="Fraction of the face box added on each side."),
    keep: str = Query("none", pattern="^(none|keep|only)$",
                      description="keep: the gallery's people stay visible; only: only they are covered."),
    gallery: str = Query(DEFAULT_GALLERY, description="Gallery of the keep-/target-list."),
) -> Response:
    """Cover the faces of the image and return it as a JPEG without any of the upload's metadata."""
    if method not in METHODS or method == "replace":
        raise ApiError(400, "bad_request", f"method must be one of {', '.join(m for m in METHODS if m != 'replace')}")
    upload = (await state.payload(request, ("image",))).one("image")

    def run() -> tuple[bytes, dict[str, Any]]:
        try:
            cover = Cover(method, strength, margin)
        except ValueError as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        people = People(state.gallery(gallery), keep) if keep != "none" else None
        outcome = Anonymizer(cover, detector=state.settings.detector, people=people, workers=1).image(
            state.decode(upload))
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(outcome.image).save(buffer, format="JPEG", quality=92)
        return buffer.getvalue(), outcome.to_dict()

    data, summary = await state.work(run)
    state.audit.record(key.key_id, "anonymize", gallery if keep != "none" else None, faces=summary["faces"],
                       covered=summary["covered"])
    return Response(data, media_type="image/jpeg", headers={
        "X-Faces": str(summary["faces"]), "X-Covered": str(summary["covered"]),
        "X-Kept": json.dumps(summary["kept"]), "Content-Disposition": 'inline; filename="anonymised.jpg"'})
