"""Score-level fusion of several embedders, packaged as one embedder so galleries and thresholds need no change.

The fused score of two faces is Σ wᵢ·cosᵢ, a weighted sum of the members' cosine similarities with Σ wᵢ = 1.
The fused *vector* is the concatenation of √wᵢ·vᵢ (each vᵢ unit length), so it is unit length itself and one
inner product of two fused vectors is exactly the fused score: a gallery searches it like any other vector, and
its model id (``fusion(<member ids>)``) gets its own measured threshold profile.

The weights are fitted on LFW DevTest pairs by ``scripts/measure_thresholds.py --embedder dlib+mobilefacenet``
(:func:`fit_weights`: the weight with the best 10-fold cross-validated accuracy) and stored in that profile,
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
}


class FusedCrop(NamedTuple):
    """One face's crops, one per member (e.g. the dlib 150 chip and the ArcFace 112 crop)."""

    parts: tuple[Any, ...]


def fusion_model_id(member_ids: list[str] | tuple[str, ...]) -> str:
    return f"fusion({','.join(member_ids)})"


class FusedEmbedder(Embedder):
    """Members' vectors scaled by √wᵢ and concatenated (dim = Σ member dims).

    ``weights`` (one per member, summing to 1): None reads them from the model's measured profile.
    """

    def __init__(self, members: list[Embedder], weights: list[float] | np.ndarray | None = None, name: str = "") -> None:
        if len(members) < 2:
            raise ValueError("a fusion needs at least two member embedders")
        self.members = list(members)
        self.name = name
        self.model_id = fusion_model_id([m.model_id for m in self.members])
        self.dim = sum(m.dim for m in self.members)
        self.runtime = "+".join(dict.fromkeys(m.runtime for m in self.members))
        self.weights = check_weights(stored_weights(self.model_id, [m.model_id for m in self.members])
                                     if weights is None else weights, len(self.members))
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


def fit_weights(member_scores: np.ndarray, labels: np.ndarray, step: float = 0.01, n_folds: int = 10,
                seed: int = 0) -> tuple[np.ndarray, dict]:
    """Weights (Σ = 1) of the members' similarities [n_pairs, n_members] with the best 10-fold accuracy.

    Every weight on a grid is scored by cross-validated accuracy (threshold chosen on the other folds); the
    weight returned is the middle of the best plateau (ties are common: accuracy moves in steps of one pair).
    Also reports what logistic regression on the same scores gives (its coefficients normalised to Σ = 1)."""
    from sklearn.linear_model import LogisticRegression

    from facelens.evaluate.metrics import kfold_accuracy

    scores = np.asarray(member_scores, np.float64)
    labels = np.asarray(labels, bool)
    grid = weight_grid(scores.shape[1], step)
    cv = np.array([kfold_accuracy(scores @ w, labels, n_folds=n_folds, seed=seed)[0] for w in grid])
    best = grid[np.flatnonzero(cv >= cv.max() - 1e-12)]
    weights = best[int(np.argmin(np.abs(best - best.mean(axis=0)).sum(axis=1)))]
    logistic = LogisticRegression(C=1e4, max_iter=10_000).fit(scores, labels)
    coef = np.clip(logistic.coef_[0], 0, None)
    lr_weights = coef / coef.sum() if coef.sum() > 0 else np.full(len(coef), 1 / len(coef))
    report = {
        "method": f"grid (step {step}) of weights on the simplex, best stratified {n_folds}-fold accuracy (seed {seed})",
        "cv_accuracy": float(cv.max()),
        "members_cv_accuracy": [float(kfold_accuracy(scores[:, i], labels, n_folds=n_folds, seed=seed)[0])
                                for i in range(scores.shape[1])],
        "logistic_weights": [round(float(v), 4) for v in lr_weights],
        "logistic_cv_accuracy": float(kfold_accuracy(scores @ lr_weights, labels, n_folds=n_folds, seed=seed)[0]),
        "nested_cv_accuracy": nested_cv_accuracy(scores, labels, step, n_folds, seed),
        "pairs": int(len(labels)),
    }
    return weights, report


def nested_cv_accuracy(member_scores: np.ndarray, labels: np.ndarray, step: float = 0.01, n_folds: int = 10,
                       seed: int = 0) -> float:
    """Accuracy of the fusion with both weights and threshold chosen on the other folds only: what a fitted
    fusion scores on pairs it was not fitted on (:func:`fit_weights`' own ``cv_accuracy`` picks the weight
    that did best on every fold, which flatters it slightly)."""
    from sklearn.model_selection import StratifiedKFold

    from facelens.evaluate.metrics import best_accuracy_threshold

    scores = np.asarray(member_scores, np.float64)
    labels = np.asarray(labels, bool)
    grid = weight_grid(scores.shape[1], step)
    correct = 0
    for train, test in StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(scores, labels):
        fits = [best_accuracy_threshold(scores[train] @ w, labels[train]) for w in grid]
        accs = np.array([a for a, _ in fits])
        tied = np.flatnonzero(accs >= accs.max() - 1e-12)
        pick = tied[len(tied) // 2]
        correct += int(((scores[test] @ grid[pick] >= fits[pick][1]) == labels[test]).sum())
    return correct / len(labels)
