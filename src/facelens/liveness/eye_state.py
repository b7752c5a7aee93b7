"""Eye state (open / closed) per eye with Intel Open Model Zoo's ``open-closed-eye-0001`` (ONNX, 46 kB).

Crop as OMZ's gaze-estimation demo (``eye_state_estimator.cpp``): a square of side 1.8 × the distance between the
eye's two corners, centred on their midpoint and turned so that the corners are level (the demo turns by the head's
roll), resized to 32×32 BGR, (x − 127) / 255 (the mean/scale the OMZ converter folds into its IR), NCHW → [closed,
open] scores. The corners are dlib's 68 landmarks 36/39 (right eye) and 42/45 (left eye). Per face the signal is the
mean P(open) of the two eyes, the ``eye_state`` blink signal of :mod:`facelens.liveness.active`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from facelens.liveness.models import EYE_STATE
from facelens.models.registry import resolve_file
from facelens.models.runtime import shared_model

#: Crop side over the eye-corner distance (OMZ ``createEyeBoundingBox``'s default scale).
CROP_SCALE = 1.8
SIZE = 32
#: (outer, inner) corner indices of the two eyes in dlib's 68 landmarks.
CORNERS = ((36, 39), (42, 45))


def eye_crop(image_bgr: np.ndarray, corner_a: np.ndarray, corner_b: np.ndarray) -> np.ndarray:
    """The 32×32 BGR crop of one eye: square of CROP_SCALE × the corner distance, corners level."""
    a, b = np.asarray(corner_a, np.float64), np.asarray(corner_b, np.float64)
    centre = (a + b) / 2.0
    side = max(float(np.linalg.norm(b - a)) * CROP_SCALE, 1.0)
    angle = float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, SIZE / side)
    matrix[0, 2] += SIZE / 2 - centre[0]
    matrix[1, 2] += SIZE / 2 - centre[1]
    return cv2.warpAffine(image_bgr, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class EyeStateModel:
    """P(open) per eye; the session loads on first use, once."""

    model_id = "open_closed_eye_0001"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Any = None

    def _load(self) -> Any:
        with self._lock:
            if self._session is None:
                from facelens.models.runtime import onnx_session

                self._session = onnx_session(resolve_file(EYE_STATE.files[0]), threads=1)
            return self._session

    def open_probability(self, image: np.ndarray, points68: Sequence[np.ndarray]) -> np.ndarray:
        """[n, 2] P(open) of the (right, left) eye of each face, from an RGB image and its faces' 68 landmarks."""
        if not len(points68):
            return np.zeros((0, 2), np.float32)
        session = self._load()
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        crops = [eye_crop(bgr, pts[a], pts[b]) for pts in points68 for a, b in CORNERS]
        batch = (np.stack(crops).astype(np.float32) - 127.0) / 255.0
        name = session.get_inputs()[0].name
        scores = np.stack([session.run(None, {name: x.transpose(2, 0, 1)[None]})[0].reshape(2) for x in batch])
        if not np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):  # logits: make them probabilities
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores /= scores.sum(axis=1, keepdims=True)
        return scores[:, 1].reshape(len(points68), 2).astype(np.float32)


get_eye_state_model = shared_model(EyeStateModel)
