"""The embedder interface: aligned faces in, L2-normalised float32 vectors out, with a stable model id.

Alignment and inference are separate steps so that an orchestrator can cut the crops of many images and send
them through the network in one batch: ``crops(image, boxes)`` per image, ``embed_crops(all_crops)`` once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Embedder(ABC):
    model_id: str = ""
    dim: int = 0
    #: What runs the network ("onnx", "dlib"); one model id may have several runtimes giving the same vectors.
    runtime: str = ""

    @abstractmethod
    def crops(self, image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        """The aligned crops (in this model's own geometry) of the faces at ``boxes`` in ``image``, in order."""

    @abstractmethod
    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """Embeddings [len(crops), dim] of aligned crops, in batches."""

    def embed(self, image: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
        """Embeddings [len(boxes), dim] of the faces at ``boxes`` in ``image``."""
        return self.embed_crops(self.crops(image, boxes))
