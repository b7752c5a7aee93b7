"""The top-level verbs: detect, embed, verify, identify, open_gallery — thin doors onto the shared pipeline."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelens.decide import profile, similarity_to_distance, verify_threshold
from facelens.detect import DEFAULT_DETECTOR
from facelens.errors import FacelensError, NoFaceError
from facelens.gallery import Gallery, Match, open_gallery
from facelens.io.image import ImageInput
from facelens.pipeline import ImageFaces, get_pipeline
from facelens.types import DetectedFace, Face

log = logging.getLogger(__name__)


def detect(image: ImageInput, detector: str = DEFAULT_DETECTOR, landmarks68: bool = False) -> list[DetectedFace]:
    """Faces in the image, largest first: box (x1, y1, x2, y2), score and 5 landmarks (68 on request)."""
    return get_pipeline(detector=detector, landmarks68=landmarks68).detect(image)


def embed(image: ImageInput, detector: str = DEFAULT_DETECTOR, largest_only: bool = False) -> list[Face]:
    """Every face's L2-normalised embedding (dlib ResNet 128-D by default), largest face first."""
    return get_pipeline(detector=detector).process(image, largest_only=largest_only).faces


def _liveness(found: ImageFaces, face: Face) -> bool:
    from facelens.liveness.checker import attach_liveness, is_live

    attach_liveness(found.image, [face])
    return is_live(face)


@dataclass(frozen=True)
class VerifyResult:
    """1:1 comparison. ``similarity`` is cosine; ``distance`` the Euclidean distance of the unit vectors."""

    similarity: float
    distance: float
    threshold: float
    is_match: bool
    face_a: dict[str, Any]
    face_b: dict[str, Any]
    faces_in_a: int
    faces_in_b: int
    model_id: str
    calibrated: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "similarity": round(self.similarity, 4),
            "distance": round(self.distance, 4),
            "threshold": round(self.threshold, 4),
            "is_match": self.is_match,
            "face_a": self.face_a,
            "face_b": self.face_b,
            "faces_in_a": self.faces_in_a,
            "faces_in_b": self.faces_in_b,
            "model_id": self.model_id,
        }
        out.update(self.calibrated)
        return out


def verify(
    a: ImageInput,
    b: ImageInput,
    threshold: float | None = None,
    select: str = "largest",
    detector: str = DEFAULT_DETECTOR,
    liveness: bool = False,
    fmr: float | None = None,
) -> VerifyResult:
    """Are the faces in ``a`` and ``b`` the same person?

    When an image holds several faces the ``select`` rule picks one (``largest``, ``best`` score, or ``only``) and
    the result says which (its index and box). ``fmr`` sets the threshold as a target false-match rate (from the
    model's measured impostor distribution) instead of a similarity. The default threshold was chosen on LFW DevTest pairs (see README).
    With ``liveness=True`` a face judged a presentation attack never matches. When a calibration is stored for the
    model (``facelens eval calibrate --save``), the calibrated probability and likelihood ratio are added.
    """
    pipe = get_pipeline(detector=detector)
    face_a, index_a, found_a = pipe.one_face(a, select=select)
    face_b, index_b, found_b = pipe.one_face(b, select=select)
    similarity = float(np.dot(face_a.embedding, face_b.embedding))
    if threshold is not None:
        limit = float(threshold)
    elif fmr is not None:
        limit = profile(pipe.model_id).threshold_for_fmr(fmr)
    else:
        limit = verify_threshold(pipe.model_id)
    is_match = similarity >= limit
    if liveness:
        live_a, live_b = _liveness(found_a, face_a), _liveness(found_b, face_b)
        is_match = is_match and live_a and live_b
    calibrated: dict[str, Any] = {}
    try:
        from facelens.evaluate.calibration import calibrated_fields

        calibrated = calibrated_fields(similarity, pipe.model_id)
    except FacelensError as exc:  # calibration is optional: a damaged file is reported, not fatal
        log.warning("%s", exc)
        calibrated = {}

    def describe(face: Face, index: int) -> dict[str, Any]:
        return {"index": index, **face.to_dict(with_embedding=False)}

    return VerifyResult(
        similarity=similarity,
        distance=similarity_to_distance(similarity),
        threshold=limit,
        is_match=bool(is_match),
        face_a=describe(face_a, index_a),
        face_b=describe(face_b, index_b),
        faces_in_a=len(found_a.faces),
        faces_in_b=len(found_b.faces),
        model_id=pipe.model_id,
        calibrated=calibrated,
    )


def identify(
    image: ImageInput,
    gallery: Gallery | str,
    k: int = 3,
    threshold: float | None = None,
    fpir: float = 0.01,
    detector: str = DEFAULT_DETECTOR,
    liveness: bool = False,
    analyze: bool = False,
    where: dict | None = None,
) -> list[Match]:
    """Name every face in ``image`` against ``gallery`` (open set: ``name`` is None for strangers).

    ``liveness=True`` adds a liveness score per face and never names a spoof; ``analyze=True`` adds expression,
    age/gender and quality from the same detections; ``where`` limits candidates by person metadata."""
    owned = isinstance(gallery, str)
    store = open_gallery(gallery, create=False) if owned else gallery
    try:
        pipe = get_pipeline(detector=detector)
        store.check_model(pipe.model_id)
        found = pipe.process(image)
        matches = store.identify_faces(
            [f.embedding for f in found.faces], [f.box for f in found.faces], k, threshold, fpir, where=where
        )
        if analyze and found.faces:
            from facelens.analyze.api import attach_analysis

            attach_analysis(found.image, found.faces)
        if liveness and found.faces:
            from facelens.liveness.checker import attach_liveness, is_live

            attach_liveness(found.image, found.faces)
        if analyze or liveness:
            matches = [
                Match(m.box, m.name if (not liveness or is_live(f)) else None, m.score, m.threshold, m.candidates,
                      dict(f.extras))
                for m, f in zip(matches, found.faces)
            ]
        return matches
    finally:
        if owned:
            store.close()


__all__ = ["detect", "embed", "verify", "identify", "open_gallery", "VerifyResult", "NoFaceError"]
