"""The one pipeline every entry point shares: decode → detect → align → embed.

A :class:`FacePipeline` holds one detector and one embedder (loaded lazily, once). ``get_pipeline`` caches
one per configuration per process so the CLI, service, video and batch code never load models twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

import facelens.models.catalog  # noqa: F401  (registers the core model specs)
from facelens.detect import DEFAULT_DETECTOR, Detector, get_detector
from facelens.embed import DEFAULT_EMBEDDER, Embedder, get_embedder
from facelens.errors import NoFaceError
from facelens.io.image import ImageInput, decode_image, describe_source
from facelens.types import DetectedFace, Face


@dataclass
class ImageFaces:
    """Faces found in one image (largest first), with the decoded image for later stages (drawing, analysis)."""

    source: str
    image: np.ndarray = field(repr=False)
    faces: list[Face]

    def to_dict(self, with_embedding: bool = True) -> dict:
        return {"path": self.source, "faces": [f.to_dict(with_embedding) for f in self.faces], "error": None}


class FacePipeline:
    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        embedder: str = DEFAULT_EMBEDDER,
        min_face_size: int = 20,
        upsample: int | None = None,
        max_pixels: int | None = None,
        landmarks68: bool = False,
    ) -> None:
        self.detector_name = detector
        self.embedder_name = embedder
        self.detector_options = {"min_face_size": min_face_size, "landmarks68": landmarks68}
        if upsample is not None:
            self.detector_options["upsample"] = upsample
        self.max_pixels = max_pixels

    @cached_property
    def detector(self) -> Detector:
        return get_detector(self.detector_name, **self.detector_options)

    @cached_property
    def embedder(self) -> Embedder:
        return get_embedder(self.embedder_name)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def decode(self, source: ImageInput) -> np.ndarray:
        return decode_image(source, max_pixels=self.max_pixels)

    def detect(self, source: ImageInput) -> list[DetectedFace]:
        image = source if isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.ndim == 3 else self.decode(source)
        return self.detector.detect(image)

    def embed_detections(self, image: np.ndarray, detections: list[DetectedFace]) -> list[Face]:
        vectors = self.embedder.embed(image, detections)  # detections: embedders that align on landmarks use them
        return [Face(detection=d, embedding=v, model_id=self.model_id) for d, v in zip(detections, vectors)]

    def process(self, source: ImageInput, largest_only: bool = False) -> ImageFaces:
        """Decode, detect and embed every face (or only the largest)."""
        image = self.decode(source)
        detections = self.detector.detect(image)
        if largest_only:
            detections = detections[:1]
        return ImageFaces(source=describe_source(source), image=image, faces=self.embed_detections(image, detections))

    def one_face(self, source: ImageInput, select: str = "largest") -> tuple[Face, int, ImageFaces]:
        """The face to use when an operation needs one: ``largest`` (default), ``best`` (detector score) or
        ``only`` (error if the image holds more than one). Returns the face, its index and all faces."""
        found = self.process(source)
        if not found.faces:
            raise NoFaceError(f"{found.source}: no face found")
        if select == "only" and len(found.faces) > 1:
            raise NoFaceError(f"{found.source}: {len(found.faces)} faces found where exactly one was expected")
        if select == "best":
            index = int(np.argmax([f.detection.score for f in found.faces]))
        elif select in ("largest", "only"):
            index = 0
        else:
            raise ValueError(f"unknown face selection {select!r}: use largest, best or only")
        return found.faces[index], index, found


_PIPELINES: dict[tuple, FacePipeline] = {}
_LOCK = threading.Lock()


def get_pipeline(detector: str = DEFAULT_DETECTOR, embedder: str = DEFAULT_EMBEDDER, **options) -> FacePipeline:
    """A shared pipeline for this configuration (models load once per process)."""
    key = (detector, embedder, tuple(sorted(options.items())))
    with _LOCK:
        if key not in _PIPELINES:
            _PIPELINES[key] = FacePipeline(detector=detector, embedder=embedder, **options)
        return _PIPELINES[key]
