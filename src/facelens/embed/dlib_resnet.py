"""dlib ResNet-34 (128-D) run by dlib itself: the fallback of ``dlib_onnx`` (same model id, same vectors).

The weights ship inside the PyPI package face-recognition-models."""

from __future__ import annotations

import threading

import dlib
import numpy as np

from facelens.align import dlib_chips
from facelens.embed.base import Embedder, face_boxes, l2_normalise
from facelens.models.registry import model_path


class DlibResnetEmbedder(Embedder):
    """Faces are cut to dlib chips and embedded in one batch per image through dlib's batch API.

    ``jitter`` > 0 averages that many randomly perturbed copies (dlib's num_jitters); slower, rarely worth it.
    """

    dim = 128
    runtime = "dlib"

    def __init__(self, jitter: int = 0) -> None:
        self.jitter = jitter
        self.model_id = "dlib_resnet_v1" + (f"+jitter{jitter}" if jitter else "")
        self._net = dlib.face_recognition_model_v1(str(model_path("dlib_resnet_v1")))
        self._lock = threading.Lock()  # dlib's net keeps per-call state: one caller at a time

    def crops(self, image: np.ndarray, boxes: list) -> list[np.ndarray]:
        return dlib_chips(image, face_boxes(boxes))

    def embed_crops(self, chips: list[np.ndarray]) -> np.ndarray:
        if not len(chips):
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            vectors = self._net.compute_face_descriptor(list(chips), self.jitter)
        return l2_normalise(np.array(vectors, dtype=np.float32))
