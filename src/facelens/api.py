"""The top-level verbs — detect, embed, verify, identify, enroll, open_gallery — thin doors onto the engine.

Each verb on one image runs :class:`facelens.engine.FaceAnalyzer` in this process and returns its
:class:`facelens.result.ImageResult` (an unreadable image raises its typed error); thresholds come from
:class:`facelens.decide.ThresholdPolicy`. For many images, use ``FaceAnalyzer(...).run(images)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from facelens.decide import DEFAULT_FPIR, ThresholdPolicy, similarity_to_distance
from facelens.detect import DEFAULT_DETECTOR
from facelens.distributed.resume import ALREADY_ENROLLED, already_enrolled
from facelens.engine import FaceAnalyzer
from facelens.errors import FacelensError, NoFaceError
from facelens.gallery import EnrollResult, Gallery, open_gallery
from facelens.io.image import ImageInput, describe_source
from facelens.result import FaceResult, ImageResult

log = logging.getLogger(__name__)


def detect(image: ImageInput, detector: str = DEFAULT_DETECTOR, landmarks68: bool = False) -> ImageResult:
    """Faces in the image, largest first: box (x1, y1, x2, y2), score and 5 landmarks (68 on request)."""
    engine = FaceAnalyzer(detector=detector, tasks=("detect",), landmarks68=landmarks68, workers=1)
    return engine.run_one(image).raise_for_error()


def embed(image: ImageInput, detector: str = DEFAULT_DETECTOR, largest_only: bool = False,
          embedder: str | None = None) -> ImageResult:
    """Every face's L2-normalised embedding in ``faces.embedding``, largest first: ``embedder``'s (a name of
    ``facelens.embed.EMBEDDERS``; default ``facelens.embed.DEFAULT_EMBEDDER``)."""
    engine = FaceAnalyzer(detector=detector, embedder=embedder, select="largest" if largest_only else None, workers=1)
    return engine.run_one(image).raise_for_error()


def select_face(result: ImageResult, select: str = "largest") -> int:
    """Index of the face to use when an operation needs one: ``largest`` (default), ``best`` (detector score),
    ``only`` (error if the image holds more than one) or ``centre`` (nearest the image centre, as in LFW)."""
    from facelens.engine import SELECTIONS

    if select not in SELECTIONS:
        raise ValueError(f"unknown face selection {select!r}: use {', '.join(SELECTIONS)}")
    if not len(result.faces):
        raise NoFaceError(f"{result.source}: no face found")
    if select == "only" and len(result.faces) > 1:
        raise NoFaceError(f"{result.source}: {len(result.faces)} faces found where exactly one was expected")
    if select == "centre":
        from facelens.evaluate.protocols import centred_face

        return centred_face(result.faces.box, (result.height, result.width))
    return int(np.argmax(result.faces.score)) if select == "best" else 0


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
    embedder: str | None = None,
) -> VerifyResult:
    """Are the faces in ``a`` and ``b`` the same person?

    When an image holds several faces the ``select`` rule picks one (``largest``, ``best`` score, or ``only``) and
    the result says which (its index and box). ``fmr`` sets the threshold as a target false-match rate (from the
    model's measured impostor distribution) instead of a similarity. The default threshold was chosen on LFW
    DevTest pairs (see README). With ``liveness=True`` a face judged a presentation attack never matches. When a
    calibration is stored for the model (``facelens eval calibrate --save``), the calibrated probability and
    likelihood ratio are added. ``embedder``: the model compared (default ``facelens.embed.DEFAULT_EMBEDDER``); the
    threshold is that model's own.
    """
    policy = ThresholdPolicy.for_verify(threshold, fmr)
    engine = FaceAnalyzer(detector=detector, embedder=embedder, tasks=("embed", "liveness") if liveness else ("embed",),
                          workers=1)
    found_a, found_b = (r.raise_for_error() for r in engine.run([a, b]))  # both images' faces in one embed batch
    index_a, index_b = select_face(found_a, select), select_face(found_b, select)
    face_a, face_b = found_a.faces[index_a], found_b.faces[index_b]
    similarity = float(np.dot(face_a.embedding, face_b.embedding))
    model_id = found_a.faces.model_id or engine.model_id
    limit = policy.threshold(model_id)
    is_match = similarity >= limit
    if liveness:
        is_match = is_match and bool(face_a.is_live) and bool(face_b.is_live)
    calibrated: dict[str, Any] = {}
    try:
        from facelens.evaluate.calibration import calibrated_fields

        calibrated = calibrated_fields(similarity, model_id)
    except FacelensError as exc:  # calibration is optional: a damaged file is reported, not fatal
        log.warning("%s", exc)
        calibrated = {}

    def describe(face: FaceResult) -> dict[str, Any]:
        return {"index": face.index, **face.to_dict()}

    return VerifyResult(
        similarity=similarity,
        distance=similarity_to_distance(similarity),
        threshold=limit,
        is_match=bool(is_match),
        face_a=describe(face_a),
        face_b=describe(face_b),
        faces_in_a=len(found_a.faces),
        faces_in_b=len(found_b.faces),
        model_id=model_id,
        calibrated=calibrated,
    )


def identify(
    image: ImageInput,
    gallery: Gallery | str,
    k: int = 3,
    threshold: float | None = None,
    fpir: float = DEFAULT_FPIR,
    detector: str = DEFAULT_DETECTOR,
    liveness: bool = False,
    analyze: bool = False,
    where: dict | None = None,
    min_quality: float | None = None,
) -> ImageResult:
    """Name every face in ``image`` against ``gallery`` (open set: ``faces.name`` is None for strangers).

    ``threshold`` (a fixed similarity) overrides ``fpir`` (the share of strangers given a name, for the gallery's
    size). ``liveness=True`` adds a liveness score per face and never names a spoof; ``analyze=True`` adds
    expression, age/gender and quality from the same detections; ``where`` limits candidates by person metadata;
    faces of quality below ``min_quality`` stay unknown."""
    owned = isinstance(gallery, str)
    store = open_gallery(gallery, create=False) if owned else gallery
    try:
        tasks = ("identify",) + (("liveness",) if liveness else ()) + (("analyze",) if analyze else ())
        engine = FaceAnalyzer(detector=detector, tasks=tasks, gallery=store, k=k, where=where, workers=1,
                              policy=ThresholdPolicy.for_identify(threshold, fpir, min_quality))
        store.check_model(engine.model_id)
        return engine.run_one(image).raise_for_error()
    finally:
        if owned:
            store.close()


def enroll(
    gallery: Gallery | str,
    name: str,
    images: Sequence[ImageInput],
    metadata: dict[str, Any] | None = None,
    select: str = "single",
    min_quality: float | None = None,
    detector: str = DEFAULT_DETECTOR,
    workers: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    sources: Sequence[str] | None = None,
) -> EnrollResult:
    """Embed one face per image and add them to ``name`` in ``gallery``.

    ``select`` says which face of a photo (see :data:`ENROL_SELECTIONS`): by default a photo of several people of
    similar size is refused rather than enrolling the largest face, which may be someone else's. Images with no
    face, unreadable images and images already enrolled for this person (same decoded pixels; found before anything
    runs, so a re-run computes only what is not done) are skipped with a reason — also faces whose quality score
    is below ``min_quality``, with the quality's reasons. The faces that are added go in one transaction, so a
    crash leaves either all or none of them. ``sources`` name the images (one each) in the faces' records and the
    skip reasons."""
    return enroll_people(gallery, [(name, images)], metadata=metadata, select=select, min_quality=min_quality,
                         detector=detector, workers=workers, progress=progress,
                         sources=[list(sources)] if sources is not None else None)[0]


def enroll_people(
    gallery: Gallery | str,
    people: Mapping[str, Sequence[ImageInput]] | Iterable[tuple[str, Sequence[ImageInput]]],
    metadata: dict[str, Any] | None = None,
    select: str = "single",
    min_quality: float | None = None,
    detector: str = DEFAULT_DETECTOR,
    workers: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    sources: Sequence[Sequence[str]] | None = None,
    runner: Any = None,
) -> list[EnrollResult]:
    """:func:`enroll` for many people in one engine run (every core busy however few images each person has);
    each person's faces are written in their own transaction. One :class:`EnrollResult` per person, in order.
    ``sources`` (per person, one name per image) are what the faces' ``source`` records and skip reasons say, for
    images given as bytes or arrays (an upload's file name, say). ``runner`` runs the engine elsewhere (a
    :class:`facelens.distributed.RayRunner`); the gallery is written from here, except a PostgreSQL gallery on Ray,
    which the actors write themselves, one transaction per chunk (see :mod:`facelens.distributed.enrol`)."""
    from facelens.embed import embedder_for_model
    from facelens.gallery.base import _check_metadata, _check_name

    metadata = _check_metadata(metadata) or None  # refused before any image is processed
    jobs = [(_check_name(name), list(images)) for name, images in (people.items() if isinstance(people, Mapping) else people)]
    owned = isinstance(gallery, str)
    store = open_gallery(gallery) if owned else gallery
    try:
        if select not in ENROL_SELECTIONS:
            raise ValueError(f"unknown face selection {select!r}: use {', '.join(ENROL_SELECTIONS)}")
        engine = FaceAnalyzer(detector=detector, tasks=("embed", "analyze") if min_quality is not None else ("embed",),
                              heads=("quality",), select=None if select == "single" else select, content_hash=True,
                              workers=workers, runner=runner, embedder=embedder_for_model(store.model_id))
        store.check_model(engine.model_id)
        owners = [j for j, (_, images) in enumerate(jobs) for _ in images]
        results = [EnrollResult(name=name) for name, _ in jobs]
        pending: list[tuple[list, list]] = [([], []) for _ in jobs]
        seen: list[set[str]] = [set() for _ in jobs]
        remaining = [len(images) for _, images in jobs]

        def write(j: int) -> None:
            vectors, faces = pending[j]
            if vectors:
                results[j].added = store.add_faces(jobs[j][0], np.stack(vectors), faces, metadata)
            pending[j] = ([], [])

        for j in (j for j, count in enumerate(remaining) if count == 0):
            write(j)
        all_images = [image for _, images in jobs for image in images]
        labels = [str(label) for person in sources for label in person] if sources is not None else None
        if labels is not None and len(labels) != len(all_images):
            raise ValueError(f"{len(labels)} sources for {len(all_images)} images")
        # a re-run skips what is done: images the gallery holds for their person are not dispatched at all
        named = labels if labels is not None else [describe_source(image) for image in all_images]
        done = already_enrolled(store, [jobs[o][0] for o in owners], all_images, named, engine.max_pixels)
        if runner is not None and getattr(runner, "writes_gallery", lambda _store: False)(store):
            from facelens.distributed.enrol import enrol_on_workers  # PostgreSQL: the Ray actors write their chunks

            return enrol_on_workers(runner, engine, store, jobs, owners, all_images, named, done, results,
                                    metadata, min_quality, progress)
        todo = [i for i in range(len(all_images)) if i not in done]
        ahead = (lambda n, _total: progress(n + len(done), len(all_images))) if progress is not None else None
        computed = iter(engine.run([all_images[i] for i in todo], progress=ahead))
        for index, owner in enumerate(owners):
            if index in done:
                results[owner].skipped.append({"source": named[index], "reason": done[index]})
                remaining[owner] -= 1
                if remaining[owner] == 0:
                    write(owner)
                continue
            found = next(computed)
            if labels is not None:
                found = replace(found, source=labels[index],
                                error=found.error.replace(found.source, labels[index]) if found.error else None)
            reason = _enrol_refusal(found, min_quality, seen[owner], store, jobs[owner][0])
            if reason is not None:
                results[owner].skipped.append({"source": found.source, "reason": reason})
            else:
                face = found.faces[0]
                seen[owner].add(found.content_hash or "")
                pending[owner][0].append(face.embedding)
                pending[owner][1].append(
                    {
                        "source": found.source,
                        "content_hash": found.content_hash or "",
                        "box": [round(float(v), 1) for v in face.box],
                        "score": face.score,
                    }
                )
            remaining[owner] -= 1
            if remaining[owner] == 0:  # this person's images are all in: write them now
                write(owner)
        for _ in computed:  # the run ends (with nothing left to compute, it starts and ends here)
            pass
        if runner is not None and hasattr(runner, "stats"):
            runner.stats.skipped = len(done)
        return results
    finally:
        if owned:
            store.close()


#: Which face of a photo to enrol: ``single`` (the default) takes the only face, or the largest when every other
#: face is far smaller (a face in the background), and refuses a photo of several people of similar size;
#: ``largest`` / ``best`` (detector score) / ``only`` as in verify.
ENROL_SELECTIONS = ("single", "largest", "best", "only", "centre")
#: Under ``single``, another face smaller than the largest by this area ratio is taken for a bystander.
BYSTANDER_AREA_RATIO = 4.0


def _enrol_refusal(found: ImageResult, min_quality: float | None, seen: set[str], store: Gallery | None,
                   name: str) -> str | None:
    """Why this image's face is not enrolled (None: it is; its face is then ``found.faces[0]``); without ``store``
    the gallery is not asked (a write that skips what it holds decides that)."""
    if found.error is not None:
        return found.error
    if not len(found.faces):
        return f"{found.source}: no face found"
    if len(found.faces) > 1:
        area = np.sort(found.faces.area)[::-1]
        if area[1] * BYSTANDER_AREA_RATIO > area[0]:
            return (f"{len(found.faces)} faces of similar size: enrol from a photo of this person alone, or choose "
                    "one with select='largest' (CLI: --select largest)")
    face = found.faces[0]
    if min_quality is not None:
        quality = face.quality
        if quality is None:
            return f"quality unavailable: {(face.errors or {}).get('quality', 'not measured')}"
        if quality.score < min_quality:
            why = ", ".join(quality.reasons) or "low overall quality"
            return f"quality {quality.score:.2f} < {min_quality}: {why}"
    digest = found.content_hash or ""
    if digest in seen or (store is not None and store.has_image(name, digest)):
        return ALREADY_ENROLLED
    return None


__all__ = [
    "EnrollResult",
    "ImageResult",
    "NoFaceError",
    "VerifyResult",
    "detect",
    "embed",
    "enroll",
    "enroll_people",
    "identify",
    "open_gallery",
    "select_face",
    "verify",
]
