"""Face quality: sharpness, exposure, size and pose, folded into one score in [0, 1] with reasons.

Measured on the ArcFace-aligned 112x112 grayscale crop, so the figures do not depend on the photo's resolution.
Normalisation constants come from the LFW deep-funneled faces in ``../shared/data`` (``benchmarks/analysis.py
--calibrate-quality`` prints them): the 10th percentile of the sharpness of LFW faces scores 0.5, and
exposure is full inside LFW's 2nd–98th percentile of brightness. ``enroll`` can refuse faces below a
threshold; video can keep the best frames by ``score``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from facelens.align import ARCFACE_TEMPLATE, similarity_crop
from facelens.types import DetectedFace

#: Laplacian variance of the 10th-percentile LFW face (112x112 aligned crop), measured: maps to 0.5.
SHARPNESS_P10 = 59.0
#: Mean brightness range (2nd..98th percentile) of LFW aligned crops, measured.
BRIGHTNESS_RANGE = (74.5, 160.9)
#: Size scale: 20 px is the pipeline's smallest detectable face (score 0), 80 px is dlib HOG's native window (1).
SIZE_RANGE = (20.0, 80.0)
#: Pose at which the pose score reaches 0 (beyond it 5-point alignment and every head degrade sharply).
MAX_YAW, MAX_PITCH = 60.0, 45.0
#: Nose-tip depth in front of the eye plane relative to the distance between the eyes (anthropometric mean).
NOSE_DEPTH = 0.55
#: Component scores under this value are listed as reasons.
REASON_BELOW = 0.5

_TEMPLATE_NOSE_RATIO = float(
    (ARCFACE_TEMPLATE[2, 1] - ARCFACE_TEMPLATE[:2, 1].mean())
    / (ARCFACE_TEMPLATE[3:, 1].mean() - ARCFACE_TEMPLATE[:2, 1].mean())
)


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees estimated from the 5 landmarks (rough: about ±10° on frontal-ish faces)."""

    yaw: float
    pitch: float
    roll: float

    def to_dict(self) -> dict[str, float]:
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1)}


@dataclass(frozen=True)
class Quality:
    """Overall ``score`` (product of the component scores), the components, raw measurements and reasons."""

    score: float
    components: dict[str, float]
    sharpness: float  # Laplacian variance of the aligned crop
    brightness: float  # mean grey level 0..255
    clipped: float  # share of pixels at <=5 or >=250
    face_size: float  # shorter box side in pixels
    pose: Pose
    reasons: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "components": {k: round(v, 4) for k, v in self.components.items()},
            "sharpness": round(self.sharpness, 1),
            "brightness": round(self.brightness, 1),
            "clipped": round(self.clipped, 4),
            "face_size": round(self.face_size, 1),
            "pose": self.pose.to_dict(),
            "reasons": list(self.reasons),
        }


def estimate_pose(landmarks: np.ndarray) -> Pose:
    """Yaw/pitch/roll from the 5 landmarks: roll from the eye line, yaw from the nose's sideways offset and
    pitch from its height between eyes and mouth, each relative to the frontal (ArcFace template) layout."""
    pts = np.asarray(landmarks, np.float64)
    right_eye, left_eye, nose = pts[0], pts[1], pts[2]
    mouth = pts[3:5].mean(axis=0)
    eye_vec = left_eye - right_eye
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    iod = float(np.linalg.norm(eye_vec)) or 1.0
    ux = eye_vec / iod
    uy = np.array([-ux[1], ux[0]])
    eye_mid = (right_eye + left_eye) / 2
    offset_x = float(np.dot(nose - eye_mid, ux))
    yaw = math.degrees(math.atan2(offset_x, NOSE_DEPTH * iod))
    eye_mouth = float(np.dot(mouth - eye_mid, uy)) or 1.0
    ratio = float(np.dot(nose - eye_mid, uy)) / eye_mouth
    pitch = math.degrees(math.atan2((ratio - _TEMPLATE_NOSE_RATIO) * eye_mouth, NOSE_DEPTH * iod))
    return Pose(yaw=yaw, pitch=pitch, roll=roll)


def _ramp(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def measure_crop(gray: np.ndarray) -> tuple[float, float, float]:
    """(Laplacian variance, mean brightness, clipped share) of a grayscale aligned crop."""
    sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    brightness = float(gray.mean())
    clipped = float(((gray <= 5) | (gray >= 250)).mean())
    return sharpness, brightness, clipped


def assess_quality(image: np.ndarray, detection: DetectedFace) -> Quality:
    """Quality of one detected face in an RGB image."""
    crop = similarity_crop(image, detection.landmarks, 112)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    sharpness, brightness, clipped = measure_crop(gray)
    size = min(detection.width, detection.height)
    pose = estimate_pose(detection.landmarks)

    low, high = BRIGHTNESS_RANGE
    outside = max(low - brightness, brightness - high, 0.0)
    components = {
        "sharpness": 1.0 - math.exp(-math.log(2) * sharpness / SHARPNESS_P10),
        "exposure": max(0.0, 1.0 - outside / low) * (1.0 - clipped),
        "size": _ramp(size, *SIZE_RANGE),
        "pose": max(0.0, 1.0 - max(abs(pose.yaw) / MAX_YAW, abs(pose.pitch) / MAX_PITCH)),
    }
    reasons = []
    for name, value in components.items():
        if value < REASON_BELOW:
            detail = {
                "sharpness": f"blurred (sharpness {sharpness:.0f})",
                "exposure": "too dark" if brightness < low else ("too bright" if brightness > high else "clipped"),
                "size": f"small face ({size:.0f} px)",
                "pose": f"turned away (yaw {pose.yaw:.0f}°, pitch {pose.pitch:.0f}°)",
            }[name]
            reasons.append(detail)
    score = float(np.prod(list(components.values())))
    return Quality(score, components, sharpness, brightness, clipped, size, pose, tuple(reasons))
