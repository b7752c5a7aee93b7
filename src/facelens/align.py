"""Alignment: landmarks → the crop geometry an embedder was trained on.

dlib's ResNet expects 150×150 "face chips" cut with dlib's 5-point shape predictor (padding 0.25). The
predictor runs on the detection box, so every detector yields the same chip geometry.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import dlib
import numpy as np

from facelens.models.registry import model_path

CHIP_SIZE = 150
CHIP_PADDING = 0.25
_LOCK = threading.Lock()


@lru_cache(maxsize=None)
def _predictor(name: str) -> "dlib.shape_predictor":
    with _LOCK:
        return dlib.shape_predictor(str(model_path(name)))


def _rect(box: np.ndarray) -> "dlib.rectangle":
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return dlib.rectangle(x1, y1, max(x2 - 1, x1 + 1), max(y2 - 1, y1 + 1))


def shape5(image: np.ndarray, box: np.ndarray) -> "dlib.full_object_detection":
    return _predictor("dlib_shape_predictor_5")(image, _rect(box))


def landmarks_68(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """dlib's 68 iBUG landmarks for the face in ``box``, float32 [68, 2]."""
    shape = _predictor("dlib_shape_predictor_68")(image, _rect(box))
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def dlib_chips(image: np.ndarray, boxes: list[np.ndarray], size: int = CHIP_SIZE) -> list[np.ndarray]:
    """150×150 RGB chips (dlib geometry) for every box, in order."""
    if not boxes:
        return []
    shapes = dlib.full_object_detections()
    for box in boxes:
        shapes.append(shape5(image, box))
    return [np.asarray(c) for c in dlib.get_face_chips(image, shapes, size=size, padding=CHIP_PADDING)]


# ArcFace-style 112×112 template used by ONNX embedders and analysis heads that expect it.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32
)


def similarity_crop(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp the face so its 5 landmarks sit on the ArcFace template scaled to ``size``."""
    import cv2

    template = ARCFACE_TEMPLATE * (size / 112.0)
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), template, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("landmarks are degenerate; cannot align")
    return cv2.warpAffine(image, matrix, (size, size), borderMode=cv2.BORDER_REPLICATE)
