"""Face-like synthetic embeddings for gallery scale benchmarks and tests: a two-covariance model fitted on real
embeddings (benchmarks/gallery.py and service.py fill galleries with it; tests/gallery/test_gallery_index.py checks
it spreads like LFW).

Uniformly random unit vectors are not face-like (they are nearly orthogonal, so every index looks perfect or
hopeless); real dlib embeddings sit in a narrow cone (impostors ~0.83 cosine, genuine ~0.95 on LFW). Identities
are drawn from the fitted between-person Gaussian and faces around them from the within-person one, with a
per-face spread factor so that genuine similarities have LFW's heavier tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Log-normal sigma of the per-face noise scale; matches the spread of LFW genuine similarities (see tests).
SPREAD_SIGMA = 0.2


def _root(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0, None))


@dataclass(frozen=True)
class FaceSpace:
    mean: np.ndarray
    between: np.ndarray  # root of the between-person covariance
    within: np.ndarray  # root of the within-person covariance

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: np.ndarray) -> "FaceSpace":
        """Fit on real embeddings with person labels (people with one image count for the between part only)."""
        vectors = np.asarray(vectors, np.float64)
        names, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        means = np.zeros((len(names), vectors.shape[1]))
        np.add.at(means, inverse, vectors)
        means /= counts[:, None]
        multi = counts[inverse] >= 2
        residual = vectors[multi] - means[inverse[multi]]
        within = residual.T @ residual / max(int(multi.sum()) - int((counts >= 2).sum()), 1)
        between = np.cov(means.T) - within * float(np.mean(1.0 / counts))
        return cls(vectors.mean(0), _root(between), _root(within))

    def sample(self, people: int, faces_per_person: int, seed: int = 0) -> np.ndarray:
        """L2-normalised float32 faces, shape [people, faces_per_person, dim]."""
        rng = np.random.default_rng(seed)
        dim = len(self.mean)
        out = np.empty((people, faces_per_person, dim), np.float32)
        scale_norm = np.exp(SPREAD_SIGMA**2)  # E[s^2] for s = exp(N(0, sigma))
        for start in range(0, people, 50_000):
            n = min(50_000, people - start)
            centres = self.mean + rng.standard_normal((n, dim)) @ self.between.T
            scales = np.exp(rng.normal(0, SPREAD_SIGMA, (n, faces_per_person, 1))) / np.sqrt(scale_norm)
            faces = centres[:, None, :] + scales * (rng.standard_normal((n, faces_per_person, dim)) @ self.within.T)
            faces /= np.linalg.norm(faces, axis=2, keepdims=True)
            out[start : start + n] = faces
        return out
