"""Blendshapes: MediaPipe Face Landmarker's 52 ARKit-style scores per face, and the FACS action units they approximate.

The ``face_landmarker.task`` bundle is a zip of LiteRT models; two of them run here with ``ai-edge-litert`` (the
optional extra ``facelens[litert]``), on faces our own detector found:

1. ``face_landmarks_detector.tflite``: the face's region — a square of 1.5x the box's larger side around its
   centre, rotated so the eyes are level (MediaPipe's face ROI, ``face_landmarker_graph.cc``) — warped to
   256x256 RGB in [0, 1] → 478 landmarks (x, y in crop pixels, z) and a face-presence score.
2. ``face_blendshapes.tflite``: 146 of those landmarks (``kLandmarksSubsetIdxs`` of MediaPipe's
   ``face_blendshapes_graph.cc``) in image pixels → 52 scores in [0, 1] (``kBlendshapeNames``).

Action units (:data:`ACTION_UNITS`): each AU is the mean of the blendshapes that move the same muscles (left and
right sides averaged) — ARKit's shapes were designed after FACS, but they are not AU intensities from a FACS
coder; treat them as 0..1 activations. Valence and arousal are left out: no valence/arousal-labelled faces are
available to measure a mapping against, and an unmeasured one would be a guess.
"""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from facelens.errors import ModelUnavailableError
from facelens.models.registry import model_path
from facelens.models.runtime import shared_model
from facelens.types import DetectedFace

#: Output order of ``face_blendshapes.tflite`` (MediaPipe ``kBlendshapeNames``).
BLENDSHAPES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

#: The 146 of the 478 landmarks the blendshape model reads (MediaPipe ``kLandmarksSubsetIdxs``).
LANDMARK_SUBSET = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153,
    154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249,
    251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314,
    317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382,
    384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473,
    474, 475, 476, 477,
)  # fmt: skip

#: FACS action unit → (name, blendshapes averaged). AU25 (lips part) is jawOpen less mouthClose (ARKit's
#: "lips closed while the jaw is open"), clipped at 0.
ACTION_UNITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "AU1": ("inner brow raiser", ("browInnerUp",)),
    "AU2": ("outer brow raiser", ("browOuterUpLeft", "browOuterUpRight")),
    "AU4": ("brow lowerer", ("browDownLeft", "browDownRight")),
    "AU5": ("upper lid raiser", ("eyeWideLeft", "eyeWideRight")),
    "AU6": ("cheek raiser", ("cheekSquintLeft", "cheekSquintRight")),
    "AU7": ("lid tightener", ("eyeSquintLeft", "eyeSquintRight")),
    "AU9": ("nose wrinkler", ("noseSneerLeft", "noseSneerRight")),
    "AU10": ("upper lip raiser", ("mouthUpperUpLeft", "mouthUpperUpRight")),
    "AU12": ("lip corner puller", ("mouthSmileLeft", "mouthSmileRight")),
    "AU14": ("dimpler", ("mouthDimpleLeft", "mouthDimpleRight")),
    "AU15": ("lip corner depressor", ("mouthFrownLeft", "mouthFrownRight")),
    "AU16": ("lower lip depressor", ("mouthLowerDownLeft", "mouthLowerDownRight")),
    "AU17": ("chin raiser", ("mouthShrugLower",)),
    "AU18": ("lip pucker", ("mouthPucker",)),
    "AU20": ("lip stretcher", ("mouthStretchLeft", "mouthStretchRight")),
    "AU22": ("lip funneler", ("mouthFunnel",)),
    "AU24": ("lip pressor", ("mouthPressLeft", "mouthPressRight")),
    "AU25": ("lips part", ("jawOpen", "-mouthClose")),
    "AU26": ("jaw drop", ("jawOpen",)),
    "AU28": ("lip suck", ("mouthRollLower", "mouthRollUpper")),
    "AU45": ("blink / eyes closed", ("eyeBlinkLeft", "eyeBlinkRight")),
}

CROP_SIZE = 256
ROI_SCALE = 1.5
_INDEX = {name: i for i, name in enumerate(BLENDSHAPES)}


def action_units(scores: np.ndarray) -> np.ndarray:
    """[N, 52] blendshape scores → [N, len(ACTION_UNITS)] AU activations in [0, 1] (see :data:`ACTION_UNITS`)."""
    scores = np.atleast_2d(np.asarray(scores, np.float32))
    out = np.zeros((len(scores), len(ACTION_UNITS)), np.float32)
    for j, (_, parts) in enumerate(ACTION_UNITS.values()):
        plus = [_INDEX[p] for p in parts if not p.startswith("-")]
        minus = [_INDEX[p[1:]] for p in parts if p.startswith("-")]
        value = scores[:, plus].mean(1)
        if minus:
            value = value - scores[:, minus].sum(1)
        out[:, j] = np.clip(value, 0.0, 1.0)
    return out


def roi_matrix(detection: DetectedFace, size: int = CROP_SIZE, scale: float = ROI_SCALE) -> np.ndarray:
    """2x3 affine taking the face's rotated square region (``scale`` x the box's larger side) to size x size."""
    x1, y1, x2, y2 = (float(v) for v in detection.box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1, 1.0) * scale
    right_eye, left_eye = detection.landmarks[0], detection.landmarks[1]
    angle = float(np.degrees(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])))
    if not np.isfinite(angle) or not np.any(detection.landmarks):
        angle = 0.0
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    matrix[0, 2] += size / 2 - cx
    matrix[1, 2] += size / 2 - cy
    return matrix


def have_litert() -> bool:
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def require_litert() -> None:
    """Raise the install hint when the optional LiteRT runtime is missing (before any work is done)."""
    if not have_litert():
        raise ModelUnavailableError(
            "the blendshapes head runs MediaPipe's models with LiteRT: pip install 'facelens[litert]' "
            "(the ai-edge-litert package)"
        )


class BlendshapeModel:
    """Landmarks then blendshapes per face; interpreters load on first use, once; one caller at a time each."""

    names = BLENDSHAPES
    model_id = "mediapipe_face_landmarker"

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                require_litert()
                from ai_edge_litert.interpreter import Interpreter

                path = model_path("mediapipe_face_landmarker")
                with zipfile.ZipFile(path) as bundle:
                    landmarks = bundle.read("face_landmarks_detector.tflite")
                    blendshapes = bundle.read("face_blendshapes.tflite")
                self._loaded = tuple(
                    Interpreter(model_content=content, num_threads=self.threads) for content in (landmarks, blendshapes)
                )
                for interpreter in self._loaded:
                    interpreter.allocate_tensors()
            return self._loaded

    def landmarks(self, image: np.ndarray, detections: Sequence[DetectedFace]) -> tuple[np.ndarray, np.ndarray]:
        """[N, 478, 3] landmarks (x, y in image pixels, z in crop pixels) and [N] face-presence scores."""
        interpreter, _ = self._load()
        rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        inp = interpreter.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
        points, presence = np.zeros((len(detections), 478, 3), np.float32), np.zeros(len(detections), np.float32)
        for i, det in enumerate(detections):
            matrix = roi_matrix(det)
            crop = cv2.warpAffine(rgb, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
            with self._lock:
                interpreter.set_tensor(inp, (crop.astype(np.float32) / 255.0)[None])
                interpreter.invoke()
                raw = interpreter.get_tensor(outputs["Identity"]).reshape(478, 3)
                score = float(interpreter.get_tensor(outputs["Identity_1"]).ravel()[0])
            inverse = cv2.invertAffineTransform(matrix)
            xy = raw[:, :2] @ inverse[:, :2].T + inverse[:, 2]
            points[i, :, :2], points[i, :, 2] = xy, raw[:, 2]
            presence[i] = 1.0 / (1.0 + np.exp(-score))
        return points, presence

    def scores(self, image: np.ndarray, detections: Sequence[DetectedFace]) -> np.ndarray:
        """[N, 52] blendshape scores in :data:`BLENDSHAPES` order for the faces in an RGB image."""
        if not len(detections):
            return np.zeros((0, len(BLENDSHAPES)), np.float32)
        points, _ = self.landmarks(image, detections)
        _, interpreter = self._load()
        inp = interpreter.get_input_details()[0]["index"]
        out = interpreter.get_output_details()[0]["index"]
        result = np.zeros((len(detections), len(BLENDSHAPES)), np.float32)
        subset = np.asarray(LANDMARK_SUBSET)
        for i in range(len(detections)):
            with self._lock:
                interpreter.set_tensor(inp, points[i, subset, :2][None].astype(np.float32))
                interpreter.invoke()
                result[i] = interpreter.get_tensor(out).ravel()[: len(BLENDSHAPES)]
        return result


get_blendshape_model = shared_model(BlendshapeModel)
