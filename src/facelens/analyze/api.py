"""Expression, age/gender, quality and an optional custom head for every face.

:meth:`Analyzer.fill` is the engine's ``analyze`` task: it runs each head once on all faces of a chunk of images
and fills the heads' typed columns of :class:`facelens.result.Faces` (a head that fails — e.g. its model is
missing — records its error per face; the others still answer). :func:`analyze` is the one-image door onto the
engine; :func:`face_features` gives a custom head's training rows (``facelens analyze fit``), also through the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import facelens.analyze.models  # noqa: F401  (registers the analysis model specs)
from facelens.analyze.age_gender import get_age_gender_model
from facelens.analyze.expression import get_expression_model, model_name_of
from facelens.analyze.heads import CustomHead, feature_matrix
from facelens.analyze.quality import assess_quality
from facelens.errors import FacelensError
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
    """The engine's ``analyze`` task: the chosen heads on the faces of a chunk (:meth:`fill`). Models load lazily,
    once per process (shared with other analyzers)."""

    def __init__(
        self,
        heads: Sequence[str] = HEADS,
        custom_head: CustomHead | str | Path | None = None,
        expression_runtime: str = "onnxruntime",
        expression_model: str | None = None,
        expression_features: bool = False,
    ) -> None:
        """``expression_features``: also keep each face's expression features (``Faces.expression_features``), for
        test-time adaptation (facelens.analyze.adapt) in the calling process."""
        check_heads(heads)
        self.expression_features = expression_features
        self.heads = tuple(heads)
        self.custom_head = CustomHead.load(custom_head) if isinstance(custom_head, (str, Path)) else custom_head
        self.expression_runtime = expression_runtime
        self.expression_model = expression_model  # None: DEFAULT_EXPRESSION_MODEL

    def _custom_needs_expression(self) -> bool:
        head = self.custom_head
        return head is not None and ("expression" in head.features or head.base == "expression")

    def _custom_expression_model(self) -> str:
        """The expression model a custom head was fitted on (its features are that model's probabilities)."""
        return model_name_of(self.custom_head.model_ids.get("expression", "fer_mini_xception"))

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

        def expression_probs(name: str | None, keep: bool = False) -> tuple[np.ndarray, tuple[str, ...], Any]:
            model = get_expression_model(name, self.expression_runtime)
            crops = [c for image, dets in zip(images, detections) for c in model.crops(image, dets, face_crops)]
            if not keep or not crops:
                return model.probabilities(crops), tuple(model.labels), None
            features = model.features(crops)
            return model.classify(features), tuple(model.labels), np.asarray(features, np.float32)

        probs = labels = None
        if "expression" in self.heads:
            try:
                found_probs, found_labels, features = expression_probs(self.expression_model, self.expression_features)
                parts = split(features) if features is not None else [None] * len(faces)
                for found, part, feats in zip(faces, split(found_probs), parts):
                    found.expression, found.expression_labels = np.asarray(part, np.float32), found_labels
                    found.expression_features = feats
            except Exception as exc:  # noqa: BLE001  (a failing head reports itself; the others still answer)
                failed("expression", exc)
        if self._custom_needs_expression():
            try:
                probs, labels, _ = expression_probs(self._custom_expression_model())
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

def analyze(
    source: Any,
    heads: Sequence[str] = HEADS,
    face_crops: bool = False,
    custom_head: CustomHead | str | Path | None = None,
    detector: str | None = None,
    expression_model: str | None = None,
) -> ImageResult:
    """Expression, age/gender and quality of every face in an image (path, bytes or RGB array), through the engine.

    >>> result = analyze("photo.jpg")
    >>> result.faces.expression_label, result.faces.age, result.faces.gender
    """
    from facelens.detect import DEFAULT_DETECTOR
    from facelens.engine import FaceAnalyzer

    detector = detector or DEFAULT_DETECTOR
    engine = FaceAnalyzer(detector=detector, tasks=("analyze",), heads=tuple(heads), custom_head=custom_head,
                          face_crops=face_crops, workers=1, expression_model=expression_model)
    return engine.run_one(source).raise_for_error()


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
    sources: Sequence[Any], features: Sequence[str], face_crops: bool = False, detector: str | None = None,
    embedder: str | None = None, expression_model: str | None = None,
) -> tuple[np.ndarray, list[str], list[int]]:
    """Feature rows (see :func:`feature_matrix`) of the largest face of each source, the expression model's
    label for each, and the indices of the sources that had a face (others are skipped and logged). The engine
    does the work (every core): the expression head and, for ``embedding`` features, the embedder."""
    from facelens.detect import DEFAULT_DETECTOR
    from facelens.embed import DEFAULT_EMBEDDER
    from facelens.engine import FaceAnalyzer

    tasks = ("embed", "analyze") if "embedding" in features else ("analyze",)
    engine = FaceAnalyzer(detector=detector or DEFAULT_DETECTOR, embedder=embedder or DEFAULT_EMBEDDER, tasks=tasks,
                          heads=("expression",), face_crops=face_crops, select="largest",
                          expression_model=expression_model)
    rows_embed, rows_expr, kept, labels = [], [], [], ()
    for i, result in enumerate(engine.run(list(sources))):
        if result.error is not None or not len(result.faces):
            log.warning("%s: %s, skipped", result.source, result.error or "no face found")
            continue
        faces = result.faces
        if faces.expression is None:  # the expression head failed: every row would lack it
            raise FacelensError(f"expression head unavailable: {faces[0].errors.get('expression', 'unknown error')}")
        if "embedding" in features:
            rows_embed.append(faces.embedding[0])
        rows_expr.append(faces.expression[0])
        labels = faces.expression_labels
        kept.append(i)
    probs = np.array(rows_expr, np.float32).reshape(len(rows_expr), -1)
    X = feature_matrix(features, np.array(rows_embed) if rows_embed else None, probs)
    base = [labels[k] for k in probs.argmax(1)] if len(probs) else []
    return X, base, kept
