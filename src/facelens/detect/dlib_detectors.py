"""dlib detectors: HOG (default, CPU-fast, frontal) and MMOD CNN (more robust to pose, slower)."""

from __future__ import annotations

import dlib
import numpy as np

from facelens.detect.base import Detector
import facelens.models.catalog  # noqa: F401  (registers the dlib model specs: MMOD, the 68-point predictor)
from facelens.models.registry import model_path
from facelens.types import DetectedFace

_PLACEHOLDER = np.zeros((5, 2), np.float32)


def _box(rect: "dlib.rectangle", shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    return np.array(
        [max(rect.left(), 0), max(rect.top(), 0), min(rect.right() + 1, w), min(rect.bottom() + 1, h)], np.float32
    )


class HogDetector(Detector):
    """dlib HOG + linear SVM. ``upsample=None`` tries 0 and retries at 1 when nothing is found (small faces)."""

    name = "hog"

    def __init__(self, upsample: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.upsample = upsample
        self._detector = dlib.get_frontal_face_detector()

    def _needs_68(self) -> bool:
        return True

    def _run(self, image: np.ndarray, upsample: int) -> list[DetectedFace]:
        with self._lock:  # dlib's detector keeps scratch buffers: two threads in it at once corrupt the heap
            rects, scores, _ = self._detector.run(image, upsample, 0.0)
        return [
            DetectedFace(box=_box(r, image.shape), score=float(s), landmarks=_PLACEHOLDER, detector=self.name)
            for r, s in zip(rects, scores)
        ]

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        if self.upsample is not None:
            return self._run(image, self.upsample)
        faces = self._run(image, 0)
        if not faces and max(image.shape[:2]) <= 1200:
            faces = self._run(image, 1)
        return faces


class CnnDetector(Detector):
    """dlib MMOD CNN detector (``mmod_human_face_detector.dat``)."""

    name = "cnn"

    def __init__(self, upsample: int = 1, **kwargs) -> None:
        kwargs.setdefault("max_side", 1000)
        super().__init__(**kwargs)
        self.upsample = upsample
        self._detector = dlib.cnn_face_detection_model_v1(str(model_path("dlib_mmod")))

    def _needs_68(self) -> bool:
        return True

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        with self._lock:
            found = self._detector(image, self.upsample)
        return [
            DetectedFace(box=_box(d.rect, image.shape), score=float(d.confidence), landmarks=_PLACEHOLDER, detector=self.name)
            for d in found
        ]
