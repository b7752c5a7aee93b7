"""Fusing the passive model with the frequency/texture cues: a logistic regression fitted on labelled data.

Inputs per face: the model's live probability as a logit, and the :data:`~facelens.liveness.frequency.FEATURES`;
all standardised with the training mean/scale. Two heads are fitted on the same data: ``fused`` (model + cues)
and ``frequency`` (cues alone, the model-free score). Classes are weighted equally so the fit does not follow the
live/spoof ratio of the training folder. The decision threshold is not assumed: it is the threshold with the lowest
ACER on *out-of-fold* fused scores (stratified 5-fold cross-validation inside ``fit``), so it is measured on faces
each fold's model did not see. Everything is saved as a small JSON file (``facelens liveness fit``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facelens.errors import FacelensError
from facelens.liveness.frequency import FEATURES
from facelens.liveness.metrics import min_acer_threshold, pad_metrics

FORMAT = "facelens-liveness-fusion/1"
_EPS = 1e-6


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class LinearHead:
    """Standardise, then a logistic regression: ``sigmoid(((x - mean) / scale) · coef + intercept)``."""

    inputs: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - np.array(self.mean)) / np.array(self.scale)
        return _sigmoid(z @ np.array(self.coef) + self.intercept)


def _fit_head(x: np.ndarray, y: np.ndarray, inputs: tuple[str, ...], c: float) -> LinearHead:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit((x - mean) / scale, y)
    return LinearHead(
        inputs, tuple(mean.tolist()), tuple(scale.tolist()), tuple(lr.coef_[0].tolist()), float(lr.intercept_[0])
    )


@dataclass(frozen=True)
class Fusion:
    """A fitted fusion for one passive model (``model``); ``threshold`` applies to the fused score."""

    model: str
    fused: LinearHead
    frequency: LinearHead
    threshold: float
    frequency_threshold: float
    trained_on: dict

    def fused_score(self, model_scores, features) -> np.ndarray:
        return self.fused(np.c_[logit(model_scores), np.asarray(features, np.float64).reshape(-1, len(FEATURES))])

    def frequency_score(self, features) -> np.ndarray:
        return self.frequency(np.asarray(features, np.float64).reshape(-1, len(FEATURES)))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"format": FORMAT, **asdict(self)}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Fusion:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise FacelensError(
                f"cannot read liveness fusion file {path}: {exc}; write one with `facelens liveness fit`"
            ) from None
        if raw.pop("format", None) != FORMAT:
            raise FacelensError(
                f"{path} is not a liveness fusion file ({FORMAT}); write one with `facelens liveness fit`"
            )
        heads = {
            k: LinearHead(**{**raw[k], **{f: tuple(raw[k][f]) for f in ("inputs", "mean", "scale", "coef")}})
            for k in ("fused", "frequency")
        }
        if heads["frequency"].inputs != FEATURES:
            raise FacelensError(f"{path} was fitted on other features ({heads['frequency'].inputs}); refit it")
        return cls(
            model=raw["model"],
            threshold=raw["threshold"],
            frequency_threshold=raw["frequency_threshold"],
            trained_on=raw.get("trained_on", {}),
            **heads,
        )


def fit_fusion(
    model_scores,
    features,
    is_live,
    model: str,
    c: float = 1.0,
    folds: int = 5,
    seed: int = 0,
    trained_on: dict | None = None,
) -> Fusion:
    """Fit both heads on all rows; thresholds from out-of-fold scores of a stratified ``folds``-fold split."""
    from sklearn.model_selection import StratifiedKFold

    m = np.asarray(model_scores, np.float64)
    f = np.asarray(features, np.float64).reshape(-1, len(FEATURES))
    y = np.asarray(is_live, bool)
    if len(np.unique(y)) < 2 or min(y.sum(), (~y).sum()) < folds:
        raise FacelensError(
            f"fitting needs at least {folds} live and {folds} spoof faces (got {y.sum()} and {(~y).sum()})"
        )
    fused_inputs = ("model_logit", *FEATURES)
    xf = np.c_[logit(m), f]
    oof_fused, oof_freq = np.zeros(len(y)), np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(xf, y):
        oof_fused[test] = _fit_head(xf[train], y[train], fused_inputs, c)(xf[test])
        oof_freq[test] = _fit_head(f[train], y[train], FEATURES, c)(f[test])
    threshold = min_acer_threshold(oof_fused, y)
    freq_threshold = min_acer_threshold(oof_freq, y)
    info = dict(trained_on or {})
    info.update(
        n_live=int(y.sum()),
        n_spoof=int((~y).sum()),
        folds=folds,
        C=c,
        cv_fused=pad_metrics(oof_fused, y, threshold).to_dict(),
        cv_frequency=pad_metrics(oof_freq, y, freq_threshold).to_dict(),
    )
    return Fusion(
        model, _fit_head(xf, y, fused_inputs, c), _fit_head(f, y, FEATURES, c), threshold, freq_threshold, info
    )


def cross_validated_comparison(model_scores, features, is_live, folds: int = 5, seed: int = 0, c: float = 1.0) -> dict:
    """Model alone vs fused on the same stratified folds: per fold, the threshold is the min-ACER one on the
    training part (for the model: its own score; for the fusion: the in-fold fitted fusion), applied to the test
    part. Returns pooled test ACER and AUC of both, so they are compared on exactly the same faces and protocol."""
    from sklearn.model_selection import StratifiedKFold

    from facelens.liveness.metrics import roc_auc

    m = np.asarray(model_scores, np.float64)
    f = np.asarray(features, np.float64).reshape(-1, len(FEATURES))
    y = np.asarray(is_live, bool)
    accept_model, accept_fused = np.zeros(len(y), bool), np.zeros(len(y), bool)
    fused_scores = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(f, y):
        t_model = min_acer_threshold(m[train], y[train])
        accept_model[test] = m[test] >= t_model
        fusion = fit_fusion(m[train], f[train], y[train], model="cv", c=c, folds=folds, seed=seed)
        fused_scores[test] = fusion.fused_score(m[test], f[test])
        accept_fused[test] = fused_scores[test] >= fusion.threshold
    out = {}
    for name, acc, score in (("model", accept_model, m), ("fused", accept_fused, fused_scores)):
        metrics = pad_metrics(acc.astype(float), y, 0.5)
        out[name] = {"apcer": metrics.apcer, "bpcer": metrics.bpcer, "acer": metrics.acer, "auc": roc_auc(score, y)}
    return out
