"""The embedder interface: aligned faces in, L2-normalised float32 vectors out, with a stable model id."""

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

    @abstractmethod
    def embed(self, image: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
        """Embeddings [len(boxes), dim] of the faces at ``boxes`` in ``image`` (aligned internally)."""
