"""Expression, age/gender, quality and an optional custom head for every face.

:meth:`Analyzer.fill` is the engine's ``analyze`` task: it runs each head once on all faces of a chunk of images
and fills the heads' typed columns of :class:`facelens.result.Faces` (a head that fails — e.g. its model is
missing — records its error per face; the others still answer). :func:`analyze` is the one-image door onto the
engine; :meth:`Analyzer.analyze_detections` serves callers that hold detections (the analyze CLI, video).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import facelens.analyze.models  # noqa: F401  (registers the analysis model specs)
from facelens.analyze.age_gender import AgeGender, get_age_gender_model
from facelens.analyze.expression import Expression, get_expression_model, model_name_of
from facelens.analyze.heads import CustomHead, HeadResult, feature_matrix
from facelens.analyze.quality import Quality, assess_quality
from facelens.errors import FacelensError, ModelIntegrityError, ModelUnavailableError
from facelens.result import ImageResult
from facelens.types import DetectedFace

log = logging.getLogger(__name__)

#: The heads run by default; ``blendshapes`` (MediaPipe, needs the optional ai-edge-litert) runs when asked for.
HEADS = ("expression", "age_gender", "quality")
ALL_HEADS = (*HEADS, "blendshapes")


def check_heads(heads: Sequence[str]) -> None:
    """Unknown head names are a ``ValueError``; a head whose optional runtime is missing (blendshapes without
    ai-edge-litert) a :class:`ModelUnavailableError` — both said before any image is read."""
    unknown = set(heads) - set(ALL_HEADS)
    if unknown:
        raise ValueError(f"unknown analysis heads {sorted(unknown)}; choose from {', '.join(ALL_HEADS)}")
    if "blendshapes" in heads:
        from facelens.analyze.blendshapes import require_litert

        require_litert()


@dataclass(frozen=True)
class FaceAnalysis:
    """Everything the heads say about one face; absent heads are ``None``."""

    detection: DetectedFace
    expression: Expression | None = None
    age_gender: AgeGender | None = None
    quality: Quality | None = None
    head: HeadResult | None = None
    blendshapes: dict[str, float] | None = None
    errors: dict[str, str] = field(default_factory=dict)  # head -> why it has no answer (e.g. its model is missing)

    def fields(self) -> dict[str, Any]:
        """The analysis fields alone; a failed head is ``{"error": ...}`` under its name."""
        out: dict[str, Any] = {head: {"error": why} for head, why in self.errors.items()}
        if self.expression is not None:
            out["expression"] = self.expression.to_dict()
        if self.age_gender is not None:
            out.update(self.age_gender.to_dict())
        if self.quality is not None:
            out["quality"] = self.quality.to_dict()
        if self.blendshapes is not None:
            out["blendshapes"] = {k: round(v, 4) for k, v in self.blendshapes.items()}
        if self.head is not None:
            out[self.head.name] = self.head.to_dict()
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**self.detection.to_dict(), **self.fields()}


@dataclass
class ImageAnalysis:
    source: str
    faces: list[FaceAnalysis]
    image: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.source, "faces": [f.to_dict() for f in self.faces], "error": self.error}


#: Side a small face crop is upscaled to (bicubic) before dlib's landmarks: on FER+ valid's 48x48 crops the
#: opencv_fer accuracy through those landmarks is 0.691 at 192 px (see analyze/opencv_fer.py).
LANDMARK_SIDE = 192


def whole_detection(image: np.ndarray) -> DetectedFace:
    """The whole input as one face (``--face-crops``): box = image, landmarks from dlib's 68-point model
    (run on a copy upscaled to :data:`LANDMARK_SIDE` when the crop is smaller, mapped back)."""
    import cv2

    from facelens.align import landmarks_68
    from facelens.detect.base import five_from_68

    height, width = image.shape[:2]
    box = np.array([0, 0, width, height], np.float32)
    scale = max(1.0, LANDMARK_SIDE / max(height, width))
    work = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if scale > 1.0:
        work = cv2.resize(work, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)
    points = landmarks_68(work, box * scale) / scale
    return DetectedFace(box=box, score=1.0, landmarks=five_from_68(points).astype(np.float32), detector="crop")


class Analyzer:
    """Runs the chosen heads on detections. Models load lazily, once per process (shared with other analyzers)."""

    def __init__(
        self,
        heads: Sequence[str] = HEADS,
        custom_head: CustomHead | str | Path | None = None,
        expression_runtime: str = "onnxruntime",
        pipeline: Any = None,
        expression_model: str | None = None,
    ) -> None:
        check_heads(heads)
        self.heads = tuple(heads)
        self.custom_head = CustomHead.load(custom_head) if isinstance(custom_head, (str, Path)) else custom_head
        self.expression_runtime = expression_runtime
        self.expression_model = expression_model  # None: DEFAULT_EXPRESSION_MODEL
        self._pipeline = pipeline
        self._failed: dict[str, str] = {}  # a head whose model could not load is not retried on every image

    def _run_head(self, name: str, compute: Any) -> Any:
        """``compute()``, or None with the error recorded when the head's model is unavailable."""
        if name in self._failed:
            return None
        try:
            return compute()
        except (ModelUnavailableError, ModelIntegrityError) as exc:
            log.warning("%s head unavailable: %s", name, exc)
            self._failed[name] = " ".join(str(exc).split())
            return None

    @property
    def pipeline(self) -> Any:
        if self._pipeline is None:
            from facelens.pipeline import get_pipeline

            self._pipeline = get_pipeline()
        return self._pipeline

    def _custom_needs_expression(self) -> bool:
        head = self.custom_head
        return head is not None and ("expression" in head.features or head.base == "expression")

    def _custom_expression_model(self) -> str:
        """The expression model a custom head was fitted on (its features are that model's probabilities)."""
        return model_name_of(self.custom_head.model_ids.get("expression", "fer_mini_xception"))

    def analyze_detections(
        self,
        image: np.ndarray,
        detections: list[DetectedFace],
        embeddings: np.ndarray | None = None,
        face_crops: bool = False,
    ) -> list[FaceAnalysis]:
        """Analyse faces already detected in an RGB image. ``embeddings`` (one row per detection) are used by a
        custom head on embeddings; when missing they are computed with the pipeline's embedder."""
        if not detections:
            return []
        expressions = ages = qualities = heads = None
        probs = base_expressions = None
        if "expression" in self.heads:

            def expression() -> tuple[np.ndarray, tuple[str, ...]]:
                model = get_expression_model(self.expression_model, self.expression_runtime)
                return model.probabilities(model.crops(image, detections, face_crops)), model.labels

            found = self._run_head("expression", expression)
            if found is not None:
                expressions = [Expression.from_vector(p, found[1]) for p in found[0]]
        if self._custom_needs_expression():

            def base_expression() -> tuple[np.ndarray, tuple[str, ...]]:
                model = get_expression_model(self._custom_expression_model(), self.expression_runtime)
                return model.probabilities(model.crops(image, detections, face_crops)), model.labels

            found = self._run_head("expression", base_expression)
            if found is not None:
                probs = found[0]
                base_expressions = [Expression.from_vector(p, found[1]) for p in probs]
        if "age_gender" in self.heads:
            ages = self._run_head("age_gender", lambda: get_age_gender_model().predict(image, detections))
        shapes = None
        if "blendshapes" in self.heads:
            from facelens.analyze.blendshapes import BLENDSHAPES, get_blendshape_model

            scores = self._run_head("blendshapes", lambda: get_blendshape_model().scores(image, detections))
            shapes = None if scores is None else [dict(zip(BLENDSHAPES, map(float, row))) for row in scores]
        if "quality" in self.heads:
            qualities = [assess_quality(image, d) for d in detections]
        if self.custom_head is not None and not (probs is None and "expression" in self.custom_head.features):
            if "embedding" in self.custom_head.features and embeddings is None:
                embeddings = np.stack([f.embedding for f in self.pipeline.embed_detections(image, detections)])
            X = feature_matrix(self.custom_head.features, embeddings, probs)
            base = [e.label for e in base_expressions] if probs is not None else None
            heads = self.custom_head.predict(X, base)
        errors = {h: why for h, why in self._failed.items() if h in self.heads}
        if self.custom_head is not None and heads is None:
            errors[self.custom_head.name] = self._failed.get("expression", "the expression head it needs failed")
        return [
            FaceAnalysis(
                detection=d,
                expression=expressions[i] if expressions is not None and "expression" in self.heads else None,
                age_gender=ages[i] if ages is not None else None,
                quality=qualities[i] if qualities is not None else None,
                head=heads[i] if heads is not None else None,
                blendshapes=shapes[i] if shapes is not None else None,
                errors=errors,
            )
            for i, d in enumerate(detections)
        ]

    def fill(self, images: Sequence[np.ndarray], faces: Sequence[Any], face_crops: bool = False) -> None:
        """Run the heads on every face of several images (each head once for all of them) and fill the heads'
        columns of each image's :class:`facelens.result.Faces`. A failing head records ``{head: message}`` in
        each face's ``errors`` and leaves its column ``None``; the other heads still answer."""
        from facelens.result import _column

        detections = [f.detections() for f in faces]
        flat = [(image, d) for image, dets in zip(images, detections) for d in dets]
        counts = [len(dets) for dets in detections]
        offsets = np.cumsum([0, *counts])

        def split(values: Any) -> list[Any]:
            return [values[offsets[j] : offsets[j + 1]] for j in range(len(faces))]

        def failed(head: str, exc: Exception) -> None:
            message = str(exc) if isinstance(exc, FacelensError) else f"{exc.__class__.__name__}: {exc}"
            log.warning("analysis head %s failed: %s", head, message)
            for found in faces:
                for i in range(len(found)):
                    found.add_error(i, head, message)

        def expression_probs(name: str | None) -> tuple[np.ndarray, tuple[str, ...]]:
            model = get_expression_model(name, self.expression_runtime)
            crops = [c for image, dets in zip(images, detections) for c in model.crops(image, dets, face_crops)]
            return model.probabilities(crops), tuple(model.labels)

        probs = labels = None
        if "expression" in self.heads:
            try:
                found_probs, found_labels = expression_probs(self.expression_model)
                for found, part in zip(faces, split(found_probs)):
                    found.expression, found.expression_labels = np.asarray(part, np.float32), found_labels
            except Exception as exc:  # noqa: BLE001  (a failing head reports itself; the others still answer)
                failed("expression", exc)
        if self._custom_needs_expression():
            try:
                probs, labels = expression_probs(self._custom_expression_model())
            except Exception as exc:  # noqa: BLE001  (a failing head reports itself; the others still answer)
                failed("expression", exc)
        if "age_gender" in self.heads:
            try:
                from facelens.analyze.age_gender import detection_shape

                model = get_age_gender_model()
                results = model.predict_shapes_many([(image, detection_shape(image, d)) for image, d in flat])
                for found, part in zip(faces, split(results)):
                    found.age = np.array([r.age for r in part], np.float32)
                    found.age_confidence = np.array([r.age_confidence for r in part], np.float32)
                    found.gender = _column([r.gender for r in part])
                    found.gender_confidence = np.array([r.gender_confidence for r in part], np.float32)
            except Exception as exc:  # noqa: BLE001  (a failing head reports itself; the others still answer)
                failed("age_gender", exc)
        if "blendshapes" in self.heads:
            try:
                from facelens.analyze.blendshapes import get_blendshape_model

                model = get_blendshape_model()
                for image, dets, found in zip(images, detections, faces):
                    found.blendshapes = model.scores(image, dets)
            except Exception as exc:  # noqa: BLE001  (a failing head reports itself; the others still answer)
                failed("blendshapes", exc)
        if "quality" in self.heads:
            try:
                qualities = [assess_quality(image, d) for image, d in flat]
                for found, part in zip(faces, split(qualities)):
                    found.quality = _column(part)
            except Exception as exc:  # noqa: BLE001  (a failing head reports itself; the others still answer)
                failed("quality", exc)
        if self.custom_head is not None:
            try:
                embeddings = None
                if "embedding" in self.custom_head.features:
                    missing = [f for f in faces if f.embedding is None]
                    if missing:
                        raise FacelensError("the custom head needs embeddings: run the embed task")
                    embeddings = np.concatenate([f.embedding for f in faces])
                X = feature_matrix(self.custom_head.features, embeddings, probs)
                base = [labels[int(k)] for k in probs.argmax(1)] if probs is not None and labels else None
                results = self.custom_head.predict(X, base)
                for found, part in zip(faces, split(results)):
                    found.head = _column(list(part))
            except Exception as exc:  # noqa: BLE001  (a failing head reports itself; the others still answer)
                failed("head", exc)

    def analyze_image(self, source: Any, face_crops: bool = False) -> ImageAnalysis:
        """Decode, detect (or take the whole input as the face with ``face_crops``) and analyse."""
        from facelens.io.image import describe_source

        image = self.pipeline.decode(source)
        detections = [whole_detection(image)] if face_crops else self.pipeline.detector.detect(image)
        faces = self.analyze_detections(image, detections, face_crops=face_crops)
        return ImageAnalysis(describe_source(source), faces, image=image)


def analyze(
    source: Any,
    heads: Sequence[str] = HEADS,
    face_crops: bool = False,
    custom_head: CustomHead | str | Path | None = None,
    pipeline: Any = None,
    detector: str | None = None,
    expression_model: str | None = None,
) -> ImageResult:
    """Expression, age/gender and quality of every face in an image (path, bytes or RGB array), through the engine.

    >>> result = analyze("photo.jpg")
    >>> result.faces.expression_label, result.faces.age, result.faces.gender
    """
    from facelens.detect import DEFAULT_DETECTOR
    from facelens.engine import FaceAnalyzer

    detector = detector or getattr(pipeline, "detector_name", None) or DEFAULT_DETECTOR
    engine = FaceAnalyzer(detector=detector, tasks=("analyze",), heads=tuple(heads), custom_head=custom_head,
                          face_crops=face_crops, workers=1, expression_model=expression_model)
    return engine.run_one(source).raise_for_error()


def annotate(image: np.ndarray, faces: list[FaceAnalysis]) -> np.ndarray:
    """A copy of the RGB image with each face's box and a short label (expression, age, gender, quality)."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    scale = max(out.shape[:2]) / 800
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.detection.box)  # noqa: RUF046  (numpy floats round to floats)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 200, 0), max(1, int(2 * scale)))
        parts = []
        if face.expression is not None:
            parts.append(f"{face.expression.label} {face.expression.score:.2f}")
        if face.age_gender is not None:
            parts.append(f"{face.age_gender.gender[0].upper()} {face.age_gender.age:.0f}")
        if face.quality is not None:
            parts.append(f"q{face.quality.score:.2f}")
        if face.head is not None:
            parts.append(f"{face.head.label}")
        cv2.putText(
            out,
            " ".join(parts),
            (x1, max(12, y1 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45 * max(scale, 0.6),
            (255, 255, 0),
            max(1, int(scale)),
            cv2.LINE_AA,
        )
    return out


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def labelled_images(data_dir: str | Path) -> list[tuple[Path, str]]:
    """(image, label) for every image under ``data_dir/<label>/`` (one folder per label), sorted."""
    root = Path(data_dir)
    if not root.is_dir():
        from facelens.errors import FacelensError

        raise FacelensError(f"{root} is not a folder; expected one sub-folder of face images per label")
    return [
        (path, folder.name)
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def face_features(
    sources: Sequence[Any], features: Sequence[str], face_crops: bool = False, pipeline: Any = None,
    expression_model: str | None = None,
) -> tuple[np.ndarray, list[str], list[int]]:  # fmt: skip
    """Feature rows (see :func:`feature_matrix`) of the largest face of each source, the expression model's
    label for each, and the indices of the sources that had a face (others are skipped and logged)."""
    analyzer = Analyzer(heads=(), pipeline=pipeline)
    model = get_expression_model(expression_model)
    rows_embed, rows_expr, kept = [], [], []
    for i, source in enumerate(sources):
        image = analyzer.pipeline.decode(source)
        detections = [whole_detection(image)] if face_crops else analyzer.pipeline.detector.detect(image)[:1]
        if not detections:
            log.warning("%s: no face found, skipped", source)
            continue
        if "embedding" in features:
            rows_embed.append(analyzer.pipeline.embed_detections(image, detections)[0].embedding)
        rows_expr += model.crops(image, detections[:1], face_crops)
        kept.append(i)
    probs = model.probabilities(rows_expr)
    X = feature_matrix(features, np.array(rows_embed) if rows_embed else None, probs)
    base = [model.labels[k] for k in probs.argmax(1)] if len(probs) else []
    return X, base, kept
