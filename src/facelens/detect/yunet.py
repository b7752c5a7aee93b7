"""YuNet (OpenCV FaceDetectorYN): fast CNN detector that also returns the 5 landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from facelens.detect.base import Detector
import facelens.models.catalog  # noqa: F401  (registers the detector specs)
from facelens.models.registry import model_path
from facelens.types import DetectedFace


class YunetDetector(Detector):
    name = "yunet"

    def __init__(self, score_threshold: float = 0.7, nms_threshold: float = 0.3, **kwargs) -> None:
        super().__init__(**kwargs)
        self._model = cv2.FaceDetectorYN.create(
            str(model_path("yunet_2023mar")), "", (320, 320), score_threshold, nms_threshold, 5000
        )

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        h, w = image.shape[:2]
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        with self._lock:
            self._model.setInputSize((w, h))
            _, rows = self._model.detect(bgr)
        faces = []
        for row in rows if rows is not None else []:
            x, y, bw, bh = row[:4]
            box = np.array([max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)], np.float32)
            faces.append(
                DetectedFace(box=box, score=float(row[14]), landmarks=row[4:14].reshape(5, 2).astype(np.float32), detector=self.name)
            )
        return faces
