"""Custom heads: small scikit-learn classifiers on face embeddings and/or expression probabilities.

This is how users add their own attributes (engagement, mask, their own expression set): one folder of
face images per label → ``fit`` → ``save``; ``analyze --head FILE`` applies it. A head saved with
``base="expression"`` falls back to the expression model's label when its own confidence is below the
threshold; that threshold is chosen at fit time by cross-validation to maximise the combined accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import FacelensError

log = logging.getLogger(__name__)

FEATURES = ("embedding", "expression")
FORMAT = "facelens-head-v1"


@dataclass(frozen=True)
class HeadResult:
    """The head's label and probabilities; ``from_base`` when the base model's answer was kept."""

    name: str
    label: str | None
    score: float
    probabilities: dict[str, float]
    from_base: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": round(self.score, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "from_base": self.from_base,
        }


@dataclass
class CustomHead:
    """A fitted classifier with its label set, feature kinds and the model ids its features came from."""

    name: str = "custom"
    features: tuple[str, ...] = FEATURES
    base: str | None = None  # "expression": keep the expression label below the threshold
    C: float = 1.0
    threshold: float = 0.0
    labels: tuple[str, ...] = ()
    model_ids: dict[str, str] = field(default_factory=dict)
    cv_accuracy: float | None = None
    estimator: Any = None

    def __post_init__(self) -> None:
        unknown = set(self.features) - set(FEATURES)
        if unknown or not self.features:
            raise ValueError(f"features must be a non-empty subset of {FEATURES}, got {self.features}")
        if self.base not in (None, "expression"):
            raise ValueError("base must be None or 'expression'")

    def _new_estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))

    def fit(self, X: np.ndarray, y: Sequence[str], base_labels: Sequence[str] | None = None) -> CustomHead:
        """Fit on feature rows ``X`` (see :func:`feature_matrix`) and string labels ``y``.

        With ``base="expression"``, ``base_labels`` (the expression model's label per row) lets the threshold
        be chosen by 5-fold cross-validation: below it the base answer is more often right than the head's."""
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        y = np.asarray(y)
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise FacelensError("a head needs at least two labels (one folder per label)")
        folds = int(min(5, counts.min()))
        if folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=0)
            proba = cross_val_predict(self._new_estimator(), X, y, cv=cv, method="predict_proba")
            pred, conf = classes[proba.argmax(1)], proba.max(1)
            self.cv_accuracy = float((pred == y).mean())
            if self.base == "expression" and base_labels is not None:
                base = np.asarray(base_labels)
                candidates = np.unique(np.concatenate([[0.0], conf]))
                scores = [np.where(conf >= t, pred == y, base == y).mean() for t in candidates]
                self.threshold = float(candidates[int(np.argmax(scores))])
        self.estimator = self._new_estimator().fit(X, y)
        self.labels = tuple(str(c) for c in self.estimator.classes_)
        return self

    def predict(self, X: np.ndarray, base_labels: Sequence[str | None] | None = None) -> list[HeadResult]:
        if self.estimator is None:
            raise FacelensError("this head is not fitted")
        if len(X) == 0:
            return []
        proba = self.estimator.predict_proba(np.asarray(X, np.float64))
        out = []
        for i, row in enumerate(proba):
            k = int(np.argmax(row))
            probs = {label: float(p) for label, p in zip(self.labels, row)}
            if row[k] < self.threshold and base_labels is not None and self.base:
                out.append(HeadResult(self.name, base_labels[i], float(row[k]), probs, from_base=True))
            else:
                out.append(HeadResult(self.name, self.labels[k], float(row[k]), probs))
        return out

    def save(self, path: str | Path) -> Path:
        import joblib
        import sklearn

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            k: getattr(self, k)
            for k in ("name", "features", "base", "C", "threshold", "labels", "model_ids", "cv_accuracy")
        }
        joblib.dump(
            {"format": FORMAT, "sklearn": sklearn.__version__, "state": state, "estimator": self.estimator}, path
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> CustomHead:
        """Load a head saved by :meth:`save`. Only load files you trust (joblib files are pickles)."""
        import joblib

        path = Path(path)
        if not path.is_file():
            raise FacelensError(
                f"head file {path} not found; create one with `facelens analyze fit DATA_DIR -o {path}`"
            )
        try:
            data = joblib.load(path)
        except Exception as exc:
            raise FacelensError(f"{path} is not a facelens head file ({exc.__class__.__name__}: {exc})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise FacelensError(f"{path} is not a facelens head file (expected format {FORMAT})")
        state = data["state"]
        head = cls(**{k: v for k, v in state.items() if k in ("name", "features", "base", "C")})
        head.threshold, head.labels = state["threshold"], tuple(state["labels"])
        head.model_ids, head.cv_accuracy = dict(state["model_ids"]), state["cv_accuracy"]
        head.estimator = data["estimator"]
        return head

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "labels": list(self.labels),
            "features": list(self.features),
            "base": self.base,
            "threshold": round(self.threshold, 4),
            "model_ids": self.model_ids,
            "cv_accuracy": None if self.cv_accuracy is None else round(self.cv_accuracy, 4),
        }


def feature_matrix(
    features: Sequence[str], embeddings: np.ndarray | None = None, expressions: np.ndarray | None = None
) -> np.ndarray:
    """Concatenate the requested feature kinds per face, in a fixed order (embedding, expression)."""
    parts = []
    for kind in FEATURES:
        if kind not in features:
            continue
        block = embeddings if kind == "embedding" else expressions
        if block is None:
            raise ValueError(f"the head needs {kind} features")
        parts.append(np.asarray(block, np.float64))
    return np.hstack(parts)
