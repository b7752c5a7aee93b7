"""The loaded models of one configuration: a detector and an embedder (lazily, once per process).

``get_pipeline`` caches one :class:`FacePipeline` per configuration per process, so the engine
(:mod:`facelens.engine`, which orchestrates every door) and the stages that work frame by frame (video) share
the same models. ``process`` is the plain one-image decode → detect → embed path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

import facelens.models.catalog  # noqa: F401  (registers the core model specs)
from facelens.detect import DEFAULT_DETECTOR, Detector, get_detector
from facelens.embed import DEFAULT_EMBEDDER, Embedder, get_embedder
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
        embed_threads: int | None = None,
    ) -> None:
        self.detector_name = detector
        self.embedder_name = embedder
        self.embed_threads = embed_threads
        self.detector_options = {"min_face_size": min_face_size, "landmarks68": landmarks68}
        if upsample is not None:
            self.detector_options["upsample"] = upsample
        self.max_pixels = max_pixels

    @cached_property
    def detector(self) -> Detector:
        return get_detector(self.detector_name, **self.detector_options)

    @cached_property
    def embedder(self) -> Embedder:
        if self.embed_threads is not None:
            # ONNX embedders take a per-session thread count (so pool workers do not oversubscribe the cores);
            # the dlib embedder has none and runs single-threaded anyway
            try:
                return get_embedder(self.embedder_name, threads=self.embed_threads)
            except TypeError:
                pass
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


_PIPELINES: dict[tuple, FacePipeline] = {}
_LOCK = threading.Lock()


def get_pipeline(detector: str = DEFAULT_DETECTOR, embedder: str = DEFAULT_EMBEDDER, **options) -> FacePipeline:
    """A shared pipeline for this configuration (models load once per process)."""
    key = (detector, embedder, tuple(sorted(options.items())))
    with _LOCK:
        if key not in _PIPELINES:
            _PIPELINES[key] = FacePipeline(detector=detector, embedder=embedder, **options)
        return _PIPELINES[key]
