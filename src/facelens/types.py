"""Small dataclasses passed between pipeline stages, each convertible to plain JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Order of the 5 landmarks every detector returns (image-left first, i.e. the subject's right eye first):
#: right eye centre, left eye centre, nose tip, right mouth corner, left mouth corner.
LANDMARK_ORDER = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")


def _round(values: np.ndarray, digits: int = 2) -> list:
    return np.round(np.asarray(values, dtype=float), digits).tolist()


class BoxGeometry:
    """Width, height and area of ``self.box`` (x1, y1, x2, y2), for every type that carries a face box."""

    box: np.ndarray  # provided by the subclass (a field or a property)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


@dataclass(frozen=True)
class DetectedFace(BoxGeometry):
    """One face found by a detector: box (x1, y1, x2, y2) in pixels, confidence, 5 landmarks (see LANDMARK_ORDER)."""

    box: np.ndarray  # float32 [4]
    score: float
    landmarks: np.ndarray  # float32 [5, 2]
    landmarks68: np.ndarray | None = None  # float32 [68, 2] when requested
    detector: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "box": _round(self.box, 1),
            "score": round(float(self.score), 4),
            "landmarks": _round(self.landmarks, 1),
        }
        if self.landmarks68 is not None:
            out["landmarks68"] = _round(self.landmarks68, 1)
        return out


@dataclass(frozen=True)
class Face:
    """A detected face with its embedding (L2-normalised float32) and the model that made it — what the video
    tracker keeps per sample. Per-image results are :class:`facelens.result.ImageResult`."""

    detection: DetectedFace
    embedding: np.ndarray
    model_id: str

    @property
    def box(self) -> np.ndarray:
        return self.detection.box

    def to_dict(self, with_embedding: bool = True) -> dict[str, Any]:
        out = self.detection.to_dict()
        if with_embedding:
            out["embedding"] = [round(float(v), 6) for v in self.embedding]
        return out
