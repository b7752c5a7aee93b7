"""``LivenessChecker``: one liveness score and decision per detected face, for the pipeline's own detections.

Default: the **MiniFASNetV2 + V1SE ensemble** (``minifasnet``) at its upstream threshold 0.5 — on
``spoof/dtruong46me_fas_crops`` with our HOG detections it measures ACER 0.208 (APCER 0.30, BPCER 0.117), against
0.25 for the CelebA-Spoof 128×128 model, which rejects half of the live faces at its own threshold (BPCER 0.50);
with YuNet boxes 0.208 vs 0.283.
With a fusion file (``facelens liveness fit``) the score is the fitted fusion of the model and the
frequency/texture cues, and the threshold is the one the fit measured.

Faces below :data:`MIN_FACE_SIZE` pixels are not scored by the model: they are reported with ``is_live=False`` and
``details["reason"] = "face too small"`` (a gate cannot vouch for a face it cannot resolve).
Grayscale images are accepted (replicated to three channels); colour cues then carry no information, so the
fusion, which uses saturation, should not be trusted on them — ``details["grayscale"]`` says so.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelens.errors import FacelensError
from facelens.liveness.frequency import feature_matrix
from facelens.liveness.fusion import Fusion
from facelens.liveness.models import MODELS, get_model
from facelens.types import DetectedFace

DEFAULT_MODEL = "minifasnet"

#: Smallest face side (pixels) scored. Measured by downscaling the dtruong46me_fas_crops faces (HOG boxes) to a
#: given face width and scoring with the default model at 0.5: live/spoof acceptance was 0.92/0.23 at 128 px,
#: 0.73/0.09 at 64, 0.49/0.00 at 32, then 0.29/0.02 at 24, 0.31/0.07 at 16, 0.46/0.21 at 12 — below 32 px spoof
#: acceptance climbs back while live acceptance stays under one half, i.e. the score stops separating them.
MIN_FACE_SIZE = 32


@dataclass(frozen=True)
class LivenessResult:
    """``score`` in 0..1 (higher = live), ``is_live`` = score ≥ the checker's threshold, the model that decided, and
    the evidence (per-model scores, frequency score, threshold, reasons)."""

    score: float
    is_live: bool
    model: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, with_details: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"score": round(float(self.score), 4), "is_live": bool(self.is_live)}
        if with_details:
            out["model"] = self.model
            out["details"] = self.details
        return out


def as_rgb(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """RGB uint8 view of an image array (grayscale 2-D or H×W×1 is replicated); also says if it was grayscale."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}; decode it with facelens.io.image.decode_image")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB), True
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    gray = bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))
    return image, gray


class LivenessChecker:
    """Passive liveness for detected faces. Models load on first use, once, and the checker is safe to share
    between threads (the ONNX sessions are; nothing else is mutated after construction).

    ``model``: ``minifasnet`` (default) or ``minifas_celeba128``. ``fusion``: a fusion file or object fitted for
    that model. ``threshold``: overrides the decision threshold (e.g. one picked for a target BPCER by
    ``facelens liveness eval --target-bpcer``)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        fusion: str | Path | Fusion | None = None,
        threshold: float | None = None,
        min_face_size: int = MIN_FACE_SIZE,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown liveness model {model!r}; choose one of {', '.join(MODELS)}")
        self.model_name = model
        self.fusion = Fusion.load(fusion) if isinstance(fusion, (str, Path)) else fusion
        if self.fusion is not None and self.fusion.model != model:
            raise ValueError(
                f"the fusion was fitted for {self.fusion.model!r}, not {model!r}; refit it or pick that model"
            )
        runner_threshold = get_model(model).threshold
        self.threshold = float(
            threshold if threshold is not None else (self.fusion.threshold if self.fusion else runner_threshold)
        )
        self.min_face_size = min_face_size
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"{self.model_name}+frequency" if self.fusion else self.model_name

    def check(self, image: np.ndarray, detection: DetectedFace) -> LivenessResult:
        """Liveness of one detected face in an RGB uint8 image."""
        return self.check_many(image, [detection])[0]

    def check_many(self, image: np.ndarray, detections: list[DetectedFace]) -> list[LivenessResult]:
        """Liveness of every detection, the model run once on the batch of crops."""
        if not detections:
            return []
        rgb, gray = as_rgb(image)
        big = [i for i, d in enumerate(detections) if min(d.width, d.height) >= self.min_face_size]
        results: list[LivenessResult | None] = [None] * len(detections)
        for i, d in enumerate(detections):
            if i not in big:
                results[i] = LivenessResult(
                    0.0,
                    False,
                    self.name,
                    {
                        "reason": "face too small",
                        "face_size": round(min(d.width, d.height), 1),
                        "min_face_size": self.min_face_size,
                    },
                )
        if big:
            boxes = [detections[i].box for i in big]
            scores = get_model(self.model_name).score(rgb, boxes)
            features = feature_matrix(rgb, boxes) if self.fusion else None
            final = self.fusion.fused_score(scores.live, features) if self.fusion else scores.live
            for j, i in enumerate(big):
                details: dict[str, Any] = {
                    "model_score": round(float(scores.live[j]), 4),
                    "threshold": round(self.threshold, 4),
                }
                for key, raw in scores.raw.items():
                    details[key] = np.round(raw[j].astype(np.float64), 4).tolist()
                if self.fusion is not None and features is not None:
                    details["frequency_score"] = round(float(self.fusion.frequency_score(features[j])[0]), 4)
                if gray:
                    details["grayscale"] = True
                results[i] = LivenessResult(float(final[j]), bool(final[j] >= self.threshold), self.name, details)
        return [r for r in results if r is not None]


def fill_liveness(image: np.ndarray, faces: Any, checker: LivenessChecker | None = None) -> list[LivenessResult]:
    """The engine's ``liveness`` task: score every face of one image in one batch and fill the ``liveness_score``
    and ``is_live`` columns of its :class:`facelens.result.Faces`. A checker that fails (e.g. its model is
    missing) records the error per face and leaves the columns ``None``. Returns the results in order."""
    if not len(faces):
        return []
    try:
        results = (checker or get_checker()).check_many(image, faces.detections())
    except Exception as exc:  # noqa: BLE001  (a failing checker reports itself; the other tasks still answer)
        message = str(exc) if isinstance(exc, FacelensError) else f"{exc.__class__.__name__}: {exc}"
        for i in range(len(faces)):
            faces.add_error(i, "liveness", message)
        return []
    faces.liveness_score = np.array([r.score for r in results], np.float32)
    faces.is_live = np.array([r.is_live for r in results], bool)
    return results


_CHECKERS: dict[tuple, LivenessChecker] = {}
_LOCK = threading.Lock()


def get_checker(
    model: str = DEFAULT_MODEL, fusion: str | Path | None = None, threshold: float | None = None
) -> LivenessChecker:
    """A shared checker per configuration (the lead's ``liveness=True`` option can call this per request)."""
    key = (model, str(fusion) if fusion else None, threshold)
    with _LOCK:
        if key not in _CHECKERS:
            _CHECKERS[key] = LivenessChecker(model, fusion, threshold)
        return _CHECKERS[key]
