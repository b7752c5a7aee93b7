"""The embedder interface: aligned faces in, L2-normalised float32 vectors out, with a stable model id.

Alignment and inference are separate steps so that an orchestrator can cut the crops of many images and send
them through the network in one batch: ``crops(image, faces)`` per image, ``embed_crops(all_crops)`` once.

``faces`` are boxes (x1, y1, x2, y2) or detections (anything with ``.box`` and ``.landmarks``, e.g.
:class:`facelens.types.DetectedFace`). Embedders aligned on the 5 landmarks use the detector's; given bare boxes,
they find the landmarks themselves (dlib's 68-point predictor, as the dlib detectors do).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


def face_boxes(faces: list[Any]) -> list[np.ndarray]:
    """The boxes of ``faces`` (boxes or detections)."""
    return [np.asarray(getattr(f, "box", f), np.float32) for f in faces]


def face_landmarks(image: np.ndarray, faces: list[Any]) -> list[np.ndarray]:
    """The 5 landmarks (facelens.types.LANDMARK_ORDER) of ``faces``: the detection's own when it has usable
    ones, else derived from dlib's 68 landmarks found in the box."""
    out = []
    for face in faces:
        points = getattr(face, "landmarks", None)
        if points is None or not np.asarray(points).any():  # bare box, or a detector that gives none
            from facelens.align import landmarks_68
            from facelens.detect.base import five_from_68

            points = five_from_68(landmarks_68(image, np.asarray(getattr(face, "box", face), np.float32)))
        out.append(np.asarray(points, np.float32).reshape(5, 2))
    return out


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Embedder(ABC):
    model_id: str = ""
    dim: int = 0
    #: What runs the network ("onnx", "dlib"); one model id may have several runtimes giving the same vectors.
    runtime: str = ""

    @abstractmethod
    def crops(self, image: np.ndarray, boxes: list[Any]) -> list[np.ndarray]:
        """The aligned crops (in this model's own geometry) of the faces at ``boxes`` (boxes or detections) in
        ``image``, in order."""

    @abstractmethod
    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """Embeddings [len(crops), dim] of aligned crops, in batches."""

    def embed(self, image: np.ndarray, boxes: list[Any]) -> np.ndarray:
        """Embeddings [len(boxes), dim] of the faces at ``boxes`` (boxes or detections) in ``image``."""
        return self.embed_crops(self.crops(image, boxes))
